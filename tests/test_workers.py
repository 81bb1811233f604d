"""collector.workers: N ingest processes sharing the subscription, real servers."""
from __future__ import annotations

import signal
from pathlib import Path

import psutil
from harness import (
    T0,
    Publisher,
    message,
    series,
    start_collector,
    stop_process,
    wait_count,
    write_config,
)
from servers import Influxd, Mosquitto, wait_until


def _children(pid: int) -> list[psutil.Process]:
    """Live worker processes of the collector ``pid`` (zombies are dead ones)."""
    out = []
    for c in psutil.Process(pid).children():
        try:
            if c.status() != psutil.STATUS_ZOMBIE and "--worker" in c.cmdline():
                out.append(c)
        except psutil.Error:
            continue
    return out


def test_two_workers_share_the_stream_and_survive_a_killed_worker(
        tmp_path: Path, mosquitto: Mosquitto, influxd: Influxd) -> None:
    cfg = write_config(tmp_path, mosquitto, influxd, db="w",
                       collector={"workers": 2, "batch_size": 100, "flush_interval": 0.2,
                                  "stats_interval": 1})
    log = tmp_path / "collector.log"
    main = start_collector(cfg, log)
    pub = Publisher(mosquitto)
    try:
        assert wait_until(lambda: len(_children(main.pid)) == 1, 15), log.read_text()
        assert wait_until(lambda: log.read_text().count("connected to") >= 2, 15)
        n = 2000
        msgs = [message("metrics", {"users": i}, host=f"pc-{i % 40}", ts=T0 + i)
                for i in range(n)]
        pub.publish_many(msgs[:1000])
        child = _children(main.pid)[0]
        child.send_signal(signal.SIGKILL)  # the main process must start a new one
        pub.publish_many(msgs[1000:])
        assert wait_until(lambda: any(c.pid != child.pid for c in _children(main.pid)), 20)
        assert wait_count(influxd, "w", "metrics", "users", n, timeout=60) == n
        procs = sorted(r["users"] for r in series(influxd.query("SELECT \"users\" FROM metrics",
                                                                "w")))
        assert procs == list(range(n))
        # Both workers took part: each reports its own stats series.
        assert wait_until(lambda: len(list(series(influxd.query(
            'SELECT last(received) FROM collector WHERE received > 0 GROUP BY "collector"',
            "w")))) == 2, 15)
    finally:
        pub.close()
        assert stop_process(main) == 0
    assert _children_gone(main.pid)


def _children_gone(pid: int) -> bool:
    return not psutil.pid_exists(pid) or not _children(pid)
