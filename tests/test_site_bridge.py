"""deploy/mosquitto/site-bridge.conf: a site broker holds the line while its
uplink to the central broker is down.

Two real brokers on loopback: the central one is deploy/mosquitto/netroom.conf
as shipped (ProductionMosquitto) with the site's bridge user from
netroom_credentials.py --bridges; the site one is site-bridge.conf as shipped
(only the locations, the ports and the password moved) with the users' file
netroom_credentials.py `site` made from the central one. The real collector
reads the central broker into a real influxd; a real agent logs in at the
site broker.
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from harness import REPO, T0, message, write_config
from mqttclient import Client
from servers import (
    CREDENTIALS_TOOL,
    DEBIAN_MAIN,
    DEPLOY_MOSQUITTO,
    Influxd,
    Mosquitto,
    ProductionMosquitto,
    wait_until,
)

from agent.settings import kept_path
from netroom import central, protocol

SITE = "sq-1"
PCS = [(SITE, "pc-01"), (SITE, "pc-02")]
BRIDGE = f"netroom-bridge-{SITE}"
N = 200  # messages published while the uplink is down
SITES = [{"id": "bj", "name": "北京局", "children": [
    {"id": SITE, "name": "一中队", "cadres": 1, "staff": 2, "agents": {"interval": 45}}]}]


class SiteMosquitto(Mosquitto):
    """mosquitto with Debian's main config and site-bridge.conf as shipped,
    bridged to ``central``."""

    def __init__(self, workdir: Path, central: Mosquitto, password: str) -> None:
        self.central = central
        self.password = password
        self.dynsec_path = workdir / "netroom-dynsec.json"
        super().__init__(workdir)

    def _argv(self) -> list[str]:
        d = self.datadir
        conf = (DEPLOY_MOSQUITTO / "site-bridge.conf").read_text(encoding="utf-8")
        moves = {
            "listener 1883\n": f"listener {self.port} 127.0.0.1\n",
            "address 10.11.0.5:1883": f"address 127.0.0.1:{self.central.port}",
            "remote_password CHANGE-ME": f"remote_password {self.password}",
            "plugin_opt_config_file /etc/mosquitto/netroom-dynsec.json":
                f"plugin_opt_config_file {self.dynsec_path}",
        }
        for old, new in moves.items():
            if conf.count(old) != 1:
                raise RuntimeError(f"site-bridge.conf no longer has one {old!r}")
            conf = conf.replace(old, new)
        (d / "conf.d").mkdir(exist_ok=True)
        (d / "conf.d" / "netroom-site.conf").write_text(conf, encoding="utf-8")
        self.config_path.write_text("user root\n" + DEBIAN_MAIN.format(d=d), encoding="utf-8")
        return [self.binary, "-c", str(self.config_path)]


@pytest.fixture
def brokers(tmp_path: Path) -> Iterator[tuple[ProductionMosquitto, SiteMosquitto]]:
    centre = ProductionMosquitto(workdir=tmp_path / "central", pcs=PCS)
    out = tmp_path / "passwords"
    done = centre.credentials("sync", "--pcs", "-", "--out", str(out), "--bridges", SITE,
                              stdin="".join(f"{s},{h}\n" for s, h in PCS))
    assert done.returncode == 0, done.stderr
    bridge_pw = next(line.partition(":")[2] for line in
                     (out / f"{SITE}.txt").read_text().splitlines()
                     if line.startswith(BRIDGE + ":"))
    site = SiteMosquitto(tmp_path / "site", centre, bridge_pw)
    site.datadir.mkdir(parents=True, exist_ok=True)
    done = centre.credentials("site", SITE, "--to", str(site.dynsec_path))
    assert done.returncode == 0, done.stderr
    centre.start()
    site.start()
    yield centre, site
    site.kill()
    centre.kill()


def pc(site: SiteMosquitto, centre: ProductionMosquitto, host: str) -> Client:
    c = Client(site, f"{SITE}/{host}", centre.passwords[f"{SITE}/{host}"], f"{SITE}/{host}")
    assert c.connect().value == 0
    return c


def settings_version(c: Client) -> str:
    for payload in c.payloads():
        if payload:
            return central.decode(payload, SITE).version
    return ""


def stamps(influxd: Influxd, db: str) -> list[int]:
    answer = influxd.query("SELECT \"cpu_percent\" FROM \"metrics\" WHERE \"host\" = 'pc-01'",
                           db)
    result = answer["results"][0]
    assert "error" not in result or "database not found" in result["error"], result
    series = result.get("series") or []
    return [row[0] for s in series for row in s["values"]]


def test_the_site_broker_queues_while_the_centre_is_down_and_delivers_once(
        tmp_path: Path, brokers: tuple[ProductionMosquitto, SiteMosquitto], influxd: Influxd,
        run_collector: Callable[[Path], Any]) -> None:
    centre, site = brokers
    (tmp_path / "collector").mkdir()
    cfg = write_config(tmp_path / "collector", centre, influxd, db="bridged", sites=SITES,
                       mqtt={"host": centre.host, "port": centre.port,
                             "username": "netroom-collector",
                             "password": centre.passwords["netroom-collector"]})
    svc = run_collector(cfg)
    assert svc.settings is not None and svc.settings.published.wait(10)
    version = svc.settings.versions()[SITE]

    # The centre's settings reach the site broker through the bridge (in).
    pc1 = pc(site, centre, "pc-01")
    assert pc1.subscribe(central.topic(SITE)) == 1
    assert wait_until(lambda: settings_version(pc1) == version, 30), site.log_tail()

    # The uplink goes down; the site's PC goes on publishing to its own broker.
    centre.stop()
    sent = [message("metrics", {"cpu_percent": i / 2}, site=SITE, host="pc-01", ts=T0 + i)
            for i in range(N)]
    for topic, payload in sent:
        assert pc1.publish(topic, payload) in (0, 0x10)
    # The site broker still checks each PC's rights: pc-01 may not speak for pc-02.
    assert pc1.publish(protocol.topic(SITE, "pc-02", "metrics"), sent[0][1]) == 0x87
    pc1.close()
    # The site broker restarts meanwhile (a clean stop saves its queue).
    site.stop()
    site.start()

    # The uplink is back: every message lands, exactly once.
    centre.start()
    expected = [(T0 + i) * 1000 for i in range(N)]
    assert wait_until(lambda: len(stamps(influxd, "bridged")) >= N, 120, 0.2), \
        site.log_tail() + centre.log_tail()
    assert sorted(stamps(influxd, "bridged")) == expected
    assert svc.counters.received >= N and not svc.failed.is_set()

    # A real agent on the site broker runs the centre's settings for its site.
    (tmp_path / "agent").mkdir()
    state = tmp_path / "agent" / "state"
    agent_cfg = write_config(tmp_path / "agent", site,
                             agent={"host": "pc-02", "state_dir": str(state), "interval": 60},
                             mqtt={"host": site.host, "port": site.port,
                                   "username": f"{SITE}/pc-02"})
    env = {**os.environ, "NETROOM_MQTT_PASSWORD": centre.passwords[f"{SITE}/pc-02"]}
    agent = subprocess.Popen([sys.executable, "-m", "agent", "--config", str(agent_cfg)],
                             cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
    try:
        kept = Path(kept_path(str(state)))
        assert wait_until(kept.exists, 30), "the agent got no settings from its site broker"
        assert central.decode(kept.read_bytes(), SITE).version == version
    finally:
        agent.terminate()
        agent.wait(20)


def test_bridge_users_are_kept_and_pruned_like_pcs() -> None:
    spec = importlib.util.spec_from_file_location("netroom_credentials", CREDENTIALS_TOOL)
    assert spec is not None and spec.loader is not None
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    pcs = [*PCS, ("sq-2", "pc-01")]
    doc, created, _ = tool.build(None, pcs, "netroom-collector", "netroom-admin", 1, False,
                                 [SITE])
    assert BRIDGE in created
    role = next(r for r in doc["roles"] if r["rolename"] == BRIDGE)
    assert [(a["acltype"], a["topic"]) for a in role["acls"]] == [
        ("publishClientSend", f"netroom/v1/{SITE}/+/+"),
        ("subscribeLiteral", f"netroom/settings/v1/{SITE}"),
        ("publishClientReceive", f"netroom/settings/v1/{SITE}")]
    # Not listed again: kept, with its password and its role; --prune removes it.
    kept, new, removed = tool.build(doc, pcs, "netroom-collector", "netroom-admin", 1, False)
    assert not new and not removed
    assert any(c["username"] == BRIDGE for c in kept["clients"])
    assert any(r["rolename"] == BRIDGE for r in kept["roles"])
    _, _, removed = tool.build(doc, pcs, "netroom-collector", "netroom-admin", 1, True)
    assert removed == [BRIDGE]
    # The site broker's file: that site's PCs, the same hashes, nobody else.
    part = tool.site_doc(doc, SITE)
    assert [c["username"] for c in part["clients"]] == [f"{SITE}/pc-01", f"{SITE}/pc-02"]
    assert part["clients"][0]["password"] == next(
        c["password"] for c in doc["clients"] if c["username"] == f"{SITE}/pc-01")
    assert {r["rolename"] for r in part["roles"]} == {f"pc:{SITE}/pc-01", f"pc:{SITE}/pc-02"}
