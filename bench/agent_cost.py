"""Agent cost: CPU per round and steady RSS of the netroom agent and its peers.

Method: every subject runs at once, in the same window, at 1 s per round, so
machine noise (other people's tests) hits them alike. After a warm-up, the
CPU time (user + system, of the process and its children) over the window is
divided by the rounds the subject really completed, counted from its output:
metrics messages reaching a real mosquitto (the agent), lines on stdout,
rows in collectd's CSV, our own scrapes of node_exporter. RSS and USS are
sampled every few seconds in the window. Every subject is restarted for each
repeat; figures are medians over the repeats. Loopback only: the broker and
node_exporter listen on 127.0.0.1, Glances runs without its cloud, public-IP,
ports and connections plugins and without the update check.

Subjects (bench/agent_peers.py): the agent as shipped (MQTT 5 + disk
outbox), the same on MQTT 3.1.1, the agent's collectors and encoding without
transport, `netroom-agent --print`, a bare psutil loop, a Python process
that only wakes once a second, two idle import floors (RSS only), the agent
and the floors on other interpreters (``--python``), and collectd,
node_exporter and Glances when installed (docs/benchmarks.md says how); a
peer that is missing prints "not installed".

Run: python3 bench/agent_cost.py [--rounds 60] [--repeat 3] [--warmup 10] [--json]
     [--python /path/to/python3.8] [--only 'part of a name,...']
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psutil
from agent_peers import REF, SITE, subjects
from paho.mqtt.enums import CallbackAPIVersion

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
from servers import Mosquitto  # noqa: E402

TARGET_CPU_MS, TARGET_RSS_MB = 1.5, 26.0  # the project guide's targets


def measure(tmp: Path, mosq: Mosquitto, counts: dict[str, int], run: int,
            args: argparse.Namespace) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """One repeat: start all, warm up, measure one window, stop all."""
    stop = threading.Event()
    subs, missing = subjects(tmp, mosq, counts, run, stop, args.python)
    if args.only:
        subs = [s for s in subs if any(w.lower() in s.name.lower() for w in args.only.split(","))]
    res: dict[str, dict[str, Any]] = {}
    logs: dict[str, Path] = {}
    try:
        for i, s in enumerate(subs):
            logs[s.name] = tmp / f"stderr-{i}.log"
            s.start(logs[s.name])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not all(s.count() for s in subs):
            time.sleep(0.2)
        time.sleep(args.warmup)
        live = []
        for s in subs:
            assert s.proc is not None
            if s.proc.poll() is not None or not s.count():
                tail = logs[s.name].read_text(errors="replace").strip().splitlines()[-1:]
                res[s.name] = {"error": f"no output; stderr: {' '.join(tail)[:200]}"}
            else:
                live.append(s)
        t0 = {s.name: (s.cpu_s(), s.ticks_s(), s.count()) for s in live}
        mem: dict[str, list[tuple[float, float]]] = {s.name: [] for s in live}
        end = time.monotonic() + args.rounds
        while time.monotonic() < end:
            for s in live:
                with contextlib.suppress(psutil.Error):
                    mem[s.name].append(s.memory_mb())
            time.sleep(min(5.0, max(0.0, end - time.monotonic())))
        for s in live:
            cpu0, ticks0, n0 = t0[s.name]
            cpu, ticks, n = s.cpu_s() - cpu0, s.ticks_s() - ticks0, s.count() - n0
            rss = statistics.median(m[0] for m in mem[s.name])
            uss = statistics.median(m[1] for m in mem[s.name])
            r: dict[str, Any] = {"rss_mb": round(rss, 1), "uss_mb": round(uss, 1),
                                 "cpu_s": round(cpu, 4), "rounds": n if s.per_round else None,
                                 "cpu_source": "cgroup" if s.group else "proc ticks (10 ms)"}
            if s.per_round and n:
                r["cpu_ms_per_round"] = round(cpu * 1000 / n, 3)
                r["cpu_ms_per_round_proc_ticks"] = round(ticks * 1000 / n, 3)  # cross-check
            res[s.name] = r
    finally:
        stop.set()
        for s in subs:
            s.stop()
    return res, missing


def subscribe(mosq: Mosquitto, counts: dict[str, int]) -> mqtt.Client:
    """Count metrics messages per host as they reach the broker."""
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-agent-cost")

    def on_message(cl: mqtt.Client, u: Any, m: mqtt.MQTTMessage) -> None:
        host = m.topic.split("/")[3]
        counts[host] = counts.get(host, 0) + 1
    c.on_message = on_message
    c.connect(mosq.host, mosq.port)
    c.subscribe(f"netroom/v1/{SITE}/+/metrics", qos=0)
    c.loop_start()
    return c


def revision() -> str:
    """The commit measured, and whether agent/ differed from it."""
    def git(*a: str) -> str:
        try:
            return subprocess.run(["git", *a], check=False, cwd=REPO, capture_output=True,
                                  text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""
    head = git("rev-parse", "--short", "HEAD") or "unknown"
    return head + (" + uncommitted changes in agent/" if git("status", "--porcelain", "agent")
                   else "")


def machine() -> dict[str, Any]:
    model = platform.processor()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    load = [round(x, 2) for x in os.getloadavg()]
    return {"nproc": os.cpu_count(), "cpu": model, "loadavg": load,
            "python": platform.python_version(), "psutil": psutil.__version__,
            "mem_total_gb": round(psutil.virtual_memory().total / 1e9, 1)}


def summarise(runs: list[dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    names = list(dict.fromkeys(n for r in runs for n in r))
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        rows = [r[name] for r in runs if name in r and "error" not in r[name]]
        if not rows:
            out[name] = {"error": next(r[name]["error"] for r in runs if name in r)}
            continue
        s: dict[str, Any] = {"runs": len(rows)}
        for key in ("cpu_ms_per_round", "rss_mb", "uss_mb"):
            vals = [x[key] for x in rows if x.get(key) is not None]
            digits = 3 if key.startswith("cpu") else 1
            s[key] = round(statistics.median(vals), digits) if vals else None
            if key.startswith("cpu") and vals:
                s["cpu_ms_per_round_all"] = vals
        out[name] = s
    ref = out.get(REF, {})
    for s in out.values():
        for key, ratio in (("cpu_ms_per_round", "cpu_x_netroom"), ("rss_mb", "rss_x_netroom")):
            if s.get(key) is not None and ref.get(key):
                s[ratio] = round(s[key] / ref[key], 2)
    return out


def table(summary: dict[str, dict[str, Any]], missing: dict[str, str]) -> str:
    def f(v: Any, fmt: str) -> str:
        return "-".rjust(int(fmt.split(".", maxsplit=1)[0])) if v is None else format(v, fmt)
    lines = [f"{'subject':52} {'ms CPU/round':>12} {'RSS MB':>7} {'USS MB':>7} "
             f"{'CPU x':>6} {'RSS x':>6}"]
    for name, s in summary.items():
        if "error" in s:
            lines.append(f"{name:52} {s['error']}")
            continue
        lines.append(f"{name:52} {f(s.get('cpu_ms_per_round'), '12.3f')} {f(s['rss_mb'], '7.1f')} "
                     f"{f(s['uss_mb'], '7.1f')} {f(s.get('cpu_x_netroom'), '6.2f')} "
                     f"{f(s.get('rss_x_netroom'), '6.2f')}")
    lines += [f"{name:52} {why}" for name, why in missing.items()]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=60, help="measured rounds (s) per repeat")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--warmup", type=float, default=10.0, help="s after the first round")
    ap.add_argument("--json", action="store_true", help="print JSON instead of the table")
    ap.add_argument("--python", action="append", default=[], metavar="PATH",
                    help="also run the agent on this interpreter (it needs psutil, "
                    "paho-mqtt and PyYAML); repeatable")
    ap.add_argument("--only", default="", help="comma-separated parts of subject names "
                    "to run (default: all), e.g. 'agent (MQTT),bare'")
    args = ap.parse_args()
    info: dict[str, Any] = {"before": machine(), "netroom": revision()}
    runs: list[dict[str, dict[str, Any]]] = []
    missing: dict[str, str] = {}
    counts: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="netroom-agent-cost-") as d:
        tmp = Path(d)
        with Mosquitto(tmp / "mq") as mosq:
            sub = subscribe(mosq, counts)
            try:
                for i in range(args.repeat):
                    run_dir = tmp / f"run{i}"
                    run_dir.mkdir()
                    res, missing = measure(run_dir, mosq, counts, i, args)
                    runs.append(res)
                    ref = res.get(REF, {})
                    print(f"run {i}: netroom {ref.get('cpu_ms_per_round')} ms CPU/round, "
                          f"{ref.get('rss_mb')} MB RSS; load {os.getloadavg()[0]:.2f}",
                          file=sys.stderr, flush=True)
            finally:
                sub.disconnect()
                sub.loop_stop()
    info["after"] = machine()
    summary = summarise(runs)
    ref = summary.get(REF, {})
    verdict = {"cpu_ms_per_round_target": TARGET_CPU_MS, "rss_mb_target": TARGET_RSS_MB,
               "cpu_ok": bool(ref.get("cpu_ms_per_round") is not None
                              and ref["cpu_ms_per_round"] <= TARGET_CPU_MS),
               "rss_ok": bool(ref.get("rss_mb") is not None and ref["rss_mb"] <= TARGET_RSS_MB)}
    result = {"rounds": args.rounds, "repeat": args.repeat, "warmup_s": args.warmup,
              "machine": info, "summary": summary, "missing": missing, "targets": verdict,
              "runs": runs}
    m = info["before"]
    head = (f"netroom {info['netroom']}; {m['nproc']} x {m['cpu']}, load {m['loadavg']} -> "
            f"{info['after']['loadavg']}; {args.repeat} x {args.rounds} rounds of 1 s, medians")
    text = (f"{head}\n{table(summary, missing)}\ntargets: <= {TARGET_CPU_MS} ms CPU/round "
            f"({'met' if verdict['cpu_ok'] else 'MISSED'}), <= {TARGET_RSS_MB} MB RSS "
            f"({'met' if verdict['rss_ok'] else 'MISSED'})")
    if args.json:
        print(text, file=sys.stderr)
        print(json.dumps(result, indent=1))
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
