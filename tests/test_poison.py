"""Poison input, refusals and full disks: the collector carries on by itself.

Real mosquitto, real influxd, the real collector (in this process, so the
test can read its counters). Every test counts: sent = landed + set aside.
Each case stalled ingestion for every site before issue 9.
"""
from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from harness import (
    Publisher,
    count,
    message,
    series,
    start_collector,
    stop_process,
    wait_count,
    write_config,
)
from servers import Influxd, Mosquitto, wait_until

from collector.ingest.deadletter import DeadLetters

GOOD = 200


def good_messages(n: int = GOOD, prefix: str = "pc") -> list[tuple[str, bytes]]:
    return [message("metrics", {"cpu_percent": float(i % 100)}, host=f"{prefix}-{i}")
            for i in range(n)]


def stats(svc: Any) -> dict[str, Any]:
    return dict(svc.stats_fields())


def letters(spool_dir: Path) -> DeadLetters:
    return DeadLetters(str(spool_dir))


def test_lone_surrogate_is_set_aside_and_the_good_ones_land(
        tmp_path: Path, mosquitto: Mosquitto, influxd: Influxd, influx_db: str,
        run_collector: Callable[[Path], Any]) -> None:
    svc = run_collector(write_config(tmp_path, mosquitto, influxd, db=influx_db))
    bad = [
        ("netroom/v1/sq-1/pc-x/metrics",
         b'{"schema":1,"ts":%d,"site":"sq-1","host":"pc-x","network":"gov","role":"room",'
         b'"errors":["\\ud800"]}' % int(time.time())),
        ("netroom/v1/sq-1/pc-y/status",
         b'{"schema":1,"ts":%d,"site":"sq-1","host":"pc-y","network":"gov","role":"room",'
         b'"state":"online","agent_version":"\\udfff"}' % int(time.time())),
    ]
    pub = Publisher(mosquitto)
    pub.publish_many(bad + good_messages())
    pub.close()
    assert wait_count(influxd, influx_db, "metrics", "cpu_percent", GOOD) == GOOD
    assert wait_until(lambda: stats(svc)["deadlettered"] == len(bad), 10), stats(svc)
    s = stats(svc)
    assert s["received"] == GOOD + len(bad)
    assert s["written"] >= GOOD and s["rejected"] == 0
    stored = letters(tmp_path / "spool").newest()
    assert sorted(x.topic for x in stored) == sorted(t for t, _ in bad)
    assert {x.payload for x in stored} == {p for _, p in bad}  # byte for byte


def test_refused_line_costs_one_message_not_its_batch(
        tmp_path: Path, mosquitto: Mosquitto, influxd: Influxd, influx_db: str,
        run_collector: Callable[[Path], Any]) -> None:
    # A valid message InfluxDB still refuses: `load1` already holds strings in
    # this shard (field type conflict, 400 "partial write"), for one host only.
    influxd.write(f'metrics,site=sq-1,host=old load1="text" {int(time.time() * 1000) - 1000}',
                  influx_db)
    svc = run_collector(write_config(tmp_path, mosquitto, influxd, db=influx_db,
                                     collector={"flush_interval": 1.0}))
    bad = message("metrics", {"cpu_percent": 1.0, "load1": 0.5}, host="pc-bad")
    msgs = good_messages()
    msgs.insert(GOOD // 2, bad)
    pub = Publisher(mosquitto)
    pub.publish_many(msgs)
    pub.close()
    assert wait_count(influxd, influx_db, "metrics", "cpu_percent", GOOD) == GOOD
    assert wait_until(lambda: stats(svc)["deadlettered"] == 1, 10), stats(svc)
    s = stats(svc)
    assert s["rejected"] == 1  # the one line, not the batch
    assert s["deadlettered_rejected"] == 1
    assert count(influxd, influx_db, "metrics", "cpu_percent", "host = 'pc-bad'") == 0
    (letter,) = letters(tmp_path / "spool").newest()
    assert letter.payload == bad[1] and letter.reason == "rejected"
    assert "conflict" in letter.detail and len(letter.lines) == 1


@pytest.fixture
def small_body_influxd(influxd_factory: Callable[..., Influxd]) -> Influxd:
    """influxd refusing request bodies over 20 kB (413), like a server with a
    small max-body-size."""
    return influxd_factory(http_config=["max-body-size = 20000"])


def nic_metrics(i: int) -> tuple[str, bytes]:
    nics = [{"name": f"eth{n}", "bytes_sent": 10**9 + n, "bytes_recv": 2 * 10**9 + n,
             "packets_sent": 10**6, "packets_recv": 10**6, "errin": 0, "errout": 0,
             "dropin": 0, "dropout": 0, "speed_mbps": 1000, "is_up": True} for n in range(16)]
    return message("metrics", {"cpu_percent": 1.0, "nics": nics}, host=f"pc-{i}")


def test_backlog_over_the_body_limit_lands_whole(
        tmp_path: Path, mosquitto: Mosquitto, small_body_influxd: Influxd,
        run_collector: Callable[[Path], Any]) -> None:
    influxd = small_body_influxd
    influxd.post('CREATE DATABASE "big"')
    # A backlog: the broker holds it while the collector is away, then the
    # collector takes it in batches far over the server's 20 kB limit.
    cfg = write_config(tmp_path, mosquitto, influxd, db="big",
                       collector={"flush_interval": 1.0, "item_series": ["nics"]})
    svc = run_collector(cfg)
    svc.stop()
    pub = Publisher(mosquitto)
    pub.publish_many([nic_metrics(i) for i in range(GOOD)])
    pub.close()
    svc = run_collector(cfg)
    assert wait_count(influxd, "big", "metrics_nics", "bytes_sent", GOOD * 16,
                      timeout=60) == GOOD * 16
    assert wait_count(influxd, "big", "metrics", "cpu_percent", GOOD) == GOOD
    s = stats(svc)
    assert s["deadlettered"] == 0 and s["rejected"] == 0
    assert svc.writer.delivery.max_body_bytes < 20000  # learned from the 413


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    path.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                       capture_output=True, text=True, check=False)
    if r.returncode:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {r.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(path: Path, leave_bytes: int) -> Path:
    """A file taking all free space on path's filesystem but ``leave_bytes``."""
    st = os.statvfs(path)
    filler = path / "filler"
    with open(filler, "wb") as fh:
        fh.truncate(0)
        remaining = st.f_bavail * st.f_frsize - leave_bytes
        chunk = b"\0" * 65536
        while remaining > 0:
            remaining -= fh.write(chunk[:remaining])
    return filler


def test_full_disk_stops_acks_then_resumes_by_itself(
        tmp_path: Path, mosquitto: Mosquitto, influxd: Influxd, influx_db: str,
        run_collector: Callable[[Path], Any], caplog: pytest.LogCaptureFixture) -> None:
    with tmpfs(tmp_path / "disk", "4m") as disk:
        svc = run_collector(write_config(
            tmp_path, mosquitto, influxd, db=influx_db,
            influxdb={"url": influxd.url, "database": influx_db, "timeout_s": 1},
            collector={"spool_dir": str(disk / "spool"), "spool_min_free_bytes": 0,
                       "queue_max_bytes": "1MiB", "batch_size": 50}))
        filler = fill(disk, 200_000)
        influxd.stop()
        sent = [nic_metrics(i) for i in range(GOOD)]
        pub = Publisher(mosquitto)
        for m in sent:  # QoS 1, acked by the broker: the collector owes them
            pub.client.publish(*m, qos=1)
        # The spool fills, the writer stalls and says so; nothing is acked.
        assert wait_until(lambda: bool(svc.writer.stalled), 30), stats(svc)
        assert any("cannot make" in r.getMessage() and "durable" in r.getMessage()
                   for r in caplog.records)
        held = svc.writer.queued_bytes
        assert held <= svc.cfg.queue_max_bytes + 64 * 1024  # bounded: one entry over at most
        assert stats(svc)["stalled"] is True
        # Space returns: the spool takes the rest; InfluxDB returns: all land.
        filler.unlink()
        assert wait_until(lambda: not svc.writer.stalled, 30), stats(svc)
        influxd.start()
        assert wait_count(influxd, influx_db, "metrics", "cpu_percent", GOOD,
                          timeout=60) == GOOD
        assert wait_until(lambda: len(svc.spool) == 0, 30)
        pub.close()
        s = stats(svc)
        assert s["deadlettered"] == 0 and s["received"] >= GOOD
        svc.stop()


def test_future_and_ancient_timestamps_are_stored_at_receive_time(
        tmp_path: Path, mosquitto: Mosquitto, influxd: Influxd, influx_db: str,
        run_collector: Callable[[Path], Any]) -> None:
    svc = run_collector(write_config(tmp_path, mosquitto, influxd, db=influx_db))
    now = time.time()
    cases = {"pc-2099": 4070908800.0, "pc-2001": 1000000000.0, "pc-fast": now + 120,
             "pc-ok": now}
    pub = Publisher(mosquitto)
    pub.publish_many([message("isolation", {"violated": False}, host=h, ts=ts)
                      for h, ts in cases.items()])
    pub.close()
    assert wait_count(influxd, influx_db, "isolation", "violated", len(cases)) == len(cases)
    after = time.time()
    rows = {r["host"]: r for r in series(influxd.query(
        'SELECT "violated", "clock_skew_s" FROM "isolation" GROUP BY "host"', influx_db))}
    for host in ("pc-2099", "pc-2001"):
        assert now * 1000 - 1000 <= rows[host]["time"] <= after * 1000
        assert rows[host]["clock_skew_s"] == pytest.approx(cases[host] - now, abs=60)
    assert rows["pc-fast"]["time"] == round(cases["pc-fast"] * 1000)  # within 10 min
    assert rows["pc-fast"]["clock_skew_s"] is None and rows["pc-ok"]["clock_skew_s"] is None
    assert stats(svc)["clock_skew"] == 2


def test_dead_letters_are_listed_shown_replayed_and_purged(
        tmp_path: Path, mosquitto: Mosquitto, influxd: Influxd, influx_db: str,
        run_collector: Callable[[Path], Any]) -> None:
    from harness import run_cli

    influxd.write(f'metrics,site=sq-1,host=old load1="text" {int(time.time() * 1000) - 1000}',
                  influx_db)
    cfg = write_config(tmp_path, mosquitto, influxd, db=influx_db)
    svc = run_collector(cfg)
    refused = message("metrics", {"cpu_percent": 2.0, "load1": 0.5}, host="pc-bad")
    pub = Publisher(mosquitto)
    pub.publish_many([refused, ("netroom/v1/sq-1/pc-2/metrics", b"not json")])
    pub.close()
    assert wait_until(lambda: stats(svc)["deadlettered"] == 2, 20), stats(svc)
    svc.stop()

    r = run_cli("collector.cli.main", "deadletter", "list", "--config", str(cfg))
    assert r.returncode == 0, r.stderr
    assert "rejected" in r.stdout and "invalid" in r.stdout and "pc-bad" in r.stdout
    (rejected,) = letters(tmp_path / "spool").ids("rejected")
    r = run_cli("collector.cli.main", "deadletter", "show", str(rejected), "--config", str(cfg))
    assert r.returncode == 0 and "load1" in r.stdout, r.stderr
    # The operator fixes the cause (here: the conflicting field), then replays.
    influxd.post('DROP MEASUREMENT "metrics"', influx_db)
    r = run_cli("collector.cli.main", "deadletter", "replay", "--config", str(cfg))
    assert r.returncode == 1, r.stdout + r.stderr  # the invalid one cannot land
    assert count(influxd, influx_db, "metrics", "cpu_percent", "host = 'pc-bad'") == 1
    left = letters(tmp_path / "spool").newest()
    assert [x.reason for x in left] == ["invalid"]
    r = run_cli("collector.cli.main", "deadletter", "purge", "--reason", "invalid",
                "--config", str(cfg))
    assert r.returncode == 0, r.stderr
    assert len(letters(tmp_path / "spool")) == 0


def test_watchdog_pings_systemd_while_ingestion_turns(
        tmp_path: Path, mosquitto: Mosquitto, influxd: Influxd, influx_db: str) -> None:
    sock_path = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(sock_path)
        sock.settimeout(20)
        cfg = write_config(tmp_path, mosquitto, influxd, db=influx_db)
        env = {"NOTIFY_SOCKET": sock_path, "WATCHDOG_USEC": "2000000"}
        old = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            proc = start_collector(cfg, tmp_path / "collector.log")
        finally:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k)
                else:
                    os.environ[k] = v
        try:
            got: list[str] = []
            while not any("WATCHDOG=1" in g for g in got):
                got.append(sock.recv(4096).decode())
            assert "READY=1" in "\n".join(got)
        finally:
            stop_process(proc)
        # Watchdog pings already queued may come first; the socket timeout
        # bounds the wait and the datagram count bounds the loop.
        after = [sock.recv(4096).decode()]
        while "STOPPING=1" not in after[-1] and len(after) < 50:
            after.append(sock.recv(4096).decode())
        assert "STOPPING=1" in after[-1]


def test_spool_files_survive_a_restart_and_import_the_old_sqlite_spool(tmp_path: Path) -> None:
    import sqlite3

    from collector.ingest.entry import Entry
    from collector.ingest.spool import Spool

    old = sqlite3.connect(tmp_path / "spool.sqlite")
    old.execute("CREATE TABLE q (id INTEGER PRIMARY KEY AUTOINCREMENT, item BLOB NOT NULL)")
    old.execute("INSERT INTO q (item) VALUES (?)", (b"m,host=a v=1i 1\nm,host=b v=2i 2",))
    old.commit()
    old.close()
    spool = Spool(str(tmp_path))
    assert not (tmp_path / "spool.sqlite").exists()
    payload = json.dumps({"hostname": "政务网-01"}).encode() + b"\xff"
    spool.put([Entry(1, 1, ["m v=3i 3"], topic="t", payload=payload)])
    spool = Spool(str(tmp_path))
    assert len(spool) == 2
    first = spool.oldest()
    assert first is not None and first[1][0].lines == ["m,host=a v=1i 1", "m,host=b v=2i 2"]
    spool.delete(first[0])
    second = spool.oldest()
    assert second is not None and second[1][0].payload == payload  # bytes exact


class WholeBatchRefuser:
    """InfluxDB 2.x/3.x's documented contract, in front of the real influxd:
    a write request with one bad line is refused whole (400), nothing of it
    written. 2.x cannot run here; "bad" is any line of ``bad_host``.
    Counts requests, so the test can see the splitting happen."""

    def __init__(self, influxd: Influxd, bad_host: str, status: int = 400) -> None:
        import http.server
        import threading
        import urllib.request

        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        marker = f",host={bad_host},".encode()
        self.requests = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                outer.requests += 1
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if marker in body:
                    answer = b'{"error":"partial write: whole batch refused (2.x)"}'
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                    return
                req = urllib.request.Request(influxd.url + self.path, data=body, method="POST")
                with opener.open(req, timeout=10) as r:
                    code = r.status
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("status", [400, 422])  # 422: InfluxDB 2.x's answer to a conflict
def test_a_server_refusing_whole_batches_costs_only_the_bad_message(
        tmp_path: Path, mosquitto: Mosquitto, influxd: Influxd, influx_db: str,
        run_collector: Callable[[Path], Any], status: int) -> None:
    proxy = WholeBatchRefuser(influxd, "pc-bad", status)
    try:
        cfg = write_config(tmp_path, mosquitto, influxd, db=influx_db,
                           influxdb={"url": proxy.url, "database": influx_db,
                                     "create_database": False},
                           collector={"flush_interval": 1.0})
        svc = run_collector(cfg)
        svc.stop()  # a backlog: the broker keeps them for the session
        msgs = good_messages()
        msgs.insert(GOOD // 3, message("metrics", {"cpu_percent": 1.0}, host="pc-bad"))
        pub = Publisher(mosquitto)
        pub.publish_many(msgs)
        pub.close()
        svc = run_collector(cfg)
        assert wait_count(influxd, influx_db, "metrics", "cpu_percent", GOOD) == GOOD
        assert wait_until(lambda: stats(svc)["deadlettered"] == 1, 10), stats(svc)
        s = stats(svc)
        assert s["rejected"] == 1 and s["deadlettered_rejected"] == 1
        assert count(influxd, influx_db, "metrics", "cpu_percent", "host = 'pc-bad'") == 0
        assert proxy.requests < 40  # split in halves, not one request per message
    finally:
        proxy.close()


def test_letters_purged_by_another_process_do_not_make_new_ones_vanish(tmp_path: Path) -> None:
    from collector.ingest.deadletter import Letter

    store = DeadLetters(str(tmp_path), max_bytes=10_000)
    store.put([Letter(i, "invalid", "x", "t", b"p" * 1000) for i in range(9)])
    other = DeadLetters(str(tmp_path))  # `netroom deadletter purge`, another process
    other.delete(other.ids())
    store.put([Letter(10, "invalid", "x", "t", b"q" * 1000) for _ in range(2)])
    assert [x.payload for x in other.newest()] == [b"q" * 1000] * 2
    assert store.dropped == 0


def test_a_spool_batch_of_the_wrong_shape_is_set_aside_and_the_rest_drains(
        tmp_path: Path, influxd: Influxd, influx_db: str) -> None:
    import threading

    from collector.influx.client import InfluxSink
    from collector.influx.settings import read_influx
    from collector.ingest.delivery import Delivery
    from collector.ingest.drainer import Drainer
    from collector.ingest.entry import Counters, Entry
    from collector.ingest.spool import Spool

    folder = tmp_path / "spool" / "batches"
    folder.mkdir(parents=True)
    (folder / f"{1:016d}.batch").write_bytes(b"[1, 2, 3]\n")  # valid JSON, wrong shape
    spool = Spool(str(tmp_path / "spool"))
    spool.put([Entry(0, 0, ["m,host=a v=1i 1000"], "t", b"{}")])
    sink = InfluxSink(read_influx({"url": influxd.url, "database": influx_db}))
    store = DeadLetters(str(tmp_path / "spool"))
    drainer = Drainer(spool, Delivery(sink.write, 1 << 20), store, Counters())
    stop = threading.Event()
    t = threading.Thread(target=drainer.run, args=(stop,))
    t.start()
    try:
        assert wait_until(lambda: len(spool) == 0, 20)
    finally:
        stop.set()
        t.join(10)
        sink.close()
    assert not t.is_alive()
    assert [x.reason for x in store.newest()] == ["corrupt_spool"]
    assert count(influxd, influx_db, "m", "v") == 1
