"""Agent -> mosquitto -> collector -> InfluxDB, on real servers, with faults."""
from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import paho.mqtt.client as mqtt
from harness import (
    REPO,
    T0,
    Publisher,
    count,
    message,
    run_cli,
    series,
    start_collector,
    stop_process,
    wait_count,
    write_config,
)
from paho.mqtt.enums import CallbackAPIVersion
from servers import Influxd, Mosquitto, wait_until

from netroom import protocol


class Recorder:
    """A second subscriber: records exactly what crossed the broker."""

    def __init__(self, mosq: Mosquitto, topic: str = protocol.TOPIC_PREFIX + "/#") -> None:
        self.messages: list[tuple[str, dict[str, Any], bool]] = []
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="recorder",
                                  protocol=mqtt.MQTTv5)
        self.client.on_message = lambda c, u, m: self.messages.append(
            (m.topic, json.loads(m.payload), m.retain))
        self.client.connect(mosq.host, mosq.port)
        self.client.subscribe(topic, qos=1)
        self.client.loop_start()

    def kinds(self) -> list[str]:
        return [t.rsplit("/", 1)[1] for t, _, _ in self.messages]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_agent_round_lands_in_influxdb_with_the_published_values(
        tmp_path: Path, mosquitto: Mosquitto, influxd: Influxd,
        run_collector: Callable[[Path], Any]) -> None:
    cfg = write_config(tmp_path, mosquitto, influxd, db="rt")
    run_collector(cfg)
    rec = Recorder(mosquitto)
    time.sleep(0.2)
    r = run_cli("agent", "--config", str(cfg), "--once")
    assert r.returncode == 0, r.stderr
    assert wait_until(lambda: {"inventory", "metrics"} <= set(rec.kinds()), 10)
    rec.close()
    sent = {t.rsplit("/", 1)[1]: p for t, p, _ in rec.messages}
    wait_count(influxd, "rt", "metrics", "uptime_s", 1)
    wait_count(influxd, "rt", "inventory", "hostname", 1)

    m = sent["metrics"]
    rows = list(series(influxd.query(
        'SELECT * FROM metrics GROUP BY "site", "host", "network", "role"', "rt")))
    assert len(rows) == 1
    row = rows[0]
    assert row["time"] == round(m["ts"] * 1000)
    assert (row["site"], row["host"], row["network"], row["role"]) == (
        "sq-1", m["host"], "gov", "room")
    for name in ("cpu_percent", "mem_total_bytes", "mem_available_bytes", "uptime_s",
                 "users", "swap_total_bytes", "boot_time_s"):
        assert row[name] == m[name], name
    nic_rows = {r["nic"]: r for r in series(influxd.query(
        'SELECT * FROM metrics_nics GROUP BY "nic"', "rt"))}
    assert {n["name"] for n in m["nics"]} == set(nic_rows)
    for nic in m["nics"]:
        assert nic_rows[nic["name"]]["bytes_recv"] == nic["bytes_recv"]
        assert nic_rows[nic["name"]]["is_up"] == nic["is_up"]
    inv = sent["inventory"]
    inv_row = next(series(influxd.query("SELECT * FROM inventory", "rt")))
    assert inv_row["hostname"] == inv["hostname"]
    assert inv_row["host_id"] == inv["host_id"]
    assert inv_row["mem_total_bytes"] == inv["mem_total_bytes"]


def test_once_print_payloads_pass_the_collectors_validation(
        tmp_path: Path, mosquitto: Mosquitto) -> None:
    cfg = write_config(tmp_path, mosquitto)
    mosquitto.stop()  # --print needs no broker
    r = run_cli("agent", "--config", str(cfg), "--once", "--print")
    assert r.returncode == 0, r.stderr
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert {"inventory", "metrics"} <= {x["topic"].rsplit("/", 1)[1] for x in lines}
    for x in lines:
        msg = protocol.decode(x["topic"], json.dumps(x["payload"]).encode())
        assert msg.site == "sq-1"
        assert x["retain"] == protocol.KINDS[msg.kind].retained


def test_bad_messages_are_set_aside_and_counted_while_good_ones_land(
        tmp_path: Path, mosquitto: Mosquitto, influxd: Influxd,
        run_collector: Callable[[Path], Any]) -> None:
    cfg = write_config(tmp_path, mosquitto, influxd, db="bad")
    svc = run_collector(cfg)
    pub = Publisher(mosquitto)
    good = [message("metrics", {"cpu_percent": float(i)}, host=f"pc-{i}", ts=T0 + i)
            for i in range(20)]
    bad = [
        ("netroom/v1/sq-1/pc-1/metrics", b"\xff\xfe not json"),
        ("netroom/v1/sq-1/pc-1/metrics", json.dumps({"schema": 1, "ts": float(T0),
         "site": "sq-1", "host": "pc-1", "network": "gov", "role": "room",
         "cpu_percent": "busy"}).encode()),
        (protocol.topic("sq-9", "pc-1", "metrics"),
         message("metrics", {"cpu_percent": 1.0}, site="sq-1")[1]),
        ("netroom/v1/sq-1/pc-1/metrics", b"{" + b" " * (1 << 20) + b"}"),
        ("netroom/v1/sq-1/pc-1/firmware", message("metrics", {})[1]),
    ]
    mixed = []
    for i, g in enumerate(good):
        mixed.append(g)
        if i < len(bad):
            mixed.append(bad[i])
    pub.publish_many(mixed)
    pub.close()
    assert wait_count(influxd, "bad", "metrics", "cpu_percent", 20) == 20
    values = sorted(r["cpu_percent"] for r in series(influxd.query(
        "SELECT cpu_percent FROM metrics", "bad")))
    assert values == [float(i) for i in range(20)]
    assert wait_until(lambda: svc.stats_fields()["deadlettered"] == 5, 10)
    svc.write_stats()
    wait_count(influxd, "bad", "collector", "invalid", 1)
    stats = next(iter(series(influxd.query("SELECT last(*) FROM collector", "bad"))))
    assert stats["last_invalid"] == 5
    assert stats["last_invalid_utf8"] == 1  # 0xff: not UTF-8
    assert not stats.get("last_invalid_json")
    assert stats["last_invalid_field"] == 1
    assert stats["last_invalid_mismatch"] == 1
    assert stats["last_invalid_size"] == 1
    assert stats["last_invalid_topic"] == 1
    assert stats["last_received"] == 25
    assert stats["last_deadlettered"] == stats["last_deadlettered_invalid"] == 5  # set aside


def test_collector_sigkilled_mid_stream_loses_nothing_and_duplicates_nothing(
        tmp_path: Path, mosquitto: Mosquitto, influxd: Influxd) -> None:
    cfg = write_config(tmp_path, mosquitto, influxd, db="kill",
                       collector={"batch_size": 50, "flush_interval": 0.5})
    log = tmp_path / "collector.log"
    col = start_collector(cfg, log)
    pub = Publisher(mosquitto)
    n = 3000
    msgs = [message("metrics", {"cpu_percent": float(i % 100), "users": i},
                    host=f"pc-{i % 30}", ts=T0 + i) for i in range(n)]
    try:
        assert wait_until(lambda: "connected" in log.read_text(), 15), log.read_text()
        pub.publish_many(msgs[: n // 2])
        # Kill it while it is busy: some points written, some acks not yet sent.
        wait_until(lambda: count(influxd, "kill", "metrics", "users") > 0, 15)
        col.send_signal(signal.SIGKILL)
        col.wait(10)
        landed_before_restart = count(influxd, "kill", "metrics", "users")
        pub.publish_many(msgs[n // 2:])  # broker queues these for the dead collector
        col = start_collector(cfg, log)
        assert wait_count(influxd, "kill", "metrics", "users", n, timeout=60) == n
    finally:
        pub.close()
        stop_process(col)
    assert landed_before_restart < n
    procs = sorted(r["users"] for r in series(influxd.query(
        "SELECT \"users\" FROM metrics", "kill")))
    assert procs == list(range(n))  # every one exactly once


def test_influxdb_down_spools_to_disk_then_drains(
        tmp_path: Path, mosquitto: Mosquitto, influxd: Influxd,
        run_collector: Callable[[Path], Any]) -> None:
    cfg = write_config(tmp_path, mosquitto, influxd, db="spool",
                       influxdb={"url": influxd.url, "database": "spool", "timeout_s": 2})
    svc = run_collector(cfg)
    pub = Publisher(mosquitto)
    pub.publish(*message("metrics", {"users": 0}, ts=T0))
    assert wait_count(influxd, "spool", "metrics", "users", 1) == 1
    influxd.stop()
    pub.publish_many([message("metrics", {"users": i}, host=f"pc-{i}", ts=T0 + i)
                      for i in range(1, 101)])
    assert wait_until(lambda: svc.counters.spooled >= 100, 20), svc.stats_fields()
    assert len(svc.spool) > 0
    influxd.start()
    assert wait_count(influxd, "spool", "metrics", "users", 101, timeout=60) == 101
    assert wait_until(lambda: len(svc.spool) == 0, 10)
    pub.close()


def test_broker_down_agent_keeps_samples_in_outbox_until_acknowledged(
        tmp_path: Path, mosquitto: Mosquitto, influxd: Influxd,
        run_collector: Callable[[Path], Any]) -> None:
    cfg = write_config(tmp_path, mosquitto, influxd, db="outbox")
    run_collector(cfg)
    mosquitto.stop()
    r = run_cli("agent", "--config", str(cfg), "--once", "--timeout", "2")
    assert r.returncode == 1
    err = r.stderr.strip().splitlines()[-1]
    assert err.startswith("netroom-agent: error: broker 127.0.0.1:")
    assert re.search(r"did not acknowledge [1-9][0-9]* message\(s\)", err) and "outbox" in err
    assert "Traceback" not in r.stderr
    mosquitto.start()
    r = run_cli("agent", "--config", str(cfg), "--once")
    assert r.returncode == 0, r.stderr
    # Both rounds land: the one stored while the broker was down, and this one.
    assert wait_count(influxd, "outbox", "metrics", "uptime_s", 2) == 2
    assert wait_count(influxd, "outbox", "inventory", "hostname", 2) == 2


def _retained_status(mosq: Mosquitto, agent_gone: bool = False) -> dict[str, Any]:
    """The status a new subscriber sees; once the agent is gone it must be retained."""
    rec = Recorder(mosq, "netroom/v1/+/+/status")
    try:
        wait_until(lambda: bool(rec.messages), 5)
    finally:
        rec.close()
    assert rec.messages, "no retained status"
    _topic, payload, retained = rec.messages[-1]
    assert retained or not agent_gone
    return payload


def _start_agent(cfg: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "agent", "--config", str(cfg)],
                            stdout=open(log, "ab"), stderr=subprocess.STDOUT, cwd=REPO)


def test_agent_sigterm_publishes_offline_and_exits_0(
        tmp_path: Path, mosquitto: Mosquitto) -> None:
    cfg = write_config(tmp_path, mosquitto)
    log = tmp_path / "agent.log"
    agent = _start_agent(cfg, log)
    try:
        assert wait_until(lambda: "connected" in log.read_text(), 10), log.read_text()
        assert wait_until(lambda: _retained_status(mosquitto)["state"] == "online", 10)
    finally:
        agent.send_signal(signal.SIGTERM)
        rc = agent.wait(15)
    assert rc == 0, log.read_text()
    status = _retained_status(mosquitto, agent_gone=True)
    assert status["state"] == "offline"
    assert "will" not in status


def test_agent_sigkill_leaves_its_last_will(tmp_path: Path, mosquitto: Mosquitto) -> None:
    cfg = write_config(tmp_path, mosquitto)
    log = tmp_path / "agent.log"
    agent = _start_agent(cfg, log)
    try:
        assert wait_until(lambda: "connected" in log.read_text(), 10), log.read_text()
        assert wait_until(lambda: _retained_status(mosquitto)["state"] == "online", 10)
    finally:
        agent.send_signal(signal.SIGKILL)
        agent.wait(10)
    assert wait_until(lambda: _retained_status(mosquitto, True)["state"] == "offline", 10)
    assert _retained_status(mosquitto, True)["will"] is True


def test_print_into_a_closed_pipe_is_not_a_traceback(tmp_path: Path,
                                                      mosquitto: Mosquitto) -> None:
    cfg = write_config(tmp_path, mosquitto)
    p = subprocess.Popen([sys.executable, "-m", "agent", "--config", str(cfg), "--once",
                          "--print", "--log-file", str(tmp_path / "agent.log")],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO)
    assert p.stdout is not None and p.stderr is not None
    assert p.stdout.read(10)  # like `| head -c 10`
    p.stdout.close()
    err = p.stderr.read().decode()
    assert p.wait(30) == 0
    assert "Traceback" not in err and "BrokenPipe" not in err
    assert (tmp_path / "agent.log").exists()
