"""The local demo: broker, InfluxDB, collector and real agents on this machine.

Everything listens on 127.0.0.1 only and stops by itself. Run through
`bash scripts/demo.sh` (which installs what is missing first). Data stays in
./demo-data for a look afterwards (delete it freely).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
from servers import Influxd, Mosquitto, free_port  # noqa: E402

DATA = REPO / "demo-data"
ROUNDS_S = 12  # how long the agents run, seconds

# The demo squadron's PCs: this machine runs one agent per identity, so the
# compliance report has a small fleet to judge (all real agents, real data).
FLEET = [
    ("pc-room-01", "gov", "room"), ("pc-room-02", "gov", "room"),
    ("pc-room-03", "internet", "room"), ("pc-cadre-01", "gov", "cadre"),
    ("pc-cadre-02", "internet", "cadre"),
]


def say(text: str) -> None:
    print(f"\n== {text}", flush=True)


def write_config(mosq: Mosquitto, influxd: Influxd, speed_port: int, host: str,
                 network: str, role: str) -> Path:
    cfg: dict[str, Any] = yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))
    speed = f"http://127.0.0.1:{speed_port}"
    cfg["mqtt"] = {"host": mosq.host, "port": mosq.port}
    cfg["influxdb"] = {"url": influxd.url, "database": "netroom"}
    cfg.setdefault("collector", {}).update(
        {"spool_dir": str(DATA / "spool"), "stats_interval": 2, "flush_interval": 0.5,
         "speedtest": {"listen": f"127.0.0.1:{speed_port}"}})
    cfg["agent"] = {**cfg.get("agent", {}), "host": host, "network": network, "role": role,
                    "interval": 3, "state_dir": str(DATA / "agents" / host)}
    # The collector's own speed-test server stands in for the portal and the
    # web, so the probes and the speed tests have something real to reach.
    cfg["probes"] = [
        {"name": "portal", "kind": "http", "target": f"{speed}/speedtest/latency.txt",
         "networks": ["gov"], "interval": 5, "timeout": 2},
        {"name": "web", "kind": "tcp", "target": f"127.0.0.1:{speed_port}",
         "networks": ["internet"], "interval": 5, "timeout": 2},
    ]
    if role == "room":  # one tester per network, both against the local speed server
        # (speedtest-cli would reach speedtest.net: the demo stays on loopback)
        method = {"method": "intranet", "url": speed}
        if host in ("pc-room-01", "pc-room-03"):
            cfg["agent"]["bandwidth"] = {"tester": True, "duration": 2, "timeout": 20,
                                         "jitter": 0, **method}
    path = DATA / f"config-{host}.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def influx(influxd: Influxd, q: str) -> list[dict[str, Any]]:
    rows = []
    for res in influxd.query(q, "netroom").get("results", []):
        for s in res.get("series", []):
            for v in s["values"]:
                rows.append({"measurement": s["name"], **(s.get("tags") or {}),
                             **dict(zip(s["columns"], v))})
    return rows


def main() -> int:
    shutil.rmtree(DATA, ignore_errors=True)
    DATA.mkdir()
    procs: list[subprocess.Popen[bytes]] = []
    with Mosquitto(DATA / "mosquitto") as mosq, Influxd(DATA / "influxdb") as influxd:
        say(f"mosquitto on {mosq.host}:{mosq.port}, influxd on {influxd.url}")
        speed_port = free_port()
        configs = {h: write_config(mosq, influxd, speed_port, h, n, r) for h, n, r in FLEET}
        main_cfg = configs[FLEET[0][0]]
        log = open(DATA / "collector.log", "wb")  # noqa: SIM115
        try:
            say("starting netroom-collector")
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "collector", "--config", str(main_cfg)],
                stdout=log, stderr=subprocess.STDOUT, cwd=REPO))
            time.sleep(2)
            say(f"starting {len(FLEET)} real agents on this machine for {ROUNDS_S} s")
            for host, cfg in configs.items():
                # Each stands for a PC of its own: its own hardware identity
                # (agent/identity.py), or the five would be one PC seen five times.
                env = {**os.environ, "NETROOM_AGENT_HARDWARE_ID": f"demo-{host}"}
                procs.append(subprocess.Popen(
                    [sys.executable, "-m", "agent", "--config", str(cfg)],
                    stdout=open(DATA / f"agent-{host}.log", "wb"),  # noqa: SIM115
                    stderr=subprocess.STDOUT, cwd=REPO, env=env))
            time.sleep(ROUNDS_S)
            for p in procs[1:]:
                p.send_signal(signal.SIGTERM)
            for p in procs[1:]:
                p.wait(20)
            time.sleep(2)  # one flush interval and a stats tick
            say("what landed in InfluxDB (database netroom)")
            for row in influx(influxd, "SHOW MEASUREMENTS"):
                name = row["name"]
                n = influx(influxd, f'SELECT count(*) FROM "{name}"')  # noqa: S608 - our own names
                total = max((v for k, v in n[0].items() if k.startswith("count_")),
                            default=0) if n else 0
                print(f"  {name:<20} {total:>6} points")
            say("latest metrics per PC")
            for row in influx(influxd, 'SELECT last(cpu_percent) AS cpu, '
                              'last(mem_used_percent) AS mem, last(uptime_s) AS up '
                              'FROM metrics GROUP BY "host", "network", "role"'):
                print(f"  {row['host']:<12} {row['network']:<9} {row['role']:<6} "
                      f"cpu {row['cpu']:5.1f} %  mem {row['mem']:5.1f} %  "
                      f"uptime {row['up'] / 3600:7.1f} h")
            say("retained status per PC")
            for row in influx(influxd, 'SELECT last(state) AS state FROM status GROUP BY "host"'):
                print(f"  {row['host']:<12} {row['state']}")
            stats = influx(influxd, "SELECT last(*) FROM collector")
            if stats:
                s = stats[0]
                print(f"\n  collector: received {s.get('last_received')}, invalid "
                      f"{s.get('last_invalid')}, written {s.get('last_written')}, "
                      f"spooled {s.get('last_spooled')}")
            say("compliance report (netroom report)")
            r = subprocess.run([sys.executable, "-m", "collector.cli.main", "report", "--config",
                                str(main_cfg), "--format", "table"], cwd=REPO, check=False,
                               capture_output=True, text=True)
            print(r.stdout or r.stderr)
            show_clis(main_cfg)
        finally:
            for p in procs:
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)
                    try:
                        p.wait(20)
                    except subprocess.TimeoutExpired:
                        p.kill()
    say(f"done; everything stopped. Configs and logs are in {DATA}")
    print(json.dumps({"ok": True}))
    return 0


def show_clis(cfg: Path) -> None:
    """What commanders and IT staff ask next: is the room open, can a gov PC
    reach the internet (exit 1 if one can), what hardware is there, which
    agent version runs where; and the report as a printable page."""
    html = DATA / "report.html"
    subprocess.run([sys.executable, "-m", "collector.cli.main", "report", "--config", str(cfg),
                    "--format", "html", "--output", str(html)], cwd=REPO, check=False,
                   capture_output=True)
    if html.exists():
        print(f"  printable report: {html}")
    for title, command in (("rooms (netroom availability)", "availability"),
                           ("gov-network isolation (netroom isolation)", "isolation"),
                           ("hardware register (netroom inventory)", "inventory"),
                           ("agent versions and self-updates (netroom versions)", "versions")):
        say(title)
        r = subprocess.run([sys.executable, "-m", "collector.cli.main", command, "--config",
                            str(cfg)], cwd=REPO, check=False, capture_output=True, text=True)
        print(r.stdout or r.stderr)


if __name__ == "__main__":
    sys.exit(main())
