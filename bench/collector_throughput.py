"""Collector throughput: MQTT messages per second made durable in InfluxDB.

Method: start a real mosquitto and influxd on loopback; register the
collector's persistent session; with the collector stopped, queue 500 PCs'
online statuses (announcing their interval) and N metrics messages in the
broker; start the collector and time from its connection to the broker
(its "connected to" log line: the broker starts sending the queued messages
then) until InfluxDB holds all N (count(uptime_s), polled
every 50 ms once influxd's own write counter says N points may be there:
the count scans every point, and polling it throughout loaded influxd, the
system under test, as the bare peer is not; --poll count does that). CPU is counted from the
same moment, so interpreter start-up and imports are left out. Peer in the
same run: a bare paho subscriber that only acks (the ceiling for any Python
MQTT consumer on this machine), timed from its CONNACK. Repeats and reports
medians and the ratio netroom / bare paho, to the peer speaking the
collector's MQTT version and to the other one.
Run: python3 bench/collector_throughput.py [--n 50000] [--repeat 3]
     [--collector-protocol 3.1.1] [--size small] [--workers 2] [--poll count]
"""
from __future__ import annotations

import argparse
import json
import signal
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
import yaml
from paho.mqtt.enums import CallbackAPIVersion

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]
from servers import OPENER, Influxd, Mosquitto  # noqa: E402

from collector.config import load  # noqa: E402

GOLDEN = json.loads((REPO / "tests/fixtures/golden/metrics.json").read_text())
HOSTS = 500  # PCs the metrics come from, each preceded by its online status


def messages(n: int, size: str) -> list[tuple[str, bytes]]:
    base = dict(GOLDEN["payload"])
    if size == "small":
        base = {k: base[k] for k in ("schema", "ts", "site", "host", "network", "role",
                                     "cpu_percent", "mem_used_percent", "uptime_s", "collect_ms")}
    t0 = int(time.time()) - 3600  # within the collector's clock bounds: stored as sent
    # Each PC's online status first, as an agent sends at every connection:
    # it announces the interval its heartbeats keep.
    envelope = {k: GOLDEN["payload"][k] for k in ("schema", "site", "network", "role")}
    out = [(f"netroom/v1/sq-1/{host}/status", json.dumps(
        {**envelope, "ts": t0 - 1, "host": host, "state": "online", "agent_version": "0.1.0",
         "interval_s": 60.0}).encode()) for host in (f"pc-{i:03d}" for i in range(HOSTS))]
    for i in range(n):
        host = f"pc-{i % HOSTS:03d}"
        p = {**base, "host": host, "ts": t0 + i / 1000}
        out.append((f"netroom/v1/sq-1/{host}/metrics", json.dumps(p).encode()))
    return out


def publish(mosq: Mosquitto, msgs: list[tuple[str, bytes]]) -> None:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-pub")
    c.max_inflight_messages_set(1000)
    c.connect(mosq.host, mosq.port)
    c.loop_start()
    infos = [c.publish(t, p, qos=1) for t, p in msgs]
    for info in infos:
        info.wait_for_publish(120)
    c.disconnect()
    c.loop_stop()


def influx_count(influxd: Influxd, db: str) -> int:
    res = influxd.query('SELECT count("uptime_s") FROM metrics', db)
    series = res["results"][0].get("series")
    return int(series[0]["values"][0][1]) if series else 0


def points_written(influxd: Influxd, db: str) -> int:
    """Points influxd took into ``db`` (its shards' writePointsOk, /debug/vars):
    at least count(uptime_s), for 1 ms of influxd CPU where the count costs
    9 ms at 20,000 points and grows with them."""
    with OPENER.open(f"{influxd.url}/debug/vars", timeout=30) as r:
        stats = json.loads(r.read())
    return sum(int(v["values"].get("writePointsOk", 0)) for v in stats.values()
               if isinstance(v, dict) and v.get("name") == "shard"
               and v.get("tags", {}).get("database") == db)


def cpu_s(proc: psutil.Process) -> float:
    """CPU seconds (user + system) of ``proc`` and its children, exited ones too."""
    c = proc.cpu_times()
    cpu = c.user + c.system + c.children_user + c.children_system
    for child in proc.children():
        try:
            cc = child.cpu_times()
            cpu += cc.user + cc.system
        except psutil.Error:
            pass
    return cpu


class Started:
    """Starts the collector with its log on a pipe; ``connected`` is set at
    the ``workers``-th "connected to" line (the last worker's CONNACK);
    ``first`` is (perf_counter, its CPU s, ``other``'s CPU s) at the first
    one: the clock starts there, as the first worker takes messages before
    the others connect (their start-up counts in)."""

    def __init__(self, argv: list[str], workers: int,
                 other: psutil.Process | None = None) -> None:
        self.connected = threading.Event()
        self.first = (0.0, 0.0, 0.0)
        self._other = other
        self.p = subprocess.Popen(argv, cwd=REPO, stderr=subprocess.PIPE, text=True)
        self.proc = psutil.Process(self.p.pid)
        self._workers = workers
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.p.stderr is not None
        seen = 0
        for line in self.p.stderr:
            if "connected to" in line:
                seen += 1
                if seen == 1:
                    self.first = (time.perf_counter(), cpu_s(self.proc),
                                  cpu_s(self._other) if self._other else 0.0)
                if seen >= self._workers:
                    self.connected.set()
            elif " WARNING " in line or " ERROR " in line or " CRITICAL " in line:
                sys.stderr.write(line)

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.terminate()
        self.p.wait(30)
        self._thread.join(5)


# --org: the messages' site in a sites tree, as deployed: every point then
# carries the org path's ids and names (Org.tags_for), about 120 bytes more.
ORG = [{"id": "bj", "name": "北京市局", "children": [
    {"id": "zd-1", "name": "第一支队", "children": [
        {"id": "dd-1", "name": "第一大队", "children": [
            {"id": "sq-1", "name": "第一中队", "cadres": 0, "staff": 0}]}]}]}]


def run_collector(tmp: Path, mosq: Mosquitto, influxd: Influxd, db: str, n: int,
                  msgs: list[tuple[str, bytes]], protocol: str, workers: int,
                  collector_protocol: str | None, cheap_poll: bool = True,
                  org: bool = False) -> dict[str, Any]:
    col: dict[str, Any] = {"spool_dir": str(tmp / f"spool-{db}"), "batch_size": 5000,
                           "flush_interval": 0.5, "client_id": f"bench-{db}",
                           "workers": workers}
    if collector_protocol:
        col["mqtt_protocol"] = collector_protocol
    cfg = {
        "mqtt": {"host": mosq.host, "port": mosq.port, "protocol": protocol},
        "influxdb": {"url": influxd.url, "database": db},
        "collector": col,
        **({"sites": ORG, "rules": {"evaluate_interval": 86400}} if org else {}),
    }
    path = tmp / f"{db}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    # The protocol the collector's subscriber speaks: the bare peer speaks it too.
    speaks = load(path).subscriber.mqtt.protocol
    argv = [sys.executable, "-m", "collector", "--config", str(path), "--log-level", "INFO"]
    # Register the persistent session, then stop so the broker queues for us.
    s = Started(argv, workers)
    try:
        if not s.connected.wait(30):
            raise SystemExit("the collector did not connect")
        time.sleep(1.0)  # subscribed too
    finally:
        s.stop()
    publish(mosq, msgs)
    assert influxd.proc is not None
    db_proc = psutil.Process(influxd.proc.pid)
    s = Started(argv, workers, db_proc)
    try:
        proc = s.proc
        if not s.connected.wait(60):
            raise SystemExit("the collector did not connect")
        t0, cpu0, db_cpu0 = s.first
        deadline = t0 + 300
        cpu = cpu0
        while time.perf_counter() < deadline:
            cpu = cpu_s(proc)
            # The count, the stop condition, only once influxd's write counter
            # allows it: counting all points every 50 ms cost influxd about
            # a quarter of its CPU in the run (docs/benchmarks.md).
            if (not cheap_poll or points_written(influxd, db) >= n) and \
                    influx_count(influxd, db) >= n:
                break
            time.sleep(0.05)
        elapsed = time.perf_counter() - t0
        # The statuses went first (the broker keeps a session's order).
        got = influx_count(influxd, db) + len(msgs) - n
        db_cpu = cpu_s(db_proc) - db_cpu0  # with the benchmark's own count queries
    finally:
        s.stop()
    return {"msgs": got, "elapsed_s": elapsed, "msg_per_s": got / elapsed,
            "cpu_ms_per_msg": (cpu - cpu0) * 1000 / max(got, 1), "protocol": speaks,
            "influxd_cpu_ms_per_msg": db_cpu * 1000 / max(got, 1)}


def run_bare(mosq: Mosquitto, msgs: list[tuple[str, bytes]], protocol: str
             ) -> tuple[float, float]:
    """msg/s and ms CPU/msg of a paho subscriber that acks and does nothing else
    (the CPU of this process, whose main thread only polls a counter meanwhile)."""
    v5 = protocol == "5"
    got = [0]
    connected = threading.Event()

    def client() -> mqtt.Client:
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bare-{protocol}",
                        protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
                        clean_session=None if v5 else False, manual_ack=True)

        def on_message(cl: mqtt.Client, u: Any, m: mqtt.MQTTMessage) -> None:
            got[0] += 1
            cl.ack(m.mid, m.qos)
        c.on_message = on_message
        c.on_connect = lambda *a: connected.set()
        return c

    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    def connect(c: mqtt.Client) -> None:
        if v5:
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = 3600
            props.ReceiveMaximum = 65535
            c.connect(mosq.host, mosq.port, clean_start=False, properties=props)
        else:
            c.connect(mosq.host, mosq.port)
        c.subscribe("netroom/v1/#", qos=1)

    c = client()
    connect(c)
    c.loop(1)
    c.disconnect()
    publish(mosq, msgs)
    c = client()
    connected.clear()
    connect(c)
    c.loop_start()
    connected.wait(30)
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    while got[0] < len(msgs) and time.perf_counter() - t0 < 120:
        time.sleep(0.01)
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    c.disconnect()
    c.loop_stop()
    return got[0] / elapsed, cpu * 1000 / max(got[0], 1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=50000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--size", choices=("full", "small"), default="full")
    ap.add_argument("--protocol", choices=("5", "3.1.1"), default="5",
                    help="mqtt.protocol (the agents')")
    ap.add_argument("--collector-protocol", choices=("5", "3.1.1"), default=None,
                    help="collector.mqtt_protocol (default: not set, the collector's "
                    "default); ratio_to_bare is to the bare peer speaking the same")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--org", action="store_true",
                    help="the site in a sites tree: points carry the org ids and names")
    ap.add_argument("--poll", choices=("writes", "count"), default="writes",
                    help="count: the count query every 50 ms (the method before "
                    "2026-12-03 evening); writes: only once influxd's write counter "
                    "reaches N")
    args = ap.parse_args()
    # Stopped with SIGTERM, still stop the servers and the collector (finally blocks).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    msgs = messages(args.n, args.size)
    results: list[dict[str, Any]] = []
    bare: dict[str, list[float]] = {"5": [], "3.1.1": []}
    bare_cpu: dict[str, list[float]] = {"5": [], "3.1.1": []}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        with Mosquitto(tmp / "mq") as mosq, Influxd(tmp / "influx") as influxd:
            for i in range(args.repeat):
                db = f"bench{i}"
                influxd.post(f'CREATE DATABASE "{db}"')
                r = run_collector(tmp, mosq, influxd, db, args.n, msgs, args.protocol,
                                  args.workers, args.collector_protocol,
                                  cheap_poll=args.poll == "writes", org=args.org)
                results.append(r)
                # Both peers, the collector's own protocol first.
                for proto in sorted(bare, key=lambda p: p != r["protocol"]):
                    rate, cpu_ms = run_bare(mosq, msgs, proto)
                    bare[proto].append(rate)
                    bare_cpu[proto].append(cpu_ms)
                peers = ", ".join(f"bare paho MQTT {p} {b[-1]:.0f} msg/s "
                                  f"({bare_cpu[p][-1]:.3f} ms CPU/msg; "
                                  f"ratio {r['msg_per_s'] / b[-1]:.2f})"
                                  for p, b in bare.items())
                print(f"run {i}: netroom MQTT {r['protocol']} {r['msg_per_s']:.0f} msg/s "
                      f"({r['cpu_ms_per_msg']:.3f} ms CPU/msg, influxd "
                      f"{r['influxd_cpu_ms_per_msg']:.3f}); {peers}", flush=True)
    med = statistics.median(r["msg_per_s"] for r in results)
    cpu = statistics.median(r["cpu_ms_per_msg"] for r in results)
    med_bare = {p: statistics.median(b) for p, b in bare.items()}
    med_bare_cpu = {p: statistics.median(b) for p, b in bare_cpu.items()}
    same = results[0]["protocol"]
    print(json.dumps({
        "n": args.n, "size": args.size, "protocol": args.protocol,
        "collector_protocol": same, "repeat": args.repeat, "workers": args.workers,
        "poll": args.poll,
        "collector_msg_per_s_median": round(med), "collector_cpu_ms_per_msg_median": round(cpu, 3),
        "influxd_cpu_ms_per_msg_median": round(statistics.median(
            r["influxd_cpu_ms_per_msg"] for r in results), 3),
        # The peer speaking the collector's protocol, and the ratio to it.
        "bare_paho_msg_per_s_median": round(med_bare[same]),
        "ratio_to_bare": round(med / med_bare[same], 2),
        "bare_paho_msg_per_s_median_by_protocol": {p: round(b) for p, b in med_bare.items()},
        "ratio_to_bare_by_protocol": {p: round(med / b, 2) for p, b in med_bare.items()},
        # CPU per message: less moved by other load on the machine than msg/s.
        "bare_paho_cpu_ms_per_msg_median_by_protocol": {p: round(c, 3)
                                                        for p, c in med_bare_cpu.items()},
        "cpu_ratio_by_protocol": {p: round(c / cpu, 2) for p, c in med_bare_cpu.items()},
    }, indent=1))


if __name__ == "__main__":
    main()
