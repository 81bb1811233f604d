"""The agent's update parts one by one: settings, unpacking, downloads, the
child process and what the PC reports. Downloads come from the collector's
real speed-test server on loopback; the whole path with real builds is in
tests/test_update_e2e.py, the launcher in tests/test_update_launcher.py."""
from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Iterator

import pytest
from harness import REPO, run_cli
from servers import Mosquitto, wait_until
from test_poison import tmpfs

import netroom
from agent import transport
from agent.config import AgentConfig, read
from agent.outbox import Outbox
from agent.update import fetch, files, unpack
from agent.update.job import LAUNCHER, Updater
from collector.speedtest.server import SpeedServer, SpeedServerConfig
from netroom import central, release, signing
from netroom.agentsettings import UpdateConfig
from netroom.mqtt import MqttConfig
from netroom.settings import ConfigError

KEY_PEM, KEY = signing.keygen()
AGENT = "agent: {site: sq-1, network: gov, host: pc-01, state_dir: '%s'}\n"


def test_update_keys_come_from_the_file_and_are_checked(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(AGENT.replace("}", ", update_keys: [nope]}") % tmp_path)
    r = run_cli("agent", "--config", str(cfg), "--once", "--print")
    assert r.returncode == 2
    assert r.stderr.strip() == (
        "netroom-agent: error: agent.update_keys[0]: not a release public key: must be 32 "
        "bytes of base64, got 3 (the line `netroom release keygen` printed)")
    good = read({"agent": {"site": "sq-1", "network": "gov", "host": "pc-01",
                           "state_dir": str(tmp_path), "update_keys": [KEY]}})
    assert good.update_keys == (KEY,)


@pytest.mark.parametrize(("block", "expected"), [
    ({"update": {"version": "1.5.0"}}, "agents.update.url: required with agents.update.version"),
    ({"update": {"version": "1.5.0\n", "url": "http://c:8090/releases"}},
     "agents.update.version: must be a release version"),
    ({"update": {"version": 1.5, "url": "http://c:8090/releases"}}, "agents.update.version"),
    ({"update": {"version": "1.5.0", "url": "ftp://c/releases"}}, "agents.update.url"),
    ({"update": {"deadline": 5}}, "agents.update.deadline: must be between 60"),
    # Trust is the PC's own: a key sent from the centre would sign itself in.
    ({"update_keys": [KEY]}, "agents.update_keys: unknown key"),
])
def test_the_centre_checks_its_update_settings(block: dict[str, object], expected: str) -> None:
    with pytest.raises(ConfigError) as e:
        central.check_site(central.Settings("sq-1", central.read_block(block, "agents", True)[0]),
                           "agents")
    assert expected in str(e.value)


def tarball(path: Path, members: list[tarfile.TarInfo], data: bytes = b"x") -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for m in members:
            if m.isfile():
                m.size = len(data)
                tar.addfile(m, io.BytesIO(data))
            else:
                tar.addfile(m)
    return path


def member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    m = tarfile.TarInfo(name)
    m.type, m.linkname, m.mode = kind, link, 0o4777
    return m


@pytest.mark.parametrize("bad", [
    member("../evil"), member("b/../../evil"), member("/tmp/evil"),
    member("b/link", tarfile.SYMTYPE, "/etc/passwd"), member("b/hard", tarfile.LNKTYPE, "b/x"),
    member("b/fifo", tarfile.FIFOTYPE), member("b/dev", tarfile.CHRTYPE),
])
def test_unpack_refuses_what_could_write_outside_the_bundle(tmp_path: Path,
                                                            bad: tarfile.TarInfo) -> None:
    archive = tarball(tmp_path / "b.tar.gz", [member("b/install.sh"), bad])
    with pytest.raises(unpack.UnpackError):
        unpack.untar(str(archive), str(tmp_path / "x" / "in"))
    assert not (tmp_path / "x" / "evil").exists() and not (tmp_path / "evil").exists()


def test_unpack_takes_plain_files_without_special_bits(tmp_path: Path) -> None:
    archive = tarball(tmp_path / "b.tar.gz", [member("b/sub/install.sh"), member("./b/VERSION")])
    unpack.untar(str(archive), str(tmp_path / "x"))
    script = tmp_path / "x" / "b" / "sub" / "install.sh"
    assert script.read_bytes() == b"x" and script.stat().st_mode & 0o7777 == 0o755
    assert (tmp_path / "x" / "b" / "VERSION").exists()


@pytest.fixture
def releases(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    d = tmp_path / "releases"
    (d / "1.5.0").mkdir(parents=True)
    server = SpeedServer(SpeedServerConfig(listen="127.0.0.1:0", releases=str(d)))
    server.start()
    try:
        yield f"{server.url}/releases", d / "1.5.0"
    finally:
        server.stop()


def test_downloads_are_held_to_the_manifests_size_and_hash(
        tmp_path: Path, releases: tuple[str, Path]) -> None:
    url, d = releases
    body = bytes(range(256)) * 4096
    (d / "b.tar.gz").write_bytes(body)
    sha = hashlib.sha256(body).hexdigest()
    out = tmp_path / "got"
    fetch.download(f"{url}/1.5.0/b.tar.gz", str(out), len(body), sha)
    assert out.read_bytes() == body
    for size, digest, why in ((len(body) - 1, sha, "longer than the manifest's"),
                              (len(body) + 1, sha, "bytes, the manifest says"),
                              (len(body), "0" * 64, "is not the manifest's")):
        with pytest.raises(fetch.FetchError, match=why):
            fetch.download(f"{url}/1.5.0/b.tar.gz", str(out), size, digest)
    with pytest.raises(fetch.FetchError, match="HTTP 404"):
        fetch.get(f"{url}/1.5.0/nothing", 100)
    with pytest.raises(fetch.FetchError, match="larger than 100 bytes"):
        fetch.get(f"{url}/1.5.0/b.tar.gz", 100)


def child(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agent.update", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=60, check=False)


def test_the_update_process_refuses_an_unsigned_release_in_one_line(
        tmp_path: Path, releases: tuple[str, Path]) -> None:
    url, d = releases
    m = release.Manifest("1.5.0", 1.0, {"linux": release.File("b.tar.gz", "0" * 64, 1)})
    (d / release.MANIFEST).write_bytes(release.encode(m))
    (d / release.SIGNATURE).write_bytes(signing.sign(b"something else",
                                                     signing.load_private(KEY_PEM)))
    prefix = tmp_path / "prefix"
    prefix.mkdir()
    p = child("--prefix", str(prefix), "--url", url, "--version", "1.5.0", "--key", KEY,
              "--config", str(tmp_path / "c.yaml"))
    assert p.returncode == 1 and p.stdout == ""
    assert p.stderr.splitlines() == [
        "update to 1.5.0: manifest.json: the signature is not valid under any trusted "
        "release key"]
    assert list((prefix / files.DIR).iterdir()) == []  # its work dir is gone
    # No such release: the server's answer, in one line.
    p = child("--prefix", str(prefix), "--url", url, "--version", "1.6.0", "--key", KEY,
              "--config", str(tmp_path / "c.yaml"))
    assert p.returncode == 1 and "1.6.0/manifest.json: HTTP 404" in p.stderr
    assert child("--prefix", str(prefix)).returncode == 2


def updater(tmp_path: Path, version: str, keys: tuple[str, ...] = (KEY,),
            env: dict[str, str] | None = None) -> Updater:
    cfg = AgentConfig("sq-1", "pc-01", "gov", "room", mqtt=None,  # type: ignore[arg-type]
                      update=UpdateConfig(version, "http://127.0.0.1:1/releases"),
                      update_keys=keys)
    prefix = tmp_path / "prefix"
    (prefix / files.DIR).mkdir(parents=True, exist_ok=True)
    (prefix / LAUNCHER).touch()
    return Updater(cfg, "c.yaml", dict, {files.PREFIX_ENV: str(prefix)} if env is None else env)


def test_what_a_pc_reports_about_its_update(tmp_path: Path) -> None:
    assert updater(tmp_path, "").status_fields() == {}
    assert updater(tmp_path, "").jobs() == []
    here = updater(tmp_path, netroom.__version__)
    assert here.status_fields() == {"update_state": "current",
                                    "update_version": netroom.__version__}
    assert here.jobs() == []
    wanted = updater(tmp_path, "9.9.9")
    assert wanted.status_fields() == {"update_state": "updating", "update_version": "9.9.9"}
    assert [j.name for j in wanted.jobs()] == ["update:9.9.9"]
    # Each reason this install cannot update itself is said, and no job runs.
    for u, why in ((updater(tmp_path, "9.9.9", env={}), "not started by the launcher"),
                   (updater(tmp_path, "9.9.9", keys=()), "no agent.update_keys")):
        assert u.status_fields()["update_state"] == "unsupported"
        assert why in u.status_fields()["update_error"]
        assert u.jobs() == []
    # The launcher rolled 9.9.9 back: said, and not tried again, until another is named.
    (tmp_path / "prefix" / files.DIR / files.RESULT).write_text(
        "state=rolled_back\nversion=9.9.9\nreason=exited with status 1 before reporting\n")
    back = updater(tmp_path, "9.9.9")
    assert back.status_fields() == {"update_state": "rolled_back", "update_version": "9.9.9",
                                     "update_error": "exited with status 1 before reporting"}
    assert back.jobs() == []
    back.use(back.cfg._replace(update=UpdateConfig("9.9.10", "http://127.0.0.1:1/r")))
    assert back.status_fields()["update_state"] == "updating" and back.jobs()


def test_a_failed_try_is_reported_and_backed_off(tmp_path: Path) -> None:
    """Nothing listens on port 1: the child fails, the PC says why and waits
    longer before each next try."""
    u = updater(tmp_path, "9.9.9")
    u.try_update()
    fields = u.status_fields()
    assert fields["update_state"] == "failed" and "manifest.json" in fields["update_error"]
    first = u.hold_s()
    assert 800 < first <= 900  # one check interval
    u.try_update()
    assert u.hold_s() > first * 1.9
    assert not u.staged


def test_a_full_disk_is_said_before_anything_is_downloaded(
        tmp_path: Path, releases: tuple[str, Path]) -> None:
    """The prefix on a 16 MB disk, a release of a 64 MB bundle: refused with
    the room it needs, nothing written there."""
    url, d = releases
    m = release.Manifest("1.5.0", 1.0, {"linux": release.File("b.tar.gz", "0" * 64, 64 << 20)})
    data = release.encode(m)
    (d / release.MANIFEST).write_bytes(data)
    (d / release.SIGNATURE).write_bytes(signing.sign(data, signing.load_private(KEY_PEM)))
    with tmpfs(tmp_path / "disk", "16m") as disk:
        p = child("--prefix", str(disk), "--url", url, "--version", "1.5.0", "--key", KEY,
                  "--config", str(tmp_path / "c.yaml"))
        assert p.returncode == 1
        assert p.stderr.splitlines() == [
            f"update to 1.5.0: {disk}: 16 MB free, the update needs 328 MB"]
        assert list((disk / files.DIR).iterdir()) == []


def test_only_this_runs_own_metrics_confirm_a_trial(tmp_path: Path, mosquitto: Mosquitto) -> None:
    """Metrics an earlier version left in the outbox are delivered by the new
    one, but say nothing about it: only its own confirm (real broker)."""
    box = str(tmp_path / "outbox")
    Outbox(box).put([transport.pack("netroom/v1/sq-1/pc-01/metrics", b"old", False)])
    accepted: list[str] = []
    pub = transport.Publisher(MqttConfig(host=mosquitto.host, port=mosquitto.port), "t-trial",
                              box, accepted=accepted.append)
    try:
        pub.start()
        assert wait_until(lambda: pub.pending() == 0, 10), pub.last_error
        assert accepted == []
        pub.send("netroom/v1/sq-1/pc-01/metrics", b"new")
        assert wait_until(lambda: accepted == ["netroom/v1/sq-1/pc-01/metrics"], 10)
    finally:
        pub.close()
