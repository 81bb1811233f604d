"""`netroom-agent doctor`: every misconfiguration named in one line with its fix.

The real command (a subprocess) against the real mosquitto with
deploy/mosquitto/netroom.conf and users from netroom_credentials.py
(ProductionMosquitto), a broker with TLS for the certificate cases, and a
local HTTP server whose Date header stands for the collector's clock.
"""
from __future__ import annotations

import email.utils
import http.server
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import yaml
from harness import run_cli, write_config
from servers import Mosquitto, ProductionMosquitto, free_port, self_signed

PCS = [("sq-1", "pc-01")]


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[ProductionMosquitto]:
    server = ProductionMosquitto(workdir=tmp_path / "broker", pcs=PCS)
    server.start()
    yield server
    server.kill()


class _Clock(http.server.BaseHTTPRequestHandler):
    offset_s = 0.0

    def do_GET(self) -> None:
        self.send_response(204)
        self.end_headers()

    def date_time_string(self, timestamp: float | None = None) -> str:
        return email.utils.formatdate(time.time() + self.offset_s, usegmt=True)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def clock_server() -> Iterator[Callable[[float], str]]:
    """``clock_server(offset_s)`` -> URL of an HTTP server whose clock is that far ahead."""
    servers: list[http.server.HTTPServer] = []

    def start(offset_s: float) -> str:
        handler = type("Clock", (_Clock,), {"offset_s": offset_s})
        server = http.server.HTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield start
    for s in servers:
        s.shutdown()
        s.server_close()


def agent_cfg(tmp: Path, broker: Mosquitto, host: str = "pc-01", user: str = "sq-1/pc-01",
              clock: str = "", **mqtt: Any) -> Path:
    agent: dict[str, Any] = {"host": host}
    if clock:
        agent["clock"] = {"url": clock}
    path = write_config(tmp, broker, agent=agent,
                        mqtt={"host": broker.host, "port": broker.port, "username": user,
                              **mqtt})
    path.chmod(0o600)
    return path


def doctor(cfg: Path, *args: str, password: str = "") -> subprocess.CompletedProcess[str]:
    env = {"NETROOM_MQTT_PASSWORD": password} if password else {}
    return run_cli("agent", "doctor", "--config", str(cfg), "--timeout", "5", *args, env=env)


def problems(r: subprocess.CompletedProcess[str]) -> list[str]:
    return [ln for ln in r.stdout.splitlines() if ln.startswith(("[PROBLEM]", "[问题]"))]


def test_a_good_set_up_passes_in_chinese_by_default(tmp_path: Path, broker: ProductionMosquitto,
                                                    clock_server: Callable[[float], str]
                                                    ) -> None:
    cfg = agent_cfg(tmp_path, broker, clock=clock_server(0))
    r = doctor(cfg, password=broker.passwords["sq-1/pc-01"])
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    assert problems(r) == []
    assert f"[正常] 代理服务器 127.0.0.1:{broker.port}：以 'sq-1/pc-01' 登录成功（MQTT 5）" in out
    assert "[正常] 测试发布到 netroom/v1/sq-1/pc-01/inventory：代理服务器已接受" in out
    assert "[正常] 订阅 netroom/settings/v1/sq-1：已获准" in out
    assert "[正常] 时钟：与 http://127.0.0.1:" in out
    assert out.strip().splitlines()[-1] == "未发现问题"


def test_a_topic_the_acl_refuses_names_the_user_to_match(tmp_path: Path,
                                                         broker: ProductionMosquitto) -> None:
    """agent.host pc-02 with the user of pc-01: MQTT 5's PUBACK says 0x87."""
    cfg = agent_cfg(tmp_path, broker, host="pc-02")
    r = doctor(cfg, "--lang", "en", password=broker.passwords["sq-1/pc-01"])
    assert r.returncode == 1, r.stdout + r.stderr
    [line] = problems(r)
    assert line.startswith("[PROBLEM] test publish to netroom/v1/sq-1/pc-02/inventory: "
                           "refused by the broker (Not authorized, 0x87) -- fix: ")
    assert "must match the broker user 'sq-1/pc-01'" in line
    assert r.stdout.strip().splitlines()[-1] == "1 problem(s) found"


def test_mqtt_3_1_1_cannot_check_the_acl_and_says_so(tmp_path: Path,
                                                     broker: ProductionMosquitto) -> None:
    cfg = agent_cfg(tmp_path, broker, host="pc-02", protocol="3.1.1")
    r = doctor(cfg, "--lang", "en", password=broker.passwords["sq-1/pc-01"])
    assert r.returncode == 1
    [line] = problems(r)
    assert "mqtt.protocol is 3.1.1" in line and 'fix: set mqtt.protocol: "5"' in line


def test_wrong_password_and_wrong_port_are_named(tmp_path: Path,
                                                 broker: ProductionMosquitto) -> None:
    cfg = agent_cfg(tmp_path, broker)
    r = doctor(cfg, "--lang", "en", password="not-the-password")
    assert r.returncode == 1
    [line] = problems(r)
    assert "not authorized: the broker refused 'sq-1/pc-01'" in line
    assert "fix: check mqtt.username and its password" in line
    assert "not-the-password" not in r.stdout + r.stderr

    cfg = agent_cfg(tmp_path, broker, port=free_port())
    r = doctor(cfg, "--lang", "en", password=broker.passwords["sq-1/pc-01"])
    assert r.returncode == 1
    [line] = problems(r)
    assert "connection refused, nothing listens there -- fix: start mosquitto" in line


def test_a_password_readable_by_everyone_and_a_clock_off(
        tmp_path: Path, broker: ProductionMosquitto,
        clock_server: Callable[[float], str]) -> None:
    cfg = agent_cfg(tmp_path, broker, clock=clock_server(-300),
                    password=broker.passwords["sq-1/pc-01"])
    cfg.chmod(0o644)
    r = doctor(cfg, "--lang", "en")
    assert r.returncode == 1, r.stdout + r.stderr
    found = problems(r)
    assert len(found) == 2, r.stdout
    assert f"{cfg} holds a password (mqtt.password) but every user may read it (mode 0644)" \
        " -- fix: chmod 600" in found[0]
    offset = float(found[1].split("clock: ")[1].split(" s from")[0])
    assert 298 <= offset <= 302 and "more than 60 s -- fix:" in found[1]  # this PC is ahead
    # The state directory (root passes every access check, so not tested here):
    # os.access(state_dir, W_OK), the same check the agent's start makes.


def test_a_bad_config_is_exit_2_naming_the_key(tmp_path: Path, broker: Mosquitto) -> None:
    cfg = agent_cfg(tmp_path, broker)
    data = yaml.safe_load(cfg.read_text())
    data["agent"]["network"] = "lan"
    cfg.write_text(yaml.safe_dump(data))
    r = doctor(cfg, "--lang", "en")
    assert r.returncode == 2
    [line] = problems(r)
    assert "agent.network: must be one of gov, internet, got 'lan'" in line
    assert "Traceback" not in r.stderr


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_tls_problems_are_named(tmp_path: Path,
                                mosquitto_factory: Callable[..., Mosquitto]) -> None:
    cert, key = self_signed(tmp_path)
    tls = mosquitto_factory(extra_config=[f"certfile {cert}", f"keyfile {key}"])
    lines = {}
    cases: list[tuple[str, dict[str, Any]]] = [("mismatch", {"tls": {"ca": str(cert)}}),
                                               ("plain", {})]
    for case, extra in cases:
        (tmp_path / case).mkdir()
        cfg = agent_cfg(tmp_path / case, tls, user="", **extra)
        r = doctor(cfg, "--lang", "en")
        assert r.returncode == 1, r.stdout
        [lines[case]] = problems(r)
    assert "TLS: the broker's certificate is not trusted (IP address mismatch" in \
        lines["mismatch"] and "fix: mqtt.host must be a name in the certificate" in \
        lines["mismatch"]
    assert "closed the connection before accepting it -- fix: a TLS port without mqtt.tls?" \
        in lines["plain"]


def test_help_and_the_agents_own_help_mention_it() -> None:
    r = run_cli("agent", "--help")
    assert "netroom-agent doctor" in r.stdout
    r = run_cli("agent", "doctor", "--help")
    assert r.returncode == 0 and "--lang" in r.stdout


def test_a_pc_that_cannot_update_itself_to_the_named_version_is_told_why(
        tmp_path: Path, broker: ProductionMosquitto) -> None:
    """This test's Python is no install.sh install: there is no launcher beside
    its venv, so the version named would never land. (An installed agent's
    doctor checking a release's signature: tests/test_update_e2e.py.)"""
    cfg = write_config(tmp_path, broker, agent={
        "host": "pc-01", "update": {"version": "9.9.9", "url": "http://127.0.0.1:1/releases"}},
        mqtt={"host": broker.host, "port": broker.port, "username": "sq-1/pc-01"})
    cfg.chmod(0o600)
    r = doctor(cfg, "--lang", "en", password=broker.passwords["sq-1/pc-01"])
    assert r.returncode == 1, r.stdout + r.stderr
    [line] = problems(r)
    assert line.startswith("[PROBLEM] self-update: the centre names 9.9.9, but this PC cannot "
                           "update itself: ")
    assert "netroom-agent-launch: reinstall with install.sh" in line
    assert "-- fix: reinstall with the bundle's install.sh" in line
