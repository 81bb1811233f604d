"""`netroom doctor`: the collector host's misconfigurations, one line each with
its fix; the real command against the real mosquitto (deploy/mosquitto as
shipped, ProductionMosquitto) and a real influxd with authentication."""
from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any, Callable

import pytest
from harness import run_cli, write_config
from servers import Influxd, ProductionMosquitto, free_port

SITES = [{"id": "bj", "name": "北京局", "children": [
    {"id": "sq-1", "name": "一中队", "cadres": 1, "staff": 2}]}]


@pytest.fixture
def servers(tmp_path: Path, influxd_factory: Callable[..., Influxd]
            ) -> Any:
    broker = ProductionMosquitto(workdir=tmp_path / "broker", pcs=[("sq-1", "pc-01")])
    broker.start()
    influxd = influxd_factory(auth_enabled=True)
    influxd.post("CREATE USER admin WITH PASSWORD 'pw' WITH ALL PRIVILEGES")
    influxd.auth = ("admin", "pw")
    yield broker, influxd
    broker.kill()


def config(tmp: Path, broker: ProductionMosquitto, influxd: Influxd, **influx: Any) -> Path:
    path = write_config(tmp, broker, sites=SITES,
                        mqtt={"host": broker.host, "port": broker.port,
                              "username": "netroom-collector"},
                        influxdb={"url": influxd.url, "database": "netroom",
                                  "username": "admin", **influx})
    path.chmod(0o600)
    return path


def doctor(cfg: Path, *args: str, mqtt_pw: str = "", influx_pw: str = "pw"
           ) -> subprocess.CompletedProcess[str]:
    env = {"NETROOM_MQTT_PASSWORD": mqtt_pw, "NETROOM_INFLUXDB_PASSWORD": influx_pw}
    return run_cli("collector.cli.main", "doctor", "--config", str(cfg), "--timeout", "5",
                   *args, env=env)


def problems(r: subprocess.CompletedProcess[str]) -> list[str]:
    return [ln for ln in r.stdout.splitlines() if ln.startswith(("[PROBLEM]", "[问题]"))]


def test_a_good_collector_host_passes(tmp_path: Path, servers: Any) -> None:
    broker, influxd = servers
    r = doctor(config(tmp_path, broker, influxd), mqtt_pw=broker.passwords["netroom-collector"])
    assert r.returncode == 0, r.stdout + r.stderr
    assert problems(r) == []
    assert f"[正常] InfluxDB {influxd.url} 数据库 netroom：可写可读" in r.stdout
    assert "以 'netroom-collector-settings' 登录成功" in r.stdout
    assert "[正常] 测试发布到 netroom/settings/v1/sq-1：代理服务器已接受" in r.stdout
    assert r.stdout.strip().splitlines()[-1] == "未发现问题"


def test_influxdb_problems_are_named_with_their_fix(tmp_path: Path, servers: Any) -> None:
    broker, influxd = servers
    pw = broker.passwords["netroom-collector"]
    cases = {
        "credentials": (config(tmp_path, broker, influxd), "wrong",
                        "authentication failed (admin: 401: authorization failed) -- fix: "
                        "check influxdb.username"),
        "no_database": (config(tmp_path, broker, influxd, database="nope",
                               create_database=False), "pw",
                        "no database nope (404: database not found: \"nope\") -- fix: "
                        "CREATE DATABASE nope"),
    }
    for name, (cfg, influx_pw, expect) in cases.items():
        r = doctor(cfg, "--lang", "en", mqtt_pw=pw, influx_pw=influx_pw)
        assert r.returncode == 1, (name, r.stdout)
        [line] = problems(r)
        assert expect in line, (name, line)
    cfg = write_config(tmp_path, broker, sites=SITES,
                       mqtt={"host": broker.host, "port": broker.port,
                             "username": "netroom-collector"},
                       influxdb={"url": f"http://127.0.0.1:{free_port()}", "timeout_s": 2})
    r = doctor(cfg, "--lang", "en", mqtt_pw=pw)
    [line] = problems(r)
    assert "cannot connect (ConnectionError: [Errno 111] Connection refused) -- fix: start " \
        "influxd" in line


def test_a_wrong_broker_password_and_a_readable_password_file(tmp_path: Path,
                                                              servers: Any) -> None:
    broker, influxd = servers
    cfg = config(tmp_path, broker, influxd, password="pw")
    cfg.chmod(0o644)
    r = run_cli("collector.cli.main", "doctor", "--config", str(cfg), "--lang", "en",
                env={"NETROOM_MQTT_PASSWORD": "not-it"})
    assert r.returncode == 1
    found = problems(r)
    assert len(found) == 2, r.stdout
    assert "holds a password (influxdb.password) but every user may read it (mode 0644)" \
        in found[0]
    assert "not authorized: the broker refused 'netroom-collector-settings'" in found[1]
    assert "not-it" not in r.stdout + r.stderr


def test_a_bad_config_is_exit_2(tmp_path: Path, servers: Any) -> None:
    broker, influxd = servers
    cfg = config(tmp_path, broker, influxd, timeout_s="soon")
    r = doctor(cfg, "--lang", "en")
    assert r.returncode == 2
    [line] = problems(r)
    assert "influxdb.timeout_s" in line and "Traceback" not in r.stderr
