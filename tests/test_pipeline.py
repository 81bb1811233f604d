"""Agent -> mosquitto -> collector -> InfluxDB, on real servers, with faults;
the ingest's hooks (facts_of, on_durable) and its MQTT version."""
from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
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

from collector.config import load
from collector.influx.client import InfluxSink
from collector.ingest.deadletter import DeadLetters
from collector.ingest.delivery import Delivery
from collector.ingest.entry import Counters, Entry
from collector.ingest.spool import Spool
from collector.ingest.subscriber import Ingest
from collector.ingest.writer import Writer
from netroom import protocol, schema


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
    # The PC's totals over its NICs and disks (the agent leaves loopback out).
    assert row["net_bytes_recv"] == sum(n["bytes_recv"] for n in m["nics"])
    assert row["net_bytes_sent"] == sum(n["bytes_sent"] for n in m["nics"])
    assert row["nics_up"] == sum(1 for n in m["nics"] if n.get("is_up") is True)
    assert row["disk_total_bytes"] == sum(d["total_bytes"] for d in m["disks"])
    assert row["disk_used_percent"] == max(d["used_percent"] for d in m["disks"])
    inv = sent["inventory"]
    inv_row = next(series(influxd.query("SELECT * FROM inventory", "rt")))
    assert inv_row["hostname"] == inv["hostname"]
    assert inv_row["host_id"] == inv["host_id"]
    assert inv_row["mem_total_bytes"] == inv["mem_total_bytes"]
    assert json.loads(inv_row["nics"]) == inv["nics"]
    assert inv_row["nic_count"] == len(inv["nics"])
    assert json.loads(inv_row["disks"]) == inv["disks"]
    # At default settings a PC makes one series per kind it sends, no more.
    kinds = {v[0] for v in influxd.query("SHOW MEASUREMENTS", "rt")[
        "results"][0]["series"][0]["values"]} - {schema.SELF, schema.RP_CHOICE}
    assert {"inventory", "metrics"} <= kinds <= set(protocol.KINDS)
    keys = [v[0] for v in influxd.query(
        f"SHOW SERIES WHERE \"host\" = '{m['host']}'", "rt")["results"][0]["series"][0][
        "values"]]
    assert len(keys) == len(kinds) <= 6, keys


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
        assert wait_until(lambda: count(influxd, "kill", "metrics", "users") > 0, 15)
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


# --- the ingest on its own: Ingest -> Writer as collector/service.py wires them ---

class Pipe:
    """Ingest and Writer on the real servers, with their hooks; the writer
    thread's exception, if any, in ``error`` (service.py ends the process on it)."""

    def __init__(self, cfg_path: Path, facts_of: Callable[[protocol.Message, int], Any] | None,
                 on_durable: Callable[[list[Entry]], None] | None, **over: Any) -> None:
        import dataclasses

        cfg = dataclasses.replace(load(cfg_path), **over)
        self.counters = Counters()
        self.sink = InfluxSink(cfg.influxdb)
        self.sink.ensure_database()
        self.spool = Spool(cfg.spool_dir)
        self.deadletters = DeadLetters(cfg.spool_dir)
        self.fatal: list[str] = []
        self.acked: list[Entry] = []
        self.events: list[tuple[str, Any]] = []  # ("durable", entries) / ("ack", entry)
        self.error: BaseException | None = None
        # The writer is made below (it acks through the ingest): bound late.
        self.ingest = Ingest(cfg.subscriber, lambda e: self.writer.put(e),  # noqa: PLW0108
                             self.counters, on_fatal=self.fatal.append, facts_of=facts_of,
                             handle_many=lambda es: self.writer.put_many(es))  # noqa: PLW0108

        def durable(entries: list[Entry]) -> None:
            self.events.append(("durable", list(entries)))
            if on_durable is not None:
                on_durable(entries)

        def ack(e: Entry) -> None:
            self.events.append(("ack", e))
            self.acked.append(e)
            self.ingest.ack(e)

        self.writer = Writer(Delivery(self.sink.write, cfg.max_body_bytes), self.spool,
                             self.deadletters, ack, self.counters, cfg.batch_size,
                             cfg.flush_interval_s, cfg.queue_max_bytes, on_durable=durable)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self.ingest.start()
        assert self.ingest.subscribed.wait(10)

    def _run(self) -> None:
        try:
            self.writer.run(self._stop)
        except Exception as exc:  # the test looks at it
            self.error = exc

    def stop(self) -> None:
        self.writer.close()
        self._stop.set()
        self._thread.join(30)
        self.ingest.stop()
        self.spool.close()
        self.deadletters.close()
        self.sink.close()


def good(i: int, **kw: Any) -> tuple[str, bytes]:
    return message("metrics", {"users": i}, host=f"pc-{i}", ts=T0 + i, **kw)


def test_on_durable_sees_exactly_the_durable_entries_before_their_acks(
        tmp_path: Path, mosquitto: Mosquitto, influxd: Influxd) -> None:
    # `load1` holds strings for pc-bad: InfluxDB refuses its float (400, partial write).
    influxd.post('CREATE DATABASE "hooks"')
    influxd.write(f'metrics,site=sq-1,host=pc-bad load1="text" {T0 * 1000 - 1000}', "hooks")
    cfg = write_config(tmp_path, mosquitto, influxd, db="hooks")
    pipe = Pipe(cfg, lambda msg, t: (msg.host, t), None)
    try:
        refused = message("metrics", {"load1": 0.5}, host="pc-bad", ts=T0)
        invalid = ("netroom/v1/sq-1/pc-x/metrics", b"not json")
        msgs = [good(i) for i in range(50)]
        msgs[10:10] = [invalid]
        msgs[20:20] = [refused]
        pub = Publisher(mosquitto)
        pub.publish_many(msgs)
        pub.close()
        assert wait_until(lambda: len(pipe.acked) == len(msgs), 20), len(pipe.acked)
    finally:
        pipe.stop()
    assert pipe.error is None and not pipe.fatal
    durable = [e for kind, x in pipe.events if kind == "durable" for e in x]
    # Every valid message InfluxDB took, once, with its facts; not the two set aside.
    assert sorted(e.payload for e in durable) == sorted(p for _, p in msgs
                                                       if p not in (invalid[1], refused[1]))
    assert all(e.facts == (json.loads(e.payload)["host"], json.loads(e.payload)["ts"] * 1000)
               for e in durable)
    # ... each before its ack; the acks in the broker's order.
    seen: set[int] = set()
    for kind, x in pipe.events:
        if kind == "durable":
            seen.update(id(e) for e in x)
        elif x.payload not in (invalid[1], refused[1]):  # those are dead letters
            assert id(x) in seen, "acknowledged before on_durable saw it"
    assert [e.payload for e in pipe.acked] == [p for _, p in msgs]
    assert count(influxd, "hooks", "metrics", "users") == 50


def test_on_durable_raising_ends_the_writer_and_nothing_is_acknowledged(
        tmp_path: Path, mosquitto: Mosquitto, influxd: Influxd) -> None:
    cfg = write_config(tmp_path, mosquitto, influxd, db="hooks2")

    def broken(entries: list[Entry]) -> None:
        raise RuntimeError("state full")

    pipe = Pipe(cfg, None, broken)
    try:
        pub = Publisher(mosquitto)
        pub.publish_many([good(i) for i in range(20)])
        assert wait_until(lambda: pipe.error is not None, 10)
    finally:
        pipe.stop()
    assert isinstance(pipe.error, RuntimeError) and not pipe.acked
    # The broker kept them for the session: the next collector gets all 20.
    again: list[Entry] = []
    pipe = Pipe(cfg, None, again.extend)
    try:
        assert wait_until(lambda: len(pipe.acked) == 20, 20), len(pipe.acked)
    finally:
        pipe.stop()
        pub.close()
    assert sorted(e.payload for e in again) == sorted(p for _, p in (good(i)
                                                                     for i in range(20)))


def test_facts_of_gets_the_stored_time_and_raising_is_fatal(
        tmp_path: Path, mosquitto: Mosquitto, influxd: Influxd) -> None:
    cfg = write_config(tmp_path, mosquitto, influxd, db="hooks3")
    seen: list[tuple[str, int]] = []

    def facts_of(msg: protocol.Message, stored_ms: int) -> Any:
        if msg.host == "pc-bug":
            raise KeyError(msg.host)  # stands for a bug of ours
        seen.append((msg.host, stored_ms))
        return stored_ms

    pipe = Pipe(cfg, facts_of, None)
    try:
        pub = Publisher(mosquitto)
        before = int(time.time() * 1000)
        pub.publish(*message("metrics", {"users": 1}, host="pc-now", ts=T0))
        pub.publish(*message("metrics", {"users": 2}, host="pc-2099", ts=4_070_908_800.0))
        assert wait_until(lambda: len(pipe.acked) == 2, 10)
        after = int(time.time() * 1000)
        pub.publish(*message("metrics", {"users": 3}, host="pc-bug", ts=T0))
        assert wait_until(lambda: bool(pipe.fatal), 10)
    finally:
        pipe.stop()
    assert seen[0] == ("pc-now", T0 * 1000)
    assert seen[1][0] == "pc-2099" and before <= seen[1][1] <= after  # stored at receive time
    assert [e.facts for e in pipe.acked] == [s[1] for s in seen]
    assert "KeyError" in pipe.fatal[0] and len(pipe.acked) == 2
    # Unacknowledged: the broker sends it again to the session.
    pipe = Pipe(cfg, lambda msg, t: t, None)
    try:
        assert wait_until(lambda: len(pipe.acked) == 1, 10)
    finally:
        pipe.stop()
        pub.close()
    assert json.loads(pipe.acked[0].payload)["host"] == "pc-bug"


def test_collector_on_mqtt_3_1_1_keeps_its_session_and_shares_a_subscription(
        tmp_path: Path, mosquitto: Mosquitto, influxd: Influxd,
        run_collector: Callable[[Path], Any]) -> None:
    cfg = write_config(tmp_path, mosquitto, influxd, db="v311",
                       collector={"mqtt_protocol": "3.1.1"})
    svc = run_collector(cfg)
    assert svc.ingest.client.protocol == mqtt.MQTTv311
    pub = Publisher(mosquitto)  # the agents keep MQTT 5
    pub.publish_many([good(i) for i in range(10)])
    assert wait_count(influxd, "v311", "metrics", "users", 10) == 10
    svc.stop()
    pub.publish_many([good(i) for i in range(10, 30)])  # queued for the session
    run_collector(cfg)
    assert wait_count(influxd, "v311", "metrics", "users", 30) == 30
    # p2: MQTT 3.1.1, c0: clean session false (a persistent session).
    assert "as netroom-collector (p2, c0," in mosquitto.log_tail()
    # Two 3.1.1 clients in one shared group split the messages between them.
    got: list[list[Entry]] = [[], []]
    pipes = [Pipe(cfg, None, got[i].extend, client_id=f"w{i}",
                  subscription="$share/g/netroom/v1/#") for i in range(2)]
    try:
        pub.publish_many([good(i) for i in range(30, 130)])
        assert wait_until(lambda: len(got[0]) + len(got[1]) >= 100, 20)
    finally:
        for p in pipes:
            p.stop()
        pub.close()
    assert len(got[0]) + len(got[1]) == 100 and got[0] and got[1]


def test_put_many_blocks_at_the_queue_bound_one_entry_over_at_most(tmp_path: Path) -> None:
    entries = [Entry(i + 1, 1, ["m,host=h x=1i 1"], "t", b"x" * 1000) for i in range(50)]
    size = entries[0].size
    writer = Writer(Delivery(lambda lines: None, 2**20), Spool(str(tmp_path)),
                    DeadLetters(str(tmp_path)), lambda e: None, Counters(), 5000, 1.0,
                    10 * size + 1)  # room for 11 entries
    took: list[bool] = []
    t = threading.Thread(target=lambda: took.append(writer.put_many(entries)), daemon=True)
    t.start()
    assert wait_until(lambda: writer.queued_bytes >= 11 * size, 5)
    time.sleep(0.3)
    assert t.is_alive() and writer.queued_bytes == 11 * size  # blocked: bound + one entry
    writer.close()
    t.join(5)
    assert took == [False]  # the rest were not taken: the broker sends them again
