"""A gov PC's isolation check, run by the real agent inside a network namespace.

Two namespaces made by this test: "gov" (no address, no route out) and a fake
"internet" host (198.18.0.2 and 2001:db8::2, benchmarking / documentation
ranges that exist only inside these namespaces) running a DNS server and TCP
listeners (tests/fakeinternet.py). The agent runs in "gov" with
``--once --print``; we give it a way to the fake internet, then take it away,
and read its isolation reports. Namespaces are deleted at teardown; the test
skips only when the kernel refuses to make namespaces.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import fakeinternet
import pytest
import yaml
from harness import REPO
from servers import wait_until

pytestmark = pytest.mark.netns

INET4, INET6 = "198.18.0.2", "2001:db8::2"
GOV4, GOV6 = "198.18.0.1/24", "2001:db8::1/64"


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=False)
    if check and r.returncode:
        raise RuntimeError(f"ip {' '.join(args)}: {r.stderr.strip()}")
    return r


@pytest.fixture
def netns() -> Iterator[dict[str, str]]:
    tag = f"{os.getpid() % 100000}"
    ns = {"gov": f"nr-gov-{tag}", "inet": f"nr-inet-{tag}", "veth": f"nrg{tag}",
          "peer": f"nri{tag}"}
    probe = ip("netns", "add", ns["gov"], check=False)
    if probe.returncode:
        if "permission" in probe.stderr.lower() or "not permitted" in probe.stderr.lower():
            pytest.skip(f"the kernel forbids network namespaces here: {probe.stderr.strip()}")
        raise RuntimeError(f"ip netns add: {probe.stderr.strip()}")
    try:
        ip("netns", "add", ns["inet"])
        ip("link", "add", ns["veth"], "netns", ns["gov"], "type", "veth",
           "peer", "name", ns["peer"], "netns", ns["inet"])
        for name, dev in (("gov", ns["veth"]), ("inet", ns["peer"])):
            ip("-n", ns[name], "link", "set", "lo", "up")
            ip("-n", ns[name], "link", "set", dev, "up")
        ip("-n", ns["inet"], "addr", "add", "198.18.0.2/24", "dev", ns["peer"])
        ip("-n", ns["inet"], "addr", "add", "2001:db8::2/64", "dev", ns["peer"], "nodad")
        yield ns
    finally:
        for name in ("gov", "inet"):
            ip("netns", "del", ns[name], check=False)  # also removes the veth pair


def link_state(ns: str, dev: str, state: str) -> None:
    """Wait until ``dev`` reports ``state``: the kernel updates it asynchronously (linkwatch)."""
    assert wait_until(lambda: f"state {state}" in ip("-n", ns, "link", "show", dev).stdout, 10,
                      0.05), f"{dev} never became {state}"


def agent_isolation(ns: str, config: Path) -> dict[str, Any]:
    """The isolation payload of one `--once --print` round of the agent run in ``ns``."""
    r = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-m", "agent", "--config",
                        str(config), "--once", "--print"], capture_output=True, text=True,
                       timeout=60, cwd=REPO, check=False)
    assert r.returncode == 0, r.stderr
    for line in r.stdout.splitlines():
        msg = json.loads(line)
        if msg["topic"].endswith("/isolation"):
            payload: dict[str, Any] = msg["payload"]
            return payload
    raise AssertionError(f"no isolation message in: {r.stdout[:2000]}")


def test_gov_pc_reaching_the_fake_internet_is_a_violation_until_cut_off(
        netns: dict[str, str], tmp_path: Path) -> None:
    inet = fakeinternet.start([f"--dns={INET4}:53", f"--tcp={INET4}:8443",
                               f"--tcp=[{INET6}]:8443", f"--answer=canary.example={INET4}"],
                              wrap=["ip", "netns", "exec", netns["inet"]])
    cfg = {"mqtt": {"host": "127.0.0.1", "port": 1},
           "agent": {"site": "sq-1", "network": "gov", "role": "room", "host": "gov-pc-1",
                     "state_dir": str(tmp_path / "state"),
                     "isolation": {"timeout": 1, "canaries": [
                         {"name": "dns-canary", "kind": "dns", "target": "canary.example",
                          "server": INET4},
                         {"name": "tcp4", "kind": "tcp", "target": f"{INET4}:8443"},
                         {"name": "tcp6", "kind": "tcp", "target": f"[{INET6}]:8443"}]}}}
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    gov, veth = netns["gov"], netns["veth"]
    try:
        sealed = agent_isolation(gov, config)
        assert sealed["violated"] is False and "reasons" not in sealed
        assert (sealed["canaries_checked"], sealed["canaries_reached"]) == (3, 0)
        assert sealed["default_routes"] == 0

        ip("-n", gov, "addr", "add", GOV4, "dev", veth)
        ip("-n", gov, "addr", "add", GOV6, "dev", veth, "nodad")
        leaking = agent_isolation(gov, config)
        assert leaking["violated"] is True
        assert leaking["reached"] == "dns-canary,tcp4,tcp6"
        assert "canary tcp6 reached" in leaking["reasons"]

        ip("-n", gov, "addr", "del", GOV6, "dev", veth)
        only_v4 = agent_isolation(gov, config)
        assert only_v4["reached"] == "dns-canary,tcp4"

        ip("-n", gov, "addr", "del", GOV4, "dev", veth)
        cleared = agent_isolation(gov, config)
        assert cleared["violated"] is False and cleared["canaries_reached"] == 0
    finally:
        fakeinternet.stop(inet)


def test_mobile_interface_and_second_default_route_are_violations(
        netns: dict[str, str], tmp_path: Path) -> None:
    """A "wwan0" (a veth named like a mobile modem: no modem here) and default routes."""
    cfg = {"mqtt": {"host": "127.0.0.1", "port": 1},
           "agent": {"site": "sq-1", "network": "gov", "state_dir": str(tmp_path / "state")}}
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    gov = netns["gov"]
    ip("link", "add", "wwan0", "netns", gov, "type", "veth", "peer", "name",
       f"{netns['peer']}m", "netns", netns["inet"])
    down = agent_isolation(gov, config)
    assert down["violated"] is False and down["bridges"] == "wwan0:mobile:down"

    ip("-n", netns["inet"], "link", "set", f"{netns['peer']}m", "up")
    ip("-n", gov, "link", "set", "wwan0", "up")
    link_state(gov, "wwan0", "UP")
    up = agent_isolation(gov, config)
    assert up["violated"] is True and up["reasons"] == "mobile interface wwan0 is up"

    ip("-n", gov, "link", "set", "wwan0", "down")
    link_state(gov, "wwan0", "DOWN")
    ip("-n", gov, "route", "add", "default", "dev", netns["veth"], "metric", "10")
    one = agent_isolation(gov, config)
    assert one["violated"] is False and one["default_route_ifaces"] == netns["veth"]

    ip("-n", gov, "link", "set", "wwan0", "up")
    link_state(gov, "wwan0", "UP")
    ip("-n", gov, "route", "add", "default", "dev", "wwan0", "metric", "20")
    two = agent_isolation(gov, config)
    assert two["violated"] is True and two["default_routes"] == 2
    assert f"default routes via 2 interfaces: {netns['veth']},wwan0" in two["reasons"]
