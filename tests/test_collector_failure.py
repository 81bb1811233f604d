"""A bug of the collector meeting a valid message: the message is not
acknowledged (so not lost), ingest stops taking messages and the collector
asks to end (the entry point then exits 1 for the service manager to restart
it). A fresh collector on the same session receives the message again."""
from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Callable, Mapping

import pytest
from harness import (
    T0,
    Publisher,
    message,
    run_cli,
    series,
    start_collector,
    stop_process,
    wait_count,
    write_config,
)
from servers import Influxd, Mosquitto, ProductionMosquitto, wait_until

from collector.config import load
from collector.service import Collector


def test_a_bug_meeting_a_valid_message_ends_the_collector_and_loses_nothing(
        tmp_path: Path, mosquitto: Mosquitto, influxd: Influxd) -> None:
    cfg = load(write_config(tmp_path, mosquitto, influxd, db="bug"))

    def tags_for(site: str) -> Mapping[str, str]:
        # Stands for a bug in the collector that only this site's data meets.
        if site == "sq-bug":
            raise KeyError(site)
        return {}

    svc = Collector(cfg, tags_for=tags_for)
    svc.start()
    try:
        assert svc.ingest.subscribed.wait(10)
        pub = Publisher(mosquitto)
        pub.publish(*message("metrics", {"cpu_percent": 1.0}, ts=T0))
        pub.publish(*message("metrics", {"cpu_percent": 2.0}, site="sq-bug", ts=1764000001))
        pub.publish(*message("metrics", {"cpu_percent": 3.0}, ts=1764000002))
        pub.close()
        assert svc.failed.wait(10), "the collector did not notice its own failure"
        assert "KeyError" in svc.failure
    finally:
        svc.stop()
    # The message before the failure landed; the failing one and the one after
    # it were not acknowledged, so the broker still holds them for our session.
    assert wait_count(influxd, "bug", "metrics", "cpu_percent", 1) == 1

    fixed = Collector(cfg)
    fixed.start()
    try:
        assert fixed.ingest.subscribed.wait(10)
        assert wait_count(influxd, "bug", "metrics", "cpu_percent", 3) == 3
        assert not fixed.failed.is_set()
    finally:
        fixed.stop()
    rows = sorted((r["site"], r["cpu_percent"]) for r in series(influxd.query(
        'SELECT "cpu_percent", "site" FROM "metrics"', "bug")))
    assert rows == [("sq-1", 1.0), ("sq-1", 3.0), ("sq-bug", 2.0)]


# --- Start-up checks and connection logging (issue 14) -----------------------
# The real netroom-collector as a subprocess: its exit status and the lines
# it writes at the default log level are what an operator sees.

def _admin(influxd: Influxd) -> Influxd:
    """``influxd`` (auth enabled) with an admin user ``admin``/``pw``."""
    influxd.post("CREATE USER admin WITH PASSWORD 'pw' WITH ALL PRIVILEGES")
    influxd.auth = ("admin", "pw")
    return influxd


def _wait_log(log: Path, text: str, proc: subprocess.Popen[bytes]) -> bool:
    return wait_until(lambda: text in log.read_text(encoding="utf-8", errors="replace")
                      or proc.poll() is not None, 20, 0.1) and text in log.read_text()


@pytest.mark.parametrize("case", ["password", "database", "write"])
def test_wrong_influxdb_credentials_or_database_stop_the_collector_with_exit_2(
        tmp_path: Path, mosquitto: Mosquitto, influxd_factory: Callable[..., Influxd],
        case: str) -> None:
    influxd = _admin(influxd_factory(auth_enabled=True))
    influxd.post('CREATE DATABASE "there"')
    influxd.post("CREATE USER reader WITH PASSWORD 'rpw'")
    influxd.post('GRANT READ ON "there" TO reader')
    influx: dict[str, object] = {"url": influxd.url, "database": "there", "username": "admin",
                                 "password": "pw"}
    expect = {"password": ("401: authorization failed", "influxdb.username/password"),
              "database": ("database not found", "CREATE DATABASE"),
              "write": ("not authorized to write", "GRANT WRITE")}[case]
    if case == "password":
        influx["password"] = "wrong"
    elif case == "database":
        influx.update(database="missing", create_database=False)
    else:
        influx.update(username="reader", password="rpw")
    r = run_cli("collector", "--config",
                str(write_config(tmp_path, mosquitto, influxdb=influx)), timeout=60)
    assert r.returncode == 2, r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("netroom-collector: error: InfluxDB ")
    assert expect[0] in last and expect[1] in last
    assert "Traceback" not in r.stderr
    assert "wrong" not in last.replace("wrong password", "")  # no password in the line


@pytest.mark.parametrize("case", ["password", "subscription"])
def test_a_login_or_subscription_the_broker_refuses_stops_the_collector_with_exit_2(
        tmp_path: Path, influxd: Influxd, case: str) -> None:
    broker = ProductionMosquitto(workdir=tmp_path / "broker", pcs=[("sq-1", "pc-01")])
    # The settings user may log in but not read netroom/v1/#.
    user, password = (("netroom-collector", "not-it") if case == "password" else
                      ("netroom-collector-settings", broker.passwords["netroom-collector"]))
    broker.start()
    try:
        cfg = write_config(tmp_path, broker, influxd, db="refused",
                           mqtt={"host": broker.host, "port": broker.port,
                                 "username": user, "password": password})
        r = run_cli("collector", "--config", str(cfg), timeout=90)
    finally:
        broker.kill()
    assert r.returncode == 2, r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith(f"netroom-collector: error: broker {broker.host}:{broker.port}: ")
    if case == "password":
        assert "not authorized: the broker refused user 'netroom-collector'" in last
        assert "not-it" not in r.stderr
    else:
        assert "not authorized: netroom-collector-settings may not subscribe to netroom/v1/# " \
            "(the collector's user must read netroom/v1/#" in last
    assert "Traceback" not in r.stderr


def test_servers_down_at_start_are_logged_with_their_cause_and_waited_for(
        tmp_path: Path) -> None:
    """Broker and InfluxDB both down when the collector starts: it says why at
    the default level, keeps running, and once both are up a message arrives."""
    broker = Mosquitto(workdir=tmp_path / "broker")  # ports chosen, not started
    influxd = Influxd(workdir=tmp_path / "influxd")
    log = tmp_path / "collector.log"
    proc = start_collector(write_config(tmp_path, broker, influxd, db="late"), log)
    try:
        assert _wait_log(log, "connection refused: nothing listens there", proc), \
            log.read_text()
        text = log.read_text()
        assert f"cannot reach the broker 127.0.0.1:{broker.port}" in text
        assert "WARNING" in text and "InfluxDB http://127.0.0.1:" in text
        assert "spools until it answers" in text
        assert proc.poll() is None, text
        influxd.start()
        broker.start()
        assert _wait_log(log, "subscribed to netroom/v1/", proc), log.read_text()
        pub = Publisher(broker)
        pub.publish(*message("metrics", {"cpu_percent": 7.0}, ts=T0))
        pub.close()
        # The collector makes the database once InfluxDB answers.
        assert wait_until(lambda: "late" in str(influxd.query("SHOW DATABASES")), 60, 0.1)
        assert wait_count(influxd, "late", "metrics", "cpu_percent", 1, timeout=60) == 1, \
            log.read_text()
    finally:
        assert stop_process(proc) == 0, log.read_text()
        broker.kill()
        influxd.kill()
