"""The agent's transport taken apart: CPU per round of each piece at 1 round/s.

Each variant is its own process sending one 1.8 kB message a second (the size
of a metrics message) through part of the agent's transport; all run at once
against one mosquitto on 127.0.0.1, measured like bench/agent_cost.py (CPU
from a cgroup, rounds counted from the child's output). "idle" only wakes:
subtract it to get a piece's own cost. Used to find where the ~1 ms of
transport per round goes (docs/benchmarks.md).

Run: python3 bench/transport_parts.py [--rounds 60]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

from procmeter import REPO, Subject

sys.path.insert(0, str(REPO / "tests"))
from servers import Mosquitto

VARIANTS = {
    "idle": "a process that wakes once a second",
    "outbox": "the outbox as Publisher uses it: JSON-wrap, put, peek, JSON-unwrap, delete, peek",
    "put_delete": "outbox put + delete only (no peek, no JSON wrap)",
    "paho_thread": "paho QoS 1 publish + PUBACK, paho's loop thread, no outbox",
    "paho_no_thread": "the same, client.loop() in the main thread",
    "publisher": "agent.transport.Publisher.send() as shipped",
}
TOPIC = "netroom/v1/bench/parts/metrics"


def child(variant: str, port: int, state: str) -> None:
    """Run ``variant`` forever, one round a second, printing a line per round.

    ``state``: a folder of its own for the outbox files.
    """
    sys.path.insert(0, str(REPO))
    from agent.config import MqttConfig
    from agent.outbox import Outbox
    from agent.transport import Publisher
    from netroom.mqtt import connect_args, make_client

    payload = json.dumps({f"k{i}": i * 1.5 for i in range(120)}).encode()
    cfg = MqttConfig(host="127.0.0.1", port=port)
    queue: Any = Outbox(os.path.join(state, "queue"))
    cursor = 0

    def outbox() -> None:
        nonlocal cursor
        ids = queue.put([json.dumps([TOPIC, payload.decode(), False]).encode()])
        for oid, item in queue.peek(100, after=cursor):
            json.loads(item)
            cursor = oid
        queue.delete(ids)
        queue.peek(100, after=cursor)

    client = make_client(cfg, f"parts-{variant}")
    if variant.startswith("paho"):
        client.connect(**connect_args(cfg, persistent=False))
        if variant == "paho_thread":
            client.loop_start()
    pub = Publisher(cfg, f"parts-{variant}", os.path.join(state, "outbox"))
    if variant == "publisher":
        pub.start()
    rounds: dict[str, Callable[[], Any]] = {
        "idle": lambda: None, "outbox": outbox,
        "put_delete": lambda: queue.delete(queue.put([payload])),
        "paho_thread": lambda: client.publish(TOPIC, payload, qos=1),
        "paho_no_thread": lambda: client.publish(TOPIC, payload, qos=1),
        "publisher": lambda: pub.send(TOPIC, payload),
    }
    wait = threading.Event().wait
    while True:
        t0 = time.monotonic()
        rounds[variant]()
        sys.stdout.write("round\n")
        sys.stdout.flush()
        if variant == "paho_no_thread":
            while time.monotonic() - t0 < 1.0:
                client.loop(timeout=max(0.0, 1.0 - (time.monotonic() - t0)))
        else:
            wait(max(0.0, 1.0 - (time.monotonic() - t0)))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=60)
    ap.add_argument("--child", nargs=3, metavar=("VARIANT", "PORT", "DIR"),
                    help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]), args.child[2])
        return 0
    with tempfile.TemporaryDirectory(prefix="netroom-parts-") as d:
        tmp = Path(d)
        with Mosquitto(tmp / "mq") as mosq:
            subs = [Subject(v, [sys.executable, __file__, "--child", v, str(mosq.port),
                                str(tmp / v)], needle=b"round") for v in VARIANTS]
            try:
                for s in subs:
                    s.start(tmp / "stderr.log")
                time.sleep(6)
                t0 = {s.name: (s.cpu_s(), s.count()) for s in subs}
                time.sleep(args.rounds)
                for s in subs:
                    cpu, n = s.cpu_s() - t0[s.name][0], s.count() - t0[s.name][1]
                    per = f"{cpu * 1000 / n:6.3f}" if n else "     -"
                    print(f"{s.name:17} {per} ms CPU/round  {VARIANTS[s.name]}")
            finally:
                for s in subs:
                    s.stop()
    print(f"load {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
