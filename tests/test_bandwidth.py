"""Speed tests, agent side: config, the pure helpers, the intranet speed-test
server and its stdlib client on loopback, speedtest-cli's engine driven
against local servers (never the internet), and failures that become error
records while the schedule goes on.

Rates on loopback are whatever the machine does, so they are only checked
to be positive here; tests/test_bandwidth_netns.py checks them against a
link shaped to a known rate.
"""
from __future__ import annotations

import http.client
import json
import logging
import shutil
import socket
import ssl
import subprocess
import sys
import textwrap
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlsplit

import pytest
import yaml
from harness import REPO, run_cli
from servers import free_port, wait_until

from agent.collectors import Job
from agent.collectors.bandwidth import Bandwidth, quiet_wait_s
from agent.config import BandwidthConfig, ConfigError, load, parse_window
from agent.runner import Runner
from agent.speedclient import jitter, median, warmup_s
from collector.speedtest.server import SpeedServer, SpeedServerConfig
from netroom import protocol


@pytest.fixture
def speedserver() -> Iterator[SpeedServer]:
    srv = SpeedServer(SpeedServerConfig("127.0.0.1:0", max_bytes=8 << 20))
    srv.start()
    yield srv
    srv.stop()


def dead_url() -> str:
    """A loopback URL nothing listens on (connection refused)."""
    return f"http://127.0.0.1:{free_port()}"


# --- config -----------------------------------------------------------------

def agent_yaml(tmp_path: Path, network: str = "gov", **bandwidth: Any) -> Path:
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump({
        "agent": {"site": "sq-1", "network": network, "state_dir": str(tmp_path / "state"),
                  "bandwidth": bandwidth}}), encoding="utf-8")
    return path


def test_config_defaults_and_auto_method(tmp_path: Path) -> None:
    gov = load(agent_yaml(tmp_path, "gov")).bandwidth
    assert gov == BandwidthConfig()  # not a tester, 6 h, 30 min jitter, 120 s, 4 x 10 s
    assert (gov.tester, gov.interval_s, gov.jitter_s, gov.timeout_s, gov.streams,
            gov.duration_s, gov.method) == (False, 21600, 1800, 120, 4, 10, "intranet")
    assert load(agent_yaml(tmp_path, "internet")).bandwidth.method == "speedtest"
    cfg = load(agent_yaml(tmp_path, "internet", tester=True, method="intranet",
                          url="http://10.1.2.3:8090/", quiet_hours="22:00-06:30",
                          speedtest_servers=[1, 2])).bandwidth
    assert (cfg.method, cfg.url, cfg.quiet_hours, cfg.speedtest_servers) == \
        ("intranet", "http://10.1.2.3:8090", (1320, 390), (1, 2))


@pytest.mark.parametrize(("bandwidth", "message"), [
    ({"tester": True}, "agent.bandwidth.url: required"),
    ({"tester": True, "method": "speedtest"},
     "agent.bandwidth.method: gov PCs have no internet: use method intranet"),
    ({"method": "speedtest"}, "agent.bandwidth.method: gov PCs have no internet"),
    ({"speedtest_mini": "http://10.1.2.3:8090"}, "agent.bandwidth.speedtest_mini: unknown key"),
    ({"method": "iperf"}, "agent.bandwidth.method: must be one of auto, intranet, speedtest"),
    ({"url": "10.1.2.3:8090"}, "agent.bandwidth.url: must be http(s)://host[:port]"),
    ({"quiet_hours": "8-18"}, "agent.bandwidth.quiet_hours: must be HH:MM-HH:MM"),
    ({"quiet_hours": "00:00-24:00"}, "agent.bandwidth.quiet_hours: '00:00-24:00' leaves no"),
    ({"timeout": 20}, "agent.bandwidth.timeout: must be at least 2 x duration + 5 s (25)"),
    ({"speedtest_servers": ["abc"]}, "agent.bandwidth.speedtest_servers: must be a list"),
    ({"streams": 0}, "agent.bandwidth.streams: must be between 1 and 32"),
    ({"intervall": 60}, "agent.bandwidth.intervall: unknown key"),
])
def test_config_errors_name_the_key(tmp_path: Path, bandwidth: dict[str, Any],
                                    message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load(agent_yaml(tmp_path, "gov", **bandwidth))
    assert str(err.value).startswith(message)


def test_speedtest_on_a_gov_pc_is_one_line_and_exit_2(tmp_path: Path) -> None:
    """Gov PCs test against the collector's server only (method intranet)."""
    path = agent_yaml(tmp_path, "gov", tester=True, method="speedtest")
    r = run_cli("agent", "--config", str(path), "--once", "--print")
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "netroom-agent: error: agent.bandwidth.method: gov PCs have no internet: "
        "use method intranet"]


def test_bad_config_is_one_line_and_exit_2(tmp_path: Path) -> None:
    r = run_cli("agent", "--config", str(agent_yaml(tmp_path, tester=True)), "--once", "--print")
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "netroom-agent: error: agent.bandwidth.url: required for the intranet speed test "
        "(the collector's speed-test server, http://host:8090)"]


# --- pure helpers -----------------------------------------------------------

def test_parse_window() -> None:
    assert parse_window("22:00-06:00") == (22 * 60, 6 * 60)
    assert parse_window("8:00 - 18:30") == (480, 1110)
    assert parse_window("00:00-24:00") == (0, 1440)
    for bad in ("25:00-01:00", "08:00-08:00", "8-18", "24:30-01:00", ""):
        assert parse_window(bad) is None, bad


def test_quiet_wait() -> None:
    night = (22 * 60, 6 * 60)  # wraps midnight
    assert quiet_wait_s(night, 23 * 60) == 7 * 3600  # 23:00 -> 06:00
    assert quiet_wait_s(night, 5 * 60 + 30) == 1800  # 05:30 -> 06:00
    assert quiet_wait_s(night, 22 * 60) == 8 * 3600  # the start is inside
    assert quiet_wait_s(night, 6 * 60) == 0  # the end is outside
    assert quiet_wait_s(night, 12 * 60) == 0
    day = (8 * 60, 18 * 60)
    assert quiet_wait_s(day, 9 * 60 + 15) == (18 * 60 - 555) * 60
    assert quiet_wait_s(day, 19 * 60) == 0
    assert quiet_wait_s(None, 12 * 60) == 0


def test_hold_uses_local_time() -> None:
    at = time.struct_time((2025, 1, 1, 7, 59, 30, 2, 1, 0))  # 07:59:30
    bw = Bandwidth(BandwidthConfig(quiet_hours=(7 * 60, 8 * 60)), localtime=lambda: at)
    assert bw.hold_s() == pytest.approx(30)


def test_latency_statistics() -> None:
    rtts = [10.0, 12.0, 11.0, 15.0]
    assert median(rtts) == 11.5  # (11 + 12) / 2
    assert jitter(rtts) == pytest.approx((2 + 1 + 4) / 3)  # |12-10|, |11-12|, |15-11|
    assert jitter([5.0]) == 0
    assert (warmup_s(10), warmup_s(1), warmup_s(60)) == (2.0, 0.5, 2.0)
    assert warmup_s(3) == pytest.approx(0.6)


def test_bandwidth_kind_on_the_wire() -> None:
    from harness import message
    ok = {"method": "intranet", "server": "http://10.0.0.1:8090", "download_mbps": 19.5,
          "upload_mbps": 9.8, "latency_ms": 0.4, "jitter_ms": 0.1, "bytes": 12_000_000,
          "duration_s": 7.2, "streams": 4}
    msg = protocol.decode(*message("bandwidth", ok))
    assert msg.fields == ok
    failed = {"method": "speedtest", "error": "speedtest: ConfigRetrievalError: timed out"}
    assert protocol.decode(*message("bandwidth", failed)).fields == failed
    with pytest.raises(protocol.ProtocolError, match="method: must be one of"):
        protocol.decode(*message("bandwidth", {**ok, "method": "iperf"}))
    with pytest.raises(protocol.ProtocolError, match="download_mbps: -1"):
        protocol.decode(*message("bandwidth", {**ok, "download_mbps": -1}))


# --- the server -------------------------------------------------------------

def fetch(srv: SpeedServer, method: str, path: str, body: bytes | None = None
         ) -> tuple[int, bytes]:
    u = urlsplit(srv.url)
    conn = http.client.HTTPConnection(u.hostname or "", u.port, timeout=10)
    try:
        conn.request(method, path, body=body)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def test_server_endpoints(speedserver: SpeedServer) -> None:
    status, body = fetch(speedserver, "GET", "/download?bytes=100000")
    assert (status, len(body)) == (200, 100000)
    assert len(set(body)) > 200  # random, not zeros (a proxy could compress zeros)
    status, body = fetch(speedserver, "GET", "/download?bytes=99999999999")
    assert (status, len(body)) == (200, 8 << 20)  # capped at max_bytes
    assert fetch(speedserver, "POST", "/upload", b"x" * 12345) == (200, b'{"bytes": 12345}')
    u = urlsplit(speedserver.url)
    conn = http.client.HTTPConnection(u.hostname or "", u.port, timeout=10)
    conn.putrequest("POST", "/upload")
    conn.putheader("Content-Length", str((8 << 20) + 1))
    conn.endheaders()  # the server answers before any body is sent
    assert conn.getresponse().status == 413
    conn.close()
    assert fetch(speedserver, "GET", "/latency") == (200, b"ok")
    assert fetch(speedserver, "GET", "/download?bytes=ten")[0] == 400
    assert fetch(speedserver, "GET", "/nothing")[0] == 404
    # The Speedtest Mini endpoints speedtest-cli uses.
    assert b'upload_extension: "php"' in fetch(speedserver, "GET", "/")[1]
    assert fetch(speedserver, "GET", "/speedtest/latency.txt") == (200, b"test=test")
    status, body = fetch(speedserver, "GET", "/speedtest/random350x350.jpg?x=1.0")
    assert (status, len(body)) == (200, 2 * 350 * 350)
    assert fetch(speedserver, "GET", "/speedtest/upload.php") == (200, b"size=0")
    assert fetch(speedserver, "POST", "/speedtest/upload.php", b"content1=ABC") == \
        (200, b"size=12")


def test_server_refuses_beyond_max_clients() -> None:
    srv = SpeedServer(SpeedServerConfig("127.0.0.1:0", max_clients=1))
    srv.start()
    try:
        # Hold the only slot: a download whose body we do not read.
        u = urlsplit(srv.url)
        hold = http.client.HTTPConnection(u.hostname or "", u.port, timeout=10)
        hold.request("GET", "/download?bytes=1000000000")
        hold.getresponse()
        assert fetch(srv, "GET", "/latency")[0] == 503
        hold.close()
        assert wait_until(lambda: fetch(srv, "GET", "/latency")[0] == 200, 10, 0.05)
    finally:
        srv.stop()


def test_collector_starts_the_server_from_config(tmp_path: Path, mosquitto: Any,
                                                 run_collector: Any) -> None:
    from harness import write_config
    port = free_port()
    cfg = write_config(tmp_path, mosquitto,
                       collector={"speedtest": {"listen": f"127.0.0.1:{port}"}})
    svc = run_collector(cfg)
    assert svc.speedserver is not None and svc.speedserver.url == f"http://127.0.0.1:{port}"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/latency")
    assert conn.getresponse().read() == b"ok"
    conn.close()


def test_only_the_primary_worker_serves_speed_tests(tmp_path: Path, mosquitto: Any) -> None:
    from harness import write_config

    from collector.config import load as load_collector
    from collector.service import Collector
    from collector.workers import worker_config
    cfg = load_collector(write_config(tmp_path, mosquitto, collector={
        "workers": 2, "speedtest": {"listen": "127.0.0.1:0"}}))
    primary, other = Collector(worker_config(cfg, 0)), Collector(worker_config(cfg, 1))
    try:
        assert primary.speedserver is not None and other.speedserver is None
    finally:
        for svc in (primary, other):
            if svc.speedserver is not None:
                svc.speedserver.stop()
            svc.spool.close()


def test_speedserver_command_bad_listen_exits_2() -> None:
    r = run_cli("collector.cli.main", "speedserver", "--listen", "0.0.0.0")
    assert r.returncode == 2
    assert r.stderr.strip() == ("netroom speedserver: error: collector.speedtest.listen: "
                                "must be host:port, got '0.0.0.0'")


# --- the intranet client ----------------------------------------------------

def test_intranet_test_on_loopback(speedserver: SpeedServer) -> None:
    cfg = BandwidthConfig(tester=True, url=speedserver.url, streams=2, duration_s=1,
                          timeout_s=30)
    body = Bandwidth(cfg).collect()
    assert "error" not in body, body
    assert body["method"] == "intranet" and body["server"] == speedserver.url
    assert body["download_mbps"] > 0 and body["upload_mbps"] > 0
    assert body["latency_ms"] > 0 and body["jitter_ms"] >= 0
    assert body["streams"] == 2 and body["bytes"] > 0 and body["duration_s"] > 0
    protocol.decode(protocol.topic("s", "h", "bandwidth"), protocol.encode(
        {**protocol.envelope("s", "h", "gov", "room", time.time()), **body}))


def test_agent_once_prints_a_bandwidth_record(tmp_path: Path, speedserver: SpeedServer) -> None:
    cfg = agent_yaml(tmp_path, "internet", tester=True, method="intranet", url=speedserver.url,
                     duration=1, streams=2, timeout=30)
    r = run_cli("agent", "--config", str(cfg), "--once", "--print")
    assert r.returncode == 0, r.stderr
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    bw = [x for x in lines if x["topic"] == "netroom/v1/sq-1/" + lines[0]["payload"]["host"]
          + "/bandwidth"]
    assert len(bw) == 1 and bw[0]["retain"] is False
    p = bw[0]["payload"]
    assert p["method"] == "intranet" and p["download_mbps"] > 0 and "error" not in p


def test_not_a_tester_runs_no_speed_test(tmp_path: Path) -> None:
    r = run_cli("agent", "--config", str(agent_yaml(tmp_path, "gov")), "--once", "--print")
    assert r.returncode == 0, r.stderr
    assert not [x for x in r.stdout.splitlines() if "/bandwidth" in json.loads(x)["topic"]]


def test_server_down_is_an_error_record() -> None:
    url = dead_url()
    body = Bandwidth(BandwidthConfig(tester=True, url=url, duration_s=1, timeout_s=30)).collect()
    assert body["method"] == "intranet" and body["server"] == url
    assert body["error"].startswith(f"latency: {url}: ConnectionRefusedError")
    assert "download_mbps" not in body and body["bytes"] == 0


def test_silent_server_ends_in_time_as_an_error_record() -> None:
    """A server that accepts and never answers: the test's own deadline
    (timeout minus 2 s) bounds every socket wait."""
    with socket.socket() as lst:
        lst.bind(("127.0.0.1", 0))
        lst.listen(8)  # never accept(): connects succeed, nothing is ever answered
        url = f"http://127.0.0.1:{lst.getsockname()[1]}"
        body = Bandwidth(BandwidthConfig(tester=True, url=url, duration_s=1,
                                         timeout_s=4)).collect()
    assert body["error"] == f"latency: {url}: TimeoutError: timed out"
    assert body["duration_s"] < 4


# --- speedtest-cli's engine, against local servers only ---------------------

# Runs one speedtest-cli test in a child process whose audit hook refuses any
# connection or name lookup outside 127.0.0.0/8, and lists what it refused.
GUARDED = textwrap.dedent("""
    import ipaddress, json, sys, time
    refused = []
    def loopback(host):
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False
    def guard(event, args):
        if event == "socket.getaddrinfo" and not loopback(args[0]):
            refused.append(f"lookup {args[0]}")
            raise OSError(f"refused lookup {args[0]}")
        if event == "socket.connect" and isinstance(args[1], tuple) and not loopback(args[1][0]):
            refused.append(f"connect {args[1]}")
            raise OSError(f"refused connect {args[1]}")
    sys.addaudithook(guard)
    from agent import speedtestcli
    from agent.config import BandwidthConfig
    cfg = BandwidthConfig(**json.loads(sys.argv[1]))
    try:
        out = speedtestcli.run(cfg, time.monotonic() + 60)
    except Exception as exc:
        out = {"error": f"{type(exc).__name__}: {exc}"}
    print(json.dumps({"result": out, "refused": refused}))
""")


def guarded_speedtest(env: dict[str, str] | None = None, **cfg: Any) -> dict[str, Any]:
    cfg = {"tester": True, "method": "speedtest", "duration_s": 1, "streams": 2, **cfg}
    r = subprocess.run([sys.executable, "-c", GUARDED, json.dumps(cfg)], capture_output=True,
                       text=True, timeout=120, cwd=REPO, check=False,
                       env={"PATH": "/usr/bin:/bin", "NO_PROXY": "127.0.0.1", **(env or {})})
    assert r.returncode == 0, r.stderr
    out: dict[str, Any] = json.loads(r.stdout.splitlines()[-1])
    assert out["refused"] == [], "the test tried to leave loopback"
    return dict(out["result"])


def requested(caplog: pytest.LogCaptureFixture, srv: SpeedServer) -> list[str]:
    """Request paths ``srv`` logged (query strings dropped)."""
    return [r.getMessage().split('"')[1].split()[1].split("?")[0] for r in caplog.records
            if r.name == "collector.speedtest.server" and r.getMessage().startswith(srv.url + " ")]


CONFIG_XML = """<?xml version="1.0" encoding="UTF-8"?>
<settings>
<client ip="127.0.0.1" lat="39.9" lon="116.4" isp="netroom test" country="CN"/>
<server-config threadcount="4" ignoreids=""/>
<download testlength="1" threadsperurl="4"/>
<upload testlength="1" ratio="5" threads="2" maxchunkcount="50"/>
</settings>"""


@pytest.fixture(scope="module")
def fake_tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A certificate for www.speedtest.net and its key, self-signed: the
    child trusts it through SSL_CERT_FILE."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command")
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=www.speedtest.net", "-addext",
                    "subjectAltName=DNS:www.speedtest.net,DNS:c.speedtest.net",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return cert, key


class FakeSpeedtestNet(BaseHTTPRequestHandler):
    """speedtest.net's configuration and server list, reached as an HTTPS
    proxy: CONNECT, then TLS with ``server.tls`` (an SSLContext)."""

    server: Any

    def log_message(self, *args: Any) -> None:
        pass

    def do_CONNECT(self) -> None:
        self.send_response(200)
        self.end_headers()
        self.wfile.flush()
        tunnel = self.server.tls.wrap_socket(self.connection, server_side=True)
        FakeSpeedtestNet(tunnel, self.client_address, self.server)  # serves the request
        self.close_connection = True

    def do_GET(self) -> None:
        u = urlsplit(self.path)  # through a tunnel: a path, and the Host header
        self.server.seen.append(f"{u.hostname or self.headers['Host']}{u.path}")
        if u.path == "/speedtest-config.php":
            body = CONFIG_XML
        elif u.path == "/speedtest-servers-static.php":
            body = "<settings><servers>" + "".join(
                f'<server url="{url}/speedtest/upload.php" lat="39.9" lon="116.4" '
                f'name="Loopback {sid}" country="Test" cc="TS" sponsor="netroom" '
                f'id="{sid}" host="{urlsplit(url).netloc}"/>'
                for sid, url in self.server.speedservers) + "</servers></settings>"
        else:
            self.send_error(404)
            return
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def test_speedtest_cli_speedtest_net_path_with_a_chosen_server(
        speedserver: SpeedServer, caplog: pytest.LogCaptureFixture,
        fake_tls: tuple[Path, Path]) -> None:
    """The speedtest.net path, with speedtest.net played by a local HTTPS proxy:
    configuration and server list over HTTPS, the server chosen by id, then
    the transfers."""
    other = SpeedServer(SpeedServerConfig("127.0.0.1:0"))
    other.start()
    fake = ThreadingHTTPServer(("127.0.0.1", 0), FakeSpeedtestNet)
    fake.seen = []  # type: ignore[attr-defined]
    fake.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)  # type: ignore[attr-defined]
    fake.tls.load_cert_chain(*fake_tls)  # type: ignore[attr-defined]
    fake.speedservers = [(4242, speedserver.url), (4343, other.url)]  # type: ignore[attr-defined]
    threading.Thread(target=fake.serve_forever, daemon=True).start()
    caplog.set_level(logging.DEBUG, logger="collector.speedtest.server")
    try:
        proxy = f"http://127.0.0.1:{fake.server_address[1]}"
        out = guarded_speedtest({"https_proxy": proxy, "SSL_CERT_FILE": str(fake_tls[0])},
                                speedtest_servers=[4242])
    finally:
        fake.shutdown()
        fake.server_close()
        other.stop()
    assert "error" not in out, out
    assert out["server"] == f"4242 netroom Loopback 4242 ({urlsplit(speedserver.url).netloc})"
    assert out["download_mbps"] > 0 and out["upload_mbps"] > 0
    assert fake.seen[:2] == ["www.speedtest.net/speedtest-config.php",  # type: ignore[attr-defined]
                             "www.speedtest.net/speedtest-servers-static.php"]
    assert "/speedtest/random350x350.jpg" in requested(caplog, speedserver)
    assert requested(caplog, other) == []  # only the chosen server was tested


def test_speedtest_cli_server_down_is_an_error_record(monkeypatch: pytest.MonkeyPatch) -> None:
    # speedtest.net out of reach: its HTTPS proxy refuses connections.
    for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("https_proxy", dead_url())
    body = Bandwidth(BandwidthConfig(tester=True, method="speedtest", duration_s=1,
                                     timeout_s=30)).collect()
    assert body["method"] == "speedtest" and body["server"] == "speedtest.net"
    assert body["error"].startswith("speedtest: ConfigRetrievalError: "), body
    assert "download_mbps" not in body


def test_speedtest_cli_unusable_is_an_error_record() -> None:
    """speedtest-cli cannot even be imported where sys.stdout is None (a Windows
    service without a console); the child process sets it so."""
    script = textwrap.dedent("""
        import json, sys
        err, sys.stdout = sys.stderr, None
        from agent.collectors.bandwidth import Bandwidth
        from agent.config import BandwidthConfig
        cfg = BandwidthConfig(tester=True, method="speedtest", duration_s=1)
        err.write(json.dumps(Bandwidth(cfg).collect()))
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                       timeout=60, cwd=REPO, check=False)
    assert r.returncode == 0, r.stderr
    body = json.loads(r.stderr.strip().splitlines()[-1])
    assert body["method"] == "speedtest"
    assert body["error"] == ("speedtest-cli is not usable: AttributeError: "
                             "'NoneType' object has no attribute 'fileno'")


# --- the schedule goes on ---------------------------------------------------

def test_failed_tests_are_records_and_the_next_tick_runs() -> None:
    bw = Bandwidth(BandwidthConfig(tester=True, url=dead_url(), duration_s=1, timeout_s=30))
    sent: list[tuple[str, dict[str, Any]]] = []
    runner = Runner([Job(bw, 0.05, 0, 30, on_error=bw.failed)],
                    lambda kind, body, ts: sent.append((kind, body)))
    stop = threading.Event()
    t = threading.Thread(target=runner.run_forever, args=(stop,), daemon=True)
    t.start()
    try:
        assert wait_until(lambda: len(sent) >= 3, 30)
    finally:
        stop.set()
        t.join(10)
    assert {k for k, _ in sent} == {"bandwidth"}
    assert all("ConnectionRefusedError" in b["error"] for _, b in sent[:3])


class Stuck:
    """A collector whose run blocks until released: stands in for a test that
    hangs past every socket timeout, which a real server cannot be made to do
    on demand."""

    kind = "bandwidth"

    def __init__(self) -> None:
        self.release = threading.Event()
        self.calls = 0

    def collect(self) -> dict[str, Any]:
        self.calls += 1
        if self.calls == 1:
            self.release.wait(30)
            return {"method": "intranet", "download_mbps": 1.0}  # late: dropped
        return {"method": "intranet", "download_mbps": 2.0}

    def failed(self, reason: str) -> dict[str, Any]:
        return {"method": "intranet", "error": reason}


def test_a_timed_out_test_is_an_error_record_and_the_schedule_goes_on() -> None:
    stuck = Stuck()
    sent: list[dict[str, Any]] = []
    runner = Runner([Job(stuck, 0.05, 0, 0.3, on_error=stuck.failed)],
                    lambda kind, body, ts: sent.append(body))
    stop = threading.Event()
    t = threading.Thread(target=runner.run_forever, args=(stop,), daemon=True)
    t.start()
    try:
        assert wait_until(lambda: len(sent) >= 1, 10)
        assert sent[0] == {"method": "intranet", "error": "timed out after 0.3 s"}
        assert stuck.calls == 1  # busy: later ticks skip, never stack
        stuck.release.set()
        assert wait_until(lambda: len(sent) >= 2, 10)
    finally:
        stop.set()
        t.join(10)
    assert sent[1] == {"method": "intranet", "download_mbps": 2.0}  # the late 1.0 was dropped
    assert "bandwidth" not in runner.failures


def test_quiet_hours_hold_a_due_test() -> None:
    calls: list[float] = []

    class Counting:
        kind = "bandwidth"

        def collect(self) -> dict[str, Any]:
            calls.append(time.time())
            return {"method": "intranet"}

    held: list[int] = []

    def hold() -> float:
        held.append(1)
        return 3600.0

    runner = Runner([Job(Counting(), 0.01, 0, 5, hold_s=hold)], lambda *a: None)
    stop = threading.Event()
    t = threading.Thread(target=runner.run_forever, args=(stop,), daemon=True)
    t.start()
    assert wait_until(lambda: bool(held), 10)
    stop.set()
    t.join(10)
    assert calls == []
