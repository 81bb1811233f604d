"""Writes netroom's Grafana dashboards as JSON, one file per dashboard and language.

    python3 -m dashboards.build [--out DIR] [--alerting DIR]   (from the repository root)

Output: ``<DIR>/<uid>-<lang>.json`` for lang zh and en (default DIR:
dashboards/generated), and Grafana's alerting provisioning files from
dashboards/alerts.py (default: deploy/grafana/provisioning/alerting).
tests/test_dashboards.py fails when the committed files differ from what
this writes: edit the boards or alerts.py, then run it.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Dict, List, Optional

from dashboards import alerts
from dashboards.boards import registry
from dashboards.model import LANGS, Tr

HERE = Path(__file__).resolve().parent
GENERATED = HERE / "generated"
ALERTING = HERE.parent / "deploy" / "grafana" / "provisioning" / "alerting"


def build_all() -> Dict[str, Dict[str, object]]:
    """File name -> dashboard JSON, for every board and language."""
    out: Dict[str, Dict[str, object]] = {}
    for board in registry():
        for lang in LANGS:
            out[f"{board.UID}-{lang}.json"] = board.build(Tr(lang))
    return out


def render(dash: Dict[str, object]) -> str:
    """Stable text: sorted keys, 2-space indent, Chinese kept readable."""
    return json.dumps(dash, ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def write(out_dir: Path) -> List[Path]:
    """Write every dashboard into ``out_dir``; remove stale ones; return the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = build_all()
    for old in out_dir.glob("*.json"):
        if old.name not in files:
            old.unlink()
    paths = []
    for name, dash in files.items():
        path = out_dir / name
        path.write_text(render(dash), encoding="utf-8")
        paths.append(path)
    return paths


def write_alerting(out_dir: Path) -> List[Path]:
    """Write the alerting provisioning files into ``out_dir``; return the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, content in alerts.provisioning_files().items():
        path = out_dir / name
        path.write_text(alerts.render_yaml(content), encoding="utf-8")
        paths.append(path)
    return paths


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="dashboards.build", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=GENERATED, help="output directory")
    p.add_argument("--alerting", type=Path, default=ALERTING,
                   help="directory of the alerting provisioning files")
    args = p.parse_args(argv)
    for path in [*write(args.out), *write_alerting(args.alerting)]:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
