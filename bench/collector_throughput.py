"""Collector throughput: MQTT messages per second made durable in InfluxDB.

Method: start a real mosquitto and influxd on loopback; register the
collector's persistent session; with the collector stopped, queue N agent
messages in the broker; start the collector and time until InfluxDB holds
all N. Peer in the same run: a bare paho subscriber that only acks (the
ceiling for any Python MQTT consumer on this machine). Repeats and reports
medians. Run: python3 bench/collector_throughput.py [--n 50000] [--repeat 3]
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psutil
import yaml
from paho.mqtt.enums import CallbackAPIVersion

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
from servers import Influxd, Mosquitto  # noqa: E402

GOLDEN = json.loads((REPO / "tests/fixtures/golden/metrics.json").read_text())


def messages(n: int, size: str) -> list[tuple[str, bytes]]:
    base = dict(GOLDEN["payload"])
    if size == "small":
        base = {k: base[k] for k in ("schema", "ts", "site", "host", "network", "role",
                                     "cpu_percent", "mem_used_percent", "uptime_s", "collect_ms")}
    out = []
    t0 = int(time.time()) - 3600  # within the collector's clock bounds: stored as sent
    for i in range(n):
        host = f"pc-{i % 500:03d}"
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


def run_collector(tmp: Path, mosq: Mosquitto, influxd: Influxd, db: str, n: int,
                  msgs: list[tuple[str, bytes]], protocol: str, workers: int
                  ) -> dict[str, float]:
    cfg = {
        "mqtt": {"host": mosq.host, "port": mosq.port, "protocol": protocol},
        "influxdb": {"url": influxd.url, "database": db},
        "collector": {"spool_dir": str(tmp / f"spool-{db}"), "batch_size": 5000,
                      "flush_interval": 0.5, "client_id": f"bench-{db}",
                      "workers": workers},
    }
    path = tmp / f"{db}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    argv = [sys.executable, "-m", "collector", "--config", str(path), "--log-level", "WARNING"]
    # Register the persistent session, then stop so the broker queues for us.
    p = subprocess.Popen(argv, cwd=REPO)
    time.sleep(2.0 + workers)  # every worker connected and subscribed once
    p.terminate()
    p.wait(30)
    publish(mosq, msgs)
    t0 = time.perf_counter()
    p = subprocess.Popen(argv, cwd=REPO)
    proc = psutil.Process(p.pid)
    deadline = t0 + 300
    cpu = 0.0
    while time.perf_counter() < deadline:
        c = proc.cpu_times()
        cpu = c.user + c.system + c.children_user + c.children_system
        for child in proc.children():
            try:
                cc = child.cpu_times()
                cpu += cc.user + cc.system
            except psutil.Error:
                pass
        if influx_count(influxd, db) >= n:
            break
        time.sleep(0.05)
    elapsed = time.perf_counter() - t0
    got = influx_count(influxd, db)
    p.terminate()
    p.wait(30)
    return {"msgs": got, "elapsed_s": elapsed, "msg_per_s": got / elapsed,
            "cpu_ms_per_msg": cpu * 1000 / max(got, 1)}


def run_bare(mosq: Mosquitto, msgs: list[tuple[str, bytes]], protocol: str) -> float:
    """msg/s of a paho subscriber that acks and does nothing else."""
    v5 = protocol == "5"
    got = [0]

    def client() -> mqtt.Client:
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bare-{protocol}",
                        protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
                        clean_session=None if v5 else False, manual_ack=True)

        def on_message(cl: mqtt.Client, u: Any, m: mqtt.MQTTMessage) -> None:
            got[0] += 1
            cl.ack(m.mid, m.qos)
        c.on_message = on_message
        return c

    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    def connect(c: mqtt.Client) -> None:
        if v5:
            props = Properties(PacketTypes.CONNECT)
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
    t0 = time.perf_counter()
    connect(c)
    c.loop_start()
    while got[0] < len(msgs) and time.perf_counter() - t0 < 120:
        time.sleep(0.01)
    elapsed = time.perf_counter() - t0
    c.disconnect()
    c.loop_stop()
    return got[0] / elapsed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=50000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--size", choices=("full", "small"), default="full")
    ap.add_argument("--protocol", choices=("5", "3.1.1"), default="5")
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args()
    msgs = messages(args.n, args.size)
    results: list[dict[str, float]] = []
    bare: list[float] = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        with Mosquitto(tmp / "mq") as mosq, Influxd(tmp / "influx") as influxd:
            for i in range(args.repeat):
                db = f"bench{i}"
                influxd.post(f'CREATE DATABASE "{db}"')
                results.append(run_collector(tmp, mosq, influxd, db, args.n, msgs,
                                             args.protocol, args.workers))
                bare.append(run_bare(mosq, msgs, args.protocol))
                print(f"run {i}: netroom {results[-1]['msg_per_s']:.0f} msg/s "
                      f"({results[-1]['cpu_ms_per_msg']:.3f} ms CPU/msg), "
                      f"bare paho {bare[-1]:.0f} msg/s", flush=True)
    med = statistics.median(r["msg_per_s"] for r in results)
    cpu = statistics.median(r["cpu_ms_per_msg"] for r in results)
    med_bare = statistics.median(bare)
    print(json.dumps({
        "n": args.n, "size": args.size, "protocol": args.protocol, "repeat": args.repeat,
        "workers": args.workers,
        "collector_msg_per_s_median": round(med), "collector_cpu_ms_per_msg_median": round(cpu, 3),
        "bare_paho_msg_per_s_median": round(med_bare),
        "ratio_to_bare": round(med / med_bare, 2),
    }, indent=1))


if __name__ == "__main__":
    main()
