"""Broker autosave cost: messages/s into mosquitto with and without autosave.

The case where autosave costs something: the collector is down, so every
message is queued for its persistent session and the database mosquitto
rewrites at each autosave grows. Method: one mosquitto per variant on
loopback, data on disk (not tmpfs: mosquitto fsyncs each save), the
collector's session registered and then offline; one QoS 1 publisher (600 B
payloads, at most 1,000 unacknowledged) runs for --seconds; messages/s =
PUBACKs / seconds. Variants, in one run: autosave off (`autosave_interval 0`:
saved only at exit), deploy/mosquitto/netroom.conf's own autosave lines, and
any `--changes N` (`autosave_on_changes true`, `autosave_interval N`). After
each run a forced save (SIGUSR1) is timed: how long the broker is blocked by
one save of the queue reached.

With --repeat N the variants take turns N times (machine noise hits them
alike) and the table shows each variant's median.

Run: python3 bench/broker_autosave.py [--seconds 150] [--repeat 1] [--changes 100,1000] [--json]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
from servers import Mosquitto, wait_until  # noqa: E402

PAYLOAD = b"x" * 600  # ~ a netroom message on average (deploy/mosquitto/netroom.conf)
WINDOW = 1000  # unacknowledged publishes at most (paho's mids wrap at 65535)


def production_autosave() -> list[str]:
    """The autosave lines of deploy/mosquitto/netroom.conf."""
    text = (REPO / "deploy" / "mosquitto" / "netroom.conf").read_text(encoding="utf-8")
    return re.findall(r"^autosave_\w+ .*$", text, re.MULTILINE)


def register_session(mosq: Mosquitto) -> None:
    """The collector's persistent session, subscribed, then disconnected."""
    done = threading.Event()
    c = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5, client_id="collector")
    c.on_subscribe = lambda *a: done.set()
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 86400
    c.connect(mosq.host, mosq.port, clean_start=False, properties=props)
    c.loop_start()
    c.subscribe("netroom/v1/#", qos=1)
    if not done.wait(10):
        raise RuntimeError("no SUBACK")
    c.disconnect()
    c.loop_stop()


def publish_for(mosq: Mosquitto, seconds: float) -> int:
    """Publish QoS 1 for ``seconds``; the number of PUBACKs received."""
    acked = [0]
    c = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5, client_id="agent")
    c.max_inflight_messages_set(100)
    c.on_publish = lambda *a: acked.__setitem__(0, acked[0] + 1)
    c.connect(mosq.host, mosq.port)
    c.loop_start()
    sent = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if sent - acked[0] < WINDOW:
            c.publish("netroom/v1/bench/pc-01/metrics", PAYLOAD, qos=1)
            sent += 1
        else:
            time.sleep(0.0005)
    n = acked[0]
    wait_until(lambda: acked[0] >= sent, 120)
    c.disconnect()
    c.loop_stop()
    return n


def timed_save(mosq: Mosquitto) -> tuple[float, int]:
    """(seconds, bytes) of one forced save (SIGUSR1) of the current queue."""
    db = mosq.datadir / "mosquitto.db"
    before = db.stat().st_mtime_ns if db.exists() else 0
    start = time.perf_counter()
    assert mosq.proc is not None
    mosq.proc.send_signal(signal.SIGUSR1)
    wait_until(lambda: db.exists() and db.stat().st_mtime_ns != before
               and not (mosq.datadir / "mosquitto.db.new").exists(), 600, 0.001)
    return time.perf_counter() - start, db.stat().st_size


def run(name: str, lines: list[str], seconds: float, base: Path) -> dict[str, Any]:
    workdir = base / re.sub(r"\W+", "-", name)
    mosq = Mosquitto(workdir=workdir, extra_config=lines)
    mosq.start()
    try:
        register_session(mosq)
        n = publish_for(mosq, seconds)
        save_s, size = timed_save(mosq)
        saves = (mosq.datadir / "mosquitto.log").read_text(encoding="utf-8").count(
            "Saving in-memory database")
    finally:
        mosq.kill()
        shutil.rmtree(workdir, ignore_errors=True)
    return {"variant": name, "config": lines, "messages": n, "seconds": seconds,
            "msgs_per_s": round(n / seconds), "saves": saves - 1,
            "save_s_at_end": round(save_s, 3), "db_mb_at_end": round(size / 1e6)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=150.0, help="publishing time per variant")
    p.add_argument("--repeat", type=int, default=1, help="rounds over all variants")
    p.add_argument("--changes", default="", help="also autosave_on_changes with these counts")
    p.add_argument("--dir", default="/var/tmp", help="where the brokers keep their data")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    variants = [("autosave off", ["autosave_interval 0"]),
                ("netroom.conf", production_autosave())]
    for count in filter(None, args.changes.split(",")):
        variants.append((f"on changes {int(count)}",
                         ["autosave_on_changes true", f"autosave_interval {int(count)}"]))
    base = Path(tempfile.mkdtemp(prefix="netroom-autosave-", dir=args.dir))
    runs: list[dict[str, Any]] = []
    try:
        for _ in range(args.repeat):
            runs += [run(name, lines, args.seconds, base) for name, lines in variants]
    finally:
        shutil.rmtree(base, ignore_errors=True)
    if args.json:
        print(json.dumps(runs, indent=1))
        return 0
    results = []
    for name, _lines in variants:
        mine = [r for r in runs if r["variant"] == name]
        mid = sorted(mine, key=lambda r: r["msgs_per_s"])[len(mine) // 2]
        results.append({**mid, "msgs_per_s": round(statistics.median(
            r["msgs_per_s"] for r in mine))})
        if args.repeat > 1:
            print(f"{name}: msgs/s per round {[r['msgs_per_s'] for r in mine]}")
    print(f"{'variant':<16} {'config':<48} {'msgs/s':>8} {'saves':>6} "
          f"{'queue at end':>13} {'one save then':>14}")
    for r in results:
        print(f"{r['variant']:<16} {'; '.join(r['config']):<48} {r['msgs_per_s']:>8} "
              f"{r['saves']:>6} {r['messages']:>13,} {r['save_s_at_end']:>12.2f} s")
    print(f"({os.cpu_count()} CPUs; {args.seconds:g} s each; a queued message is "
          f"{len(PAYLOAD)} B of payload; the save is of the queue at the end)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
