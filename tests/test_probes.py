"""Probes against real servers on 127.0.0.1: an HTTP portal going up and down,
TCP ports open and closed, DNS answered by a dnslib server (tests/fakeinternet.py)
and by the system resolver ("localhost" from /etc/hosts); config errors; and
the DNS wire code on literal packets.
"""
from __future__ import annotations

import http.server
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import fakeinternet
import pytest
import yaml
from harness import run_cli
from servers import free_port, wait_until

from agent import dnsquery
from agent.collectors import jobs
from agent.collectors.probes import Probe
from agent.config import load
from agent.probe_config import Check, read_check, split_host_port
from netroom import protocol
from netroom.settings import ConfigError, Section


def check(kind: str, target: str, timeout: float = 2.0, **kw: Any) -> Check:
    return read_check(Section({"name": "t", "kind": kind, "target": target,
                               "timeout": timeout, **kw}, "probes[0]"), 5.0)


def portal_up(port: int, directory: Path) -> subprocess.Popen[bytes]:
    """`python -m http.server` as the portal: a real process we can kill."""
    proc = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind",
                             "127.0.0.1", "--directory", str(directory)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def serving() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return True
        except OSError:
            return False

    assert wait_until(serving, 10), "http.server did not start"
    return proc


def test_portal_probe_follows_the_server_going_up_and_down(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<h1>政工网</h1>", encoding="utf-8")
    port = free_port()
    probe = Probe(check("http", f"http://127.0.0.1:{port}/index.html"))
    proc = portal_up(port, tmp_path)
    try:
        up = probe.collect()
        assert up["ok"] is True and up["status"] == 200 and up["address"] == "127.0.0.1"
        assert up["latency_ms"] > 0 and "error" not in up
        assert (up["probe"], up["method"]) == ("t", "http")
    finally:
        proc.kill()
        proc.wait(10)
    down = probe.collect()
    assert down["ok"] is False and "refused" in down["error"].lower()
    assert "status" not in down and "latency_ms" not in down
    proc = portal_up(port, tmp_path)
    try:
        assert probe.collect()["ok"] is True
        missing = Probe(check("http", f"http://127.0.0.1:{port}/nope")).collect()
        assert missing["ok"] is False and missing["status"] == 404
    finally:
        proc.kill()
        proc.wait(10)


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/slow":
            time.sleep(3)
        self.send_response(503 if self.path == "/busy" else 302 if self.path == "/moved" else 200)
        self.send_header("Location", "/elsewhere")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def odd_portal() -> Iterator[int]:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv.server_address[1]
    srv.shutdown()
    srv.server_close()


def test_http_status_decides_and_a_hung_server_hits_the_timeout(odd_portal: int) -> None:
    base = f"http://127.0.0.1:{odd_portal}"
    busy = Probe(check("http", base + "/busy")).collect()
    assert (busy["ok"], busy["status"]) == (False, 503)
    moved = Probe(check("http", base + "/moved")).collect()
    assert (moved["ok"], moved["status"]) == (True, 302)  # a redirect is an answer
    slow = Probe(check("http", base + "/slow", timeout=0.5)).collect()
    assert slow == {"probe": "t", "method": "http", "target": base + "/slow", "ok": False,
                    "error": "timed out after 0.5 s"}


def test_tcp_probe_open_and_closed_ports() -> None:
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        port = srv.getsockname()[1]
        r = Probe(check("tcp", f"127.0.0.1:{port}")).collect()
        assert r["ok"] is True and r["address"] == "127.0.0.1"
    closed = Probe(check("tcp", f"127.0.0.1:{port}")).collect()
    assert closed["ok"] is False and "refused" in closed["error"].lower()


def test_dns_probe_against_a_real_dns_server_and_the_system_resolver() -> None:
    port = free_port()
    proc = fakeinternet.start([f"--dns=127.0.0.1:{port}", "--answer=portal.gov.test=10.9.8.7"])
    try:
        ok = Probe(check("dns", "portal.gov.test", server=f"127.0.0.1:{port}")).collect()
        assert ok["ok"] is True and ok["address"] == "10.9.8.7"
        nx = Probe(check("dns", "nowhere.gov.test", server=f"127.0.0.1:{port}")).collect()
        assert nx["ok"] is False and "NXDOMAIN" in nx["error"]
    finally:
        fakeinternet.stop(proc)
    gone = Probe(check("dns", "portal.gov.test", 0.5, server=f"127.0.0.1:{port}")).collect()
    assert gone["ok"] is False  # refused (ICMP) or no answer, never a hang
    system = Probe(check("dns", "localhost")).collect()
    assert system["ok"] is True and system["address"] in ("127.0.0.1", "::1")


def test_dns_wire_format_on_literal_packets() -> None:
    q = dnsquery.build_query("portal.gov.cn", dnsquery.A, 0x1234)
    assert q == (b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
                 b"\x06portal\x03gov\x02cn\x00\x00\x01\x00\x01")
    # The answer a resolver sends: the question, then two A records whose
    # names point back at the question (0xc00c), then one AAAA.
    answer = (b"\x12\x34\x81\x80\x00\x01\x00\x03\x00\x00\x00\x00"
              b"\x06portal\x03gov\x02cn\x00\x00\x01\x00\x01"
              b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\x0a\x00\x00\x01"
              b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\xc0\xa8\x01\xfe"
              b"\xc0\x0c\x00\x1c\x00\x01\x00\x00\x00\x3c\x00\x10"
              + bytes.fromhex("20010db8000000000000000000000002"))
    assert dnsquery.parse_response(answer, 0x1234) == ["10.0.0.1", "192.168.1.254",
                                                        "2001:db8::2"]
    with pytest.raises(dnsquery.DnsError, match="match"):
        dnsquery.parse_response(answer, 0x4321)
    nxdomain = b"\x12\x34\x81\x83" + answer[4:6] + b"\x00\x00" + answer[8:31]
    with pytest.raises(dnsquery.DnsError, match="NXDOMAIN"):
        dnsquery.parse_response(nxdomain, 0x1234)
    empty = struct.pack("!HHHHHH", 0x1234, 0x8180, 1, 0, 0, 0) + answer[12:31]
    with pytest.raises(dnsquery.DnsError, match="no address"):
        dnsquery.parse_response(empty, 0x1234)


@pytest.mark.parametrize("text,expected", [
    ("portal:80", ("portal", 80)),
    ("10.1.2.3:443", ("10.1.2.3", 443)),
    ("[2001:db8::1]:8443", ("2001:db8::1", 8443)),
    ("[::1]", ("::1", 53)),
    ("dns.gov", ("dns.gov", 53)),
])
def test_split_host_port(text: str, expected: tuple[str, int]) -> None:
    assert split_host_port(text, 53) == expected


def _config(tmp_path: Path, probes: Any, **agent: Any) -> Path:
    cfg = {"agent": {"site": "sq-1", "network": "gov", "state_dir": str(tmp_path), **agent},
           "probes": probes}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


@pytest.mark.parametrize("probes,message", [
    ({"name": "x"}, "probes: must be a list"),
    ([{"kind": "http", "target": "http://p/"}], "probes[0].name: required"),
    ([{"name": "p", "kind": "icmp", "target": "p"}], "probes[0].kind: must be one of"),
    ([{"name": "p", "kind": "http", "target": "portal"}], "probes[0].target: must be an http"),
    ([{"name": "p", "kind": "tcp", "target": "portal"}], "probes[0].target: no port"),
    ([{"name": "p", "kind": "tcp", "target": "p:99999"}], "probes[0].target: port '99999'"),
    ([{"name": "p", "kind": "tcp", "target": "::1:80"}], "write an IPv6 address as [address]"),
    ([{"name": "p", "kind": "dns", "target": "a b"}], "probes[0].target: must be a host name"),
    ([{"name": "p", "kind": "dns", "target": "p", "server": "x:0"}], "probes[0].server: port"),
    ([{"name": "p", "kind": "tcp", "target": "p:1", "networks": ["lan"]}],
     "probes[0].networks: must be among gov, internet, got 'lan'"),
    ([{"name": "p", "kind": "tcp", "target": "p:1", "timeout": 0}], "probes[0].timeout: must be"),
    ([{"name": "p", "kind": "tcp", "target": "p:1"}, {"name": "p", "kind": "dns", "target": "p"}],
     "probes[1].name: 'p' is used twice"),
    ([{"name": "p", "kind": "tcp", "target": "p:1", "url": "x"}], "probes[0].url: unknown key"),
])
def test_bad_probe_config_is_one_line_naming_the_key(tmp_path: Path, probes: Any,
                                                      message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load(_config(tmp_path, probes))
    assert message in str(err.value) and "\n" not in str(err.value)
    r = run_cli("agent", "--config", str(tmp_path / "config.yaml"), "--once", "--print")
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr


def test_probes_run_only_on_their_networks_each_as_its_own_job(tmp_path: Path) -> None:
    probes = [{"name": "portal", "kind": "http", "target": "http://127.0.0.1:1/",
               "networks": ["gov"], "interval": 30},
              {"name": "web", "kind": "tcp", "target": "127.0.0.1:1", "networks": ["internet"]},
              {"name": "both", "kind": "dns", "target": "localhost"}]
    gov = jobs(load(_config(tmp_path, probes, network="gov")))
    inet = jobs(load(_config(tmp_path, probes, network="internet")))
    assert [(j.key, j.interval_s) for j in gov if j.collector.kind == "probe"] == [
        ("probe:portal", 30.0), ("probe:both", 60.0)]
    assert [j.key for j in inet if j.collector.kind == "probe"] == ["probe:web", "probe:both"]
    assert all(j.timeout_s is not None for j in gov if j.collector.kind == "probe")


def test_agent_prints_probe_messages_that_the_collector_accepts(tmp_path: Path) -> None:
    port = free_port()
    probes = [{"name": "portal", "kind": "tcp", "target": f"127.0.0.1:{port}", "timeout": 1},
              {"name": "lo", "kind": "dns", "target": "localhost"}]
    r = run_cli("agent", "--config", str(_config(tmp_path, probes)), "--once", "--print")
    assert r.returncode == 0, r.stderr
    lines = [yaml.safe_load(x) for x in r.stdout.splitlines()]
    got = {}
    for line in lines:
        if line["topic"].endswith("/probe"):
            msg = protocol.decode(line["topic"], protocol.encode(line["payload"]))
            got[msg.fields["probe"]] = msg.fields
    assert got["portal"]["ok"] is False and got["lo"]["ok"] is True


def test_a_probe_result_is_stored_with_the_probe_name_as_a_tag() -> None:
    from collector.ingest.points import to_points

    body = {"probe": "portal", "method": "http", "target": "http://p/", "ok": True,
            "status": 200, "latency_ms": 12.5}
    payload = {**protocol.envelope("sq-1", "pc-1", "gov", "room", 1764000000.0), **body}
    msg = protocol.decode(protocol.topic("sq-1", "pc-1", "probe"), protocol.encode(payload))
    [p] = to_points(msg)
    assert p.measurement == "probe" and p.tags["probe"] == "portal"
    assert p.fields == {"method": "http", "target": "http://p/", "ok": True, "status": 200,
                        "latency_ms": 12.5}
    bad = {**payload, "probe": "por tal"}
    with pytest.raises(protocol.ProtocolError, match="probe: 'por tal' is not a valid id"):
        protocol.decode(protocol.topic("sq-1", "pc-1", "probe"), protocol.encode(bad))


@pytest.mark.parametrize("isolation,message", [
    ({"canaries": [{"kind": "ping", "target": "x"}]}, "agent.isolation.canaries[0].kind"),
    ({"canaries": [{"kind": "tcp", "target": "x"}]}, "agent.isolation.canaries[0].target: no port"),
    ({"canaries": [{"kind": "dns", "target": "a"}, {"kind": "dns", "target": "b",
                                                    "name": "canary1"}]},
     "agent.isolation.canaries[1].name: 'canary1' is used twice"),
    ({"interval": 1}, "agent.isolation.interval: must be between 5"),
    ({"canary": []}, "agent.isolation.canary: unknown key"),
])
def test_bad_isolation_config_is_one_line_naming_the_key(tmp_path: Path, isolation: Any,
                                                          message: str) -> None:
    with pytest.raises(ConfigError, match=None) as err:
        load(_config(tmp_path, [], isolation=isolation))
    assert message in str(err.value)


def test_isolation_runs_on_gov_pcs_only(tmp_path: Path) -> None:
    canaries = {"canaries": [{"kind": "tcp", "target": "127.0.0.1:1", "timeout": 2}]}
    gov = [j for j in jobs(load(_config(tmp_path, [], isolation=canaries)))
           if j.collector.kind == "isolation"]
    assert [(j.interval_s, j.timeout_s) for j in gov] == [(60.0, 12.0)]
    inet = load(_config(tmp_path, [], network="internet", isolation=canaries))
    assert not [j for j in jobs(inet) if j.collector.kind == "isolation"]
    off = load(_config(tmp_path, [], isolation={"enabled": False}))
    assert not [j for j in jobs(off) if j.collector.kind == "isolation"]
