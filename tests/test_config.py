"""A bad config file: one line naming the key and the problem, exit 2."""
from __future__ import annotations

from pathlib import Path

import pytest
from harness import REPO, run_cli

from agent.config import load as load_agent
from agent.config import read_file, with_central
from collector.config import load as load_collector

GOOD_AGENT = "agent: {site: sq-1, network: gov}\n"


@pytest.mark.parametrize("text,expected", [
    ("agent: {site: sq-1, network: lan}\n",
     "agent.network: must be one of gov, internet, got 'lan'"),
    ("agent: {network: gov}\n", "agent.site: required"),
    ("agent: {site: 'sq 1', network: gov}\n", "agent.site: must be 1-64 letters"),
    ("agent: {site: sq-1, network: gov, intervall: 5}\n", "agent.intervall: unknown key"),
    ("agent: {site: sq-1, network: gov, interval: 0}\n", "agent.interval: must be between 1"),
    ("agent: {site: sq-1, network: gov, role: boss}\n", "agent.role: must be one of cadre"),
    # The settings the centre may send are checked in the file too; the
    # site-only keys of the sites tree's `agents:` blocks are not agent keys.
    ("agent: {site: sq-1, network: gov, isolation: {interval: 1}}\n",
     "agent.isolation.interval: must be between 5"),
    ("agent: {site: sq-1, network: gov, testers: {gov: pc-1}}\n", "agent.testers: unknown key"),
    ("agent: {site: sq-1, network: gov, probes: []}\n", "agent.probes: unknown key"),
    (GOOD_AGENT + "probes: [{name: p, kind: tcp, target: x}]\n",
     "probes[0].target: no port, got 'x'"),
    (GOOD_AGENT + "mqtt: {port: abc}\n", "mqtt.port: must be an integer, got 'abc'"),
    (GOOD_AGENT + "mqtt: {port: 70000}\n", "mqtt.port: must be between 1 and 65535"),
    (GOOD_AGENT + "mqtt: {protocol: 4}\n", "mqtt.protocol: must be one of 5, 3.1.1"),
    (GOOD_AGENT + "mqtt: {tls: {ca: /nonexistent/ca.crt}}\n",
     "mqtt.tls.ca: no such file '/nonexistent/ca.crt'"),
    (GOOD_AGENT + "mqtt: [1, 2]\n", "mqtt: must be a mapping"),
    ("agent: {site: sq-1\n", "invalid YAML"),
    ("- just\n- a list\n", "top level must be a mapping"),
])
def test_agent_bad_config_one_line_exit_2(tmp_path: Path, text: str, expected: str) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(text)
    r = run_cli("agent", "--config", str(cfg), "--once", "--print")
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("netroom-agent: error: ")
    assert expected in lines[0]
    assert r.stdout == ""


def test_missing_config_file(tmp_path: Path) -> None:
    r = run_cli("agent", "--config", str(tmp_path / "nope.yaml"), "--once", "--print")
    assert r.returncode == 2
    assert "nope.yaml: cannot read: No such file or directory" in r.stderr


@pytest.mark.parametrize("text,expected", [
    ("influxdb: {url: 'ftp://x'}\n", "influxdb.url: must be http(s)://host:port"),
    ("influxdb: {timeout_s: -1}\n", "influxdb.timeout_s: must be between 0.1"),
    ("influxdb: {token: t, username: u}\n", "influxdb.token: give either a token"),
    ("collector: {batch_size: 0}\n", "collector.batch_size: must be between 1"),
    ("collector: {flush_interval: fast}\n", "collector.flush_interval: must be a number"),
    ("collector: {spool: /tmp}\n", "collector.spool: unknown key"),
    ("sites: [{id: sq-1, cadres: 1, staff: 1, agents: {interval: 0}}]\n",
     "sites.sq-1.agents.interval: must be between 1"),
])
def test_collector_bad_config_one_line_exit_2(tmp_path: Path, text: str, expected: str) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(text)
    r = run_cli("collector", "--config", str(cfg))
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("netroom-collector: error: ")
    assert expected in lines[0]


def test_secrets_come_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(GOOD_AGENT + "mqtt: {username: agent, password: in-file}\n"
                   "influxdb: {token: in-file}\n")
    monkeypatch.setenv("NETROOM_MQTT_PASSWORD", "from-env")
    monkeypatch.setenv("NETROOM_INFLUXDB_TOKEN", "tok-env")
    assert load_agent(cfg).mqtt.password == "from-env"
    assert load_agent(cfg).mqtt.username == "agent"
    assert load_collector(cfg).influxdb.token == "tok-env"


def test_the_shipped_config_is_valid_for_every_program() -> None:
    shipped = REPO / "config.yaml"
    agent = load_agent(shipped)
    assert agent.mqtt.host == "127.0.0.1"  # loopback only by default
    col = load_collector(shipped)
    assert col.influxdb.url.startswith("http://127.0.0.1")
    # The demo agent runs its site's settings from the collector's tree: the
    # file sets none of its own, so the centre's apply.
    site = col.org.site(agent.site)
    assert site is not None
    demo = with_central(agent, read_file(shipped), site.settings)
    assert demo.interval_s == site.settings.settings["interval"]
    assert demo._replace(interval_s=agent.interval_s) == agent


def test_a_number_that_is_not_finite_is_refused(tmp_path: Path) -> None:
    from netroom.settings import ConfigError

    for value in (".nan", ".inf"):
        path = tmp_path / "c.yaml"
        path.write_text(f"mqtt: {{host: 127.0.0.1}}\ncollector: {{flush_interval: {value}}}\n")
        with pytest.raises(ConfigError, match=r"collector\.flush_interval: must be a number"):
            load_collector(path)
