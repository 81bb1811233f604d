"""Agent self-update end to end, with real builds of the agent.

Three builds of this tree are made offline (netroom's wheel with its version
changed, in a bundle like build-bundle.sh's; the test's Python stands for
the distribution's packages, so the bundles need only netroom's and pip's
wheels, installed with --system-packages): 9.0.1, 9.0.2, and 9.0.3 whose
agent crashes once it runs as a service (it passes the installer's printed
round, as a subtle bug would). Releases are signed and published with
`netroom release`, served by the collector's speed-test server on loopback,
and named to the agent through the settings document the collector
publishes (netroom.central) on a real mosquitto.

One installed agent, started through its launcher as its service would
start it, then:
- 9.0.2 lands: downloaded, verified, installed beside 9.0.1, restarted into,
  confirmed by its first accepted metrics; it reports update_state current;
- 9.0.3 crashes at start and is rolled back to 9.0.2, which reports
  rolled_back with the reason and does not try 9.0.3 again;
- a release whose bundle was altered after signing, and one signed with a
  key the PC does not trust, are refused (failed, with the reason), and the
  running version stays.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any, Iterator

import paho.mqtt.client as mqtt
import pytest
from harness import REPO
from paho.mqtt.enums import CallbackAPIVersion
from servers import Mosquitto, wait_until
from test_deploy_bundle import GOOD, env_for, install, offline_bundle

from agent.update import files
from collector.speedtest.server import SpeedServer, SpeedServerConfig
from netroom import central

LINUX = REPO / "deploy" / "linux"
SITE = "sq-1"
CRASH = '''
def publish(a, once, timeout_s):  # the crashing build: fails once it runs as a service
    raise RuntimeError("broken build")
'''


def build(tmp: Path, version: str, crash: bool = False) -> Path:
    """The Linux bundle tarball of this tree as ``version``."""
    def break_it(src: Path) -> None:
        main = src / "agent" / "__main__.py"
        main.write_text(main.read_text().replace('\nif __name__ == "__main__":',
                                                 CRASH + '\nif __name__ == "__main__":'))

    bundle = offline_bundle(tmp / "stage", version, break_it if crash else None)
    out = tmp / "dist" / f"{bundle.name}.tar.gz"
    out.parent.mkdir(exist_ok=True)
    with tarfile.open(out, "w:gz") as tar:
        tar.add(bundle, arcname=bundle.name)
    return out


def stand_in(tmp: Path, version: str) -> Path:
    """A bundle tarball with only a VERSION: for releases refused before anything
    of the bundle runs (bad hash, bad signature)."""
    name = f"netroom-agent-{version}-linux"
    out = tmp / "dist" / f"{name}.tar.gz"
    out.parent.mkdir(exist_ok=True)
    (tmp / "VERSION").write_text(version + "\n")
    with tarfile.open(out, "w:gz") as tar:
        tar.add(tmp / "VERSION", arcname=f"{name}/VERSION")
        tar.add(REPO / "README.md", arcname=f"{name}/README.md")  # some bytes to alter
    return out


def netroom(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "collector.cli.main", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120, check=False)


class Fleet:
    """The PC, its broker, the release server and the settings it gets."""

    def __init__(self, tmp: Path, broker: Mosquitto) -> None:
        self.tmp = tmp
        self.broker = broker
        self.root = tmp / "root"
        self.prefix = self.root / "prefix"
        self.releases = tmp / "releases"
        self.releases.mkdir()
        self.keys = tmp / "keys"
        made = netroom("release", "keygen", "--out", str(self.keys))
        assert made.returncode == 0, made.stderr
        self.server = SpeedServer(SpeedServerConfig(listen="127.0.0.1:0",
                                                    releases=str(self.releases)))
        self.server.start()
        self.got: list[dict[str, Any]] = []
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.on_message = lambda c, u, m: self.got.append(json.loads(m.payload))
        self.client.connect(broker.host, broker.port)
        self.client.subscribe(f"netroom/v1/{SITE}/+/status", qos=1)
        self.client.loop_start()
        self.agent: subprocess.Popen[bytes] | None = None

    def publish_release(self, tarball: Path, key: Path | None = None) -> None:
        done = netroom("release", "publish", "--key", str(key or self.keys / "release.key"),
                       "--dir", str(self.releases), str(tarball))
        assert done.returncode == 0, done.stderr

    def name_version(self, version: str) -> None:
        """The collector's settings document for the site, naming ``version``."""
        settings = central.Settings(SITE, {
            "interval": 5, "inventory_interval": 3600,
            "update": {"version": version, "url": f"{self.server.url}/releases",
                       "check_interval": 60, "jitter": 0, "deadline": 120}})
        doc = central.encode(central.document(settings, time.time()))
        self.client.publish(central.topic(SITE), doc, qos=1, retain=True).wait_for_publish(10)

    def start(self) -> None:
        env = {**env_for(self.root)}
        log = (self.tmp / "agent.log").open("ab")
        self.agent = subprocess.Popen(
            [str(self.prefix / "netroom-agent-launch"), "--config",
             str(self.root / "conf_dir" / "config.yaml"), "--log-level", "DEBUG"],
            env=env, stdout=log, stderr=log, cwd="/")

    def statuses(self, **want: Any) -> list[dict[str, Any]]:
        return [s for s in self.got if all(s.get(k) == v for k, v in want.items())]

    def wait_status(self, timeout: float = 180, **want: Any) -> dict[str, Any]:
        assert wait_until(lambda: bool(self.statuses(**want)), timeout, 0.2), (
            want, self.got[-3:], self.log()[-3000:])
        return self.statuses(**want)[-1]

    def log(self) -> str:
        p = self.tmp / "agent.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def venv_version(self) -> str:
        return subprocess.run([str(self.prefix / "venv" / "bin" / "netroom-agent"), "--version"],
                              capture_output=True, text=True, check=True).stdout.strip()

    def close(self) -> None:
        if self.agent is not None and self.agent.poll() is None:
            self.agent.send_signal(signal.SIGTERM)
            try:
                self.agent.wait(30)
            except subprocess.TimeoutExpired:
                self.agent.kill()
        self.client.loop_stop()
        self.client.disconnect()
        self.server.stop()


@pytest.fixture
def fleet(tmp_path: Path, mosquitto: Mosquitto) -> Iterator[Fleet]:
    f = Fleet(tmp_path, mosquitto)
    try:
        yield f
    finally:
        f.close()


def test_a_release_lands_a_crashing_one_is_rolled_back_bad_ones_are_refused(
        tmp_path: Path, fleet: Fleet) -> None:
    first, second, crashing = (build(tmp_path, "9.0.1"), build(tmp_path, "9.0.2"),
                               build(tmp_path, "9.0.3", crash=True))
    with tarfile.open(first) as tar:
        tar.extractall(tmp_path / "x", filter="data")
    bundle = tmp_path / "x" / "netroom-agent-9.0.1-linux"
    # Installed with identity only, and the release key every PC trusts.
    put = install(bundle / "install.sh", fleet.root, *GOOD[:-1], "127.0.0.1", "--port",
                  str(fleet.broker.port), "--host", "pc-01", "--init", "none", "--no-start",
                  "--python", sys.executable, "--system-packages",
                  "--update-keys", str(fleet.keys / "release.pub"))
    assert put.returncode == 0, put.stderr
    fleet.publish_release(second)
    fleet.publish_release(crashing)
    fleet.name_version("9.0.2")
    fleet.start()

    # 9.0.2 lands and confirms its trial.
    done = fleet.wait_status(agent_version="9.0.2", update_state="current", state="online")
    assert done["update_version"] == "9.0.2"
    assert fleet.statuses(agent_version="9.0.1", update_state="updating")
    # The launcher records the trial's end once the agent confirmed it.
    trial = fleet.prefix / files.DIR / files.TRIAL
    assert wait_until(lambda: files.read_result(str(fleet.prefix)) == files.Result(
        "current", "9.0.2", "") and not trial.exists(), 30), fleet.log()[-2000:]
    assert fleet.venv_version() == "9.0.2"
    venvs = sorted(p.name.split("-")[1] for p in fleet.prefix.glob("venv-*"))
    assert venvs == ["9.0.1", "9.0.2"]  # the one before is kept for a rollback
    # The same process all along: the launcher's pid is the service's.
    assert fleet.agent is not None and fleet.agent.poll() is None

    # 9.0.3 crashes at start: back to 9.0.2, which says why and stays.
    fleet.name_version("9.0.3")
    back = fleet.wait_status(agent_version="9.0.2", update_state="rolled_back")
    assert back["update_version"] == "9.0.3"
    assert "before reporting" in back["update_error"]
    assert fleet.venv_version() == "9.0.2"
    assert "broken build" in fleet.log()

    # A bundle changed after signing: refused by its SHA-256, nothing installed.
    evil = stand_in(tmp_path, "9.0.4")
    fleet.publish_release(evil)
    with open(fleet.releases / "9.0.4" / evil.name, "r+b") as f:
        f.seek(100)
        f.write(b"\0" * 16)
    fleet.name_version("9.0.4")
    bad = fleet.wait_status(update_version="9.0.4", update_state="failed")
    assert "SHA-256" in bad["update_error"]
    # One signed by a key this PC does not trust: refused by its signature.
    other = tmp_path / "other-keys"
    assert netroom("release", "keygen", "--out", str(other)).returncode == 0
    fleet.publish_release(stand_in(tmp_path, "9.0.5"), key=other / "release.key")
    fleet.name_version("9.0.5")
    bad = fleet.wait_status(update_version="9.0.5", update_state="failed")
    assert "signature" in bad["update_error"]
    # The installed agent's doctor says the same, from the settings the PC kept.
    doc = subprocess.run([str(fleet.prefix / "venv" / "bin" / "netroom-agent"), "doctor",
                          "--config", str(fleet.root / "conf_dir" / "config.yaml"),
                          "--lang", "en", "--timeout", "5"],
                         capture_output=True, text=True, timeout=60, check=False)
    assert doc.returncode == 1, doc.stdout + doc.stderr
    assert ("[PROBLEM] self-update: release 9.0.5 cannot be used: manifest.json: the signature "
            "is not valid under any trusted release key -- fix: run netroom release list"
            in doc.stdout), doc.stdout
    assert fleet.venv_version() == "9.0.2"
    assert sorted(p.name.split("-")[1] for p in fleet.prefix.glob("venv-*")) == [
        "9.0.2", "9.0.3"]
    assert not (fleet.prefix / files.DIR / files.WORK).exists()
    assert os.access(fleet.prefix / "netroom-agent-launch", os.X_OK)
