"""Passwords stay out of URLs, reprs and every log line (issue 9).

A password in `influxdb.url` (`http://user:pass@host`) used to be accepted,
not used (InfluxDB answered 401) and printed in every warning. Now it is
refused at load, and the real collector, run against a real broker and a
real influxd that both refuse its (wrong) passwords, logs neither.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest
from harness import run_cli, start_collector, stop_process, write_config
from servers import Influxd, ProductionMosquitto

from collector.influx.client import InfluxSink, SinkError
from collector.influx.settings import InfluxConfig, masked_url, read_influx
from netroom.mqtt import MqttConfig
from netroom.settings import ConfigError

SECRET = "S3cr3t-pw"


@pytest.mark.parametrize("url", [
    f"http://netroom:{SECRET}@127.0.0.1:8086",
    f"https://netroom:{SECRET}@influx.example.internal/prefix",
    f"http://:{SECRET}@127.0.0.1:8086",
    "http://netroom@127.0.0.1:8086",
])
def test_credentials_in_influxdb_url_are_refused(url: str) -> None:
    with pytest.raises(ConfigError) as err:
        read_influx({"url": url})
    text = str(err.value)
    assert text.startswith("influxdb.url: must not hold a user name or password")
    assert SECRET not in text and "NETROOM_INFLUXDB_PASSWORD" in text


def test_collector_cli_names_the_key_and_hides_the_password(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"influxdb:\n  url: http://netroom:{SECRET}@127.0.0.1:8086\n")
    p = run_cli("collector", "--config", str(cfg))
    assert p.returncode == 2
    assert p.stderr.strip().splitlines() == [
        "netroom-collector: error: influxdb.url: must not hold a user name or password, got "
        "'http://netroom:***@127.0.0.1:8086': put the user in influxdb.username and the "
        "password in NETROOM_INFLUXDB_PASSWORD (or influxdb.password)"]


def test_masked_url() -> None:
    assert masked_url(f"http://u:{SECRET}@h:1/p?q=1") == "http://u:***@h:1/p?q=1"
    assert masked_url("http://h:1/p") == "http://h:1/p"
    assert masked_url("http://u@h") == "http://u@h"


def test_configs_never_print_secrets() -> None:
    mqtt = MqttConfig(username="sq-1/pc-01", password=SECRET)
    influx = InfluxConfig(username="netroom", password=SECRET, token=SECRET)
    for text in (repr(mqtt), str(mqtt), f"{mqtt}", repr(influx), str(influx)):
        assert SECRET not in text
    assert "sq-1/pc-01" in repr(mqtt) and "password='***'" in repr(mqtt)
    assert mqtt.password == SECRET and influx.password == SECRET


def test_influx_errors_never_carry_the_password(influxd_factory: Callable[..., Influxd]) -> None:
    server = influxd_factory(auth_enabled=True)
    server.post("CREATE USER admin WITH PASSWORD 'admin-pw' WITH ALL PRIVILEGES")
    sink = InfluxSink(InfluxConfig(url=server.url, database="d", username="admin",
                                   password=SECRET, create_database=False, timeout_s=5))
    try:
        with pytest.raises(SinkError) as refused:
            sink.write(["m v=1 1"])
        assert "401" in str(refused.value) and SECRET not in str(refused.value)
        server.stop()
        with pytest.raises(SinkError) as down:
            sink.query("SHOW DATABASES")
        assert SECRET not in str(down.value)
    finally:
        sink.close()


def test_real_collector_logs_no_password(tmp_path: Path, influxd_factory: Callable[..., Influxd]
                                         ) -> None:
    """Each server refuses one of the collector's passwords in turn; the
    collector stops at start with a line saying which (exit 2), and its log
    holds neither password (nor the right one, which it never had)."""
    broker = ProductionMosquitto(workdir=tmp_path / "broker")
    broker.start()
    influxd = influxd_factory(auth_enabled=True)
    influxd.post("CREATE USER admin WITH PASSWORD 'admin-pw' WITH ALL PRIVILEGES")
    mqtt_pw, influx_pw = "mqtt-" + SECRET, "influx-" + SECRET
    texts = []
    try:
        # InfluxDB's 401 first (checked before the broker), then the broker's
        # refusal once InfluxDB takes the right password.
        for influx, want in ((influx_pw, "401"), ("admin-pw", "refused")):
            cfg = write_config(tmp_path, broker, influxd, "netroom",
                               mqtt={"host": broker.host, "port": broker.port,
                                     "username": "netroom-collector", "password": mqtt_pw},
                               influxdb={"url": influxd.url, "database": "netroom",
                                         "username": "admin", "password": influx,
                                         # admin may create it: the 404 is not the point
                                         "create_database": influx == "admin-pw",
                                         "timeout_s": 2})
            log = tmp_path / f"collector-{want}.log"
            proc = start_collector(cfg, log)
            try:
                assert proc.wait(timeout=60) == 2, log.read_text()
            finally:
                stop_process(proc)
            texts.append(log.read_text())
            assert want in texts[-1] and "Traceback" not in texts[-1], texts[-1]
    finally:
        broker.kill()
    for text in texts:
        for secret in (mqtt_pw, influx_pw, SECRET, broker.passwords["netroom-collector"]):
            assert secret not in text
