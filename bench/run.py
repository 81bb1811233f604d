"""`make bench`: every benchmark in turn, with modest sizes (a few minutes in all).

Run one by hand for the full figures (see docs/benchmarks.md); each prints a
table or JSON and stops every server it started. Exit status: the worst one.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RUNS = [
    ["agent_cost.py", "--rounds", "30", "--repeat", "3"],
    ["collector_throughput.py", "--n", "20000", "--repeat", "3"],
]


def main() -> int:
    worst = 0
    for script, *args in RUNS:
        print(f"== {script} {' '.join(args)}", flush=True)
        rc = subprocess.call([sys.executable, str(HERE / script), *args])
        if rc:
            print(f"== {script}: exit status {rc}", flush=True)
        worst = max(worst, rc)
    return worst


if __name__ == "__main__":
    sys.exit(main())
