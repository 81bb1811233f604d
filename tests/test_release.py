"""Agent releases (issue 14): `netroom release keygen | publish | list`, and
the speed-test server's /releases.

Real components only: the `netroom` command (another process), real tar.gz
and zip bundles, the real SpeedServer on loopback, and the openssl command
checking our signatures (Ed25519 as RFC 8032, not python-ecdsa's own idea).
"""
from __future__ import annotations

import base64
import contextlib
import hashlib
import http.client
import io
import os
import select
import shutil
import socket
import subprocess
import sys
import tarfile
import time
import tracemalloc
import zipfile
from pathlib import Path
from typing import Iterator

import pytest
import yaml
from harness import REPO, run_cli
from servers import OPENER, wait_until

from collector.speedtest.server import SpeedServer, SpeedServerConfig, read_config
from netroom import release, signing
from netroom.settings import ConfigError

V = "1.5.0"
# SubjectPublicKeyInfo of an Ed25519 key (RFC 8410) before its 32 bytes.
ED25519_SPKI = bytes.fromhex("302a300506032b6570032100")


def netroom(*args: str) -> subprocess.CompletedProcess[str]:
    return run_cli("collector.cli.main", *args)


def linux_bundle(where: Path, version: str, inside: str | None = None,
                 payload: int = 200_000) -> Path:
    """A tarball shaped as deploy/linux/build-bundle.sh makes it, random payload."""
    where.mkdir(parents=True, exist_ok=True)
    top = f"netroom-agent-{version}-linux"
    path = where / f"{top}.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name, data in ((f"{top}/wheels/netroom.whl", os.urandom(payload)),
                           (f"{top}/VERSION", f"{inside or version}\n".encode())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def windows_bundle(where: Path, version: str, inside: str | None = None) -> Path:
    """A zip shaped as deploy/windows/build-bundle.sh makes it."""
    where.mkdir(parents=True, exist_ok=True)
    top = f"netroom-agent-{version}-windows-amd64"
    path = where / f"{top}.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(f"{top}/VERSION", f"{inside or version}\n")
        z.writestr(f"{top}/wheels/netroom.whl", os.urandom(50_000))
    return path


@pytest.fixture
def key(tmp_path: Path) -> tuple[Path, str]:
    """(the key's directory, the public line), made by `netroom release keygen`."""
    r = netroom("release", "keygen", "--out", str(tmp_path / "key"))
    assert r.returncode == 0, r.stderr
    return tmp_path / "key", (tmp_path / "key" / "release.pub").read_text().strip()


def publish(key_dir: Path, releases: Path, *bundles: Path,
            extra: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    releases.mkdir(exist_ok=True)
    return netroom("release", "publish", "--lang", "en", "--key", str(key_dir / "release.key"),
                   "--dir", str(releases), *extra, *map(str, bundles))


@pytest.fixture
def published(tmp_path: Path, key: tuple[Path, str]) -> Path:
    """The releases directory holding V for linux and windows."""
    releases = tmp_path / "releases"
    r = publish(key[0], releases, linux_bundle(tmp_path / "dist", V),
                windows_bundle(tmp_path / "dist", V))
    assert r.returncode == 0, r.stderr
    return releases


@contextlib.contextmanager
def served(releases: Path) -> Iterator[SpeedServer]:
    srv = SpeedServer(SpeedServerConfig("127.0.0.1:0", releases=str(releases)))
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def server(published: Path) -> Iterator[SpeedServer]:
    with served(published) as srv:
        yield srv


def get(srv: SpeedServer, path: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    """The raw request target as given: http.client neither normalises nor quotes it."""
    host, port = srv.url.removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request(method, path)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def test_keygen_writes_the_key_and_never_overwrites_it(tmp_path: Path) -> None:
    out = tmp_path / "key"
    r = netroom("release", "keygen", "--out", str(out), "--lang", "en")
    assert r.returncode == 0, r.stderr
    pem, line = (out / "release.key").read_bytes(), (out / "release.pub").read_text().strip()
    assert (out / "release.key").stat().st_mode & 0o777 == 0o600
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8
    assert signing.public_line(signing.load_private(pem)) == line
    assert release.public_key_error(line) == ""
    # The printed lines are the YAML an agent's config takes.
    snippet = r.stdout[r.stdout.index("agent:"):].split("\n\n")[0]
    assert yaml.safe_load(snippet) == {"agent": {"update_keys": [line]}}
    assert "offline machine" in r.stdout and "never on the collector" in r.stdout

    again = netroom("release", "keygen", "--out", str(out))
    assert again.returncode == 2
    assert again.stderr.count("\n") == 1
    assert again.stderr.startswith(f"netroom release: error: --out: {out / 'release.key'} "
                                   "exists")
    assert (out / "release.key").read_bytes() == pem

    zh = netroom("release", "keygen", "--out", str(tmp_path / "zh"))
    assert zh.returncode == 0 and "不要放在汇聚服务器" in zh.stdout


def test_publish_signs_what_the_agent_and_openssl_verify(tmp_path: Path,
                                                         key: tuple[Path, str]) -> None:
    dist = tmp_path / "dist"
    bundles = (linux_bundle(dist, V), windows_bundle(dist, V))
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"collector": {"speedtest": {"listen": "127.0.0.1:8091"}}}))
    r = publish(key[0], tmp_path / "releases", *bundles, extra=("--config", str(config)))
    assert r.returncode == 0, r.stderr
    snippet = r.stdout[r.stdout.index("agents:"):]
    assert yaml.safe_load(snippet) == {"agents": {"update": {
        "version": V, "url": "http://127.0.0.1:8091/releases"}}}

    rel = tmp_path / "releases" / V
    assert sorted(p.name for p in (tmp_path / "releases").iterdir()) == [V]  # no leftovers
    data, sig = (rel / release.MANIFEST).read_bytes(), (rel / release.SIGNATURE).read_bytes()
    manifest = signing.verify(data, sig, [signing.keygen()[1], key[1]])  # any key listed
    assert manifest.version == V and sorted(manifest.files) == ["linux", "windows-amd64"]
    for platform, bundle in zip(("linux", "windows-amd64"), bundles):
        f = manifest.files[platform]
        assert (f.name, f.size) == (bundle.name, bundle.stat().st_size)
        assert f.sha256 == hashlib.sha256(bundle.read_bytes()).hexdigest()
        assert (rel / f.name).read_bytes() == bundle.read_bytes()

    # OpenSSL 3 checks the same bytes with the same public key.
    pub = tmp_path / "pub.pem"
    der = ED25519_SPKI + base64.b64decode(key[1])
    pub.write_text("-----BEGIN PUBLIC KEY-----\n" + base64.b64encode(der).decode()
                   + "\n-----END PUBLIC KEY-----\n")
    (tmp_path / "sig.bin").write_bytes(base64.b64decode(sig))

    def openssl(manifest_file: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", str(pub),
                               "-rawin", "-in", str(manifest_file), "-sigfile",
                               str(tmp_path / "sig.bin")], capture_output=True, text=True,
                              timeout=30, check=False)

    ok = openssl(rel / release.MANIFEST)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "Signature Verified Successfully" in ok.stdout
    tampered = tmp_path / "tampered.json"
    tampered.write_bytes(data.replace(V.encode(), b"1.5.1"))
    assert openssl(tampered).returncode != 0


def test_list_checks_each_release_as_an_agent_would(tmp_path: Path,
                                                    key: tuple[Path, str]) -> None:
    releases, dist = tmp_path / "releases", tmp_path / "dist"
    versions = ["1.0.0", "1.1.0", "1.2.0", "1.3.0", "1.4.0", "1.10.0"]
    for v in versions:
        assert publish(key[0], releases, linux_bundle(dist / v, v)).returncode == 0
    name = "netroom-agent-{}-linux.tar.gz"
    # 1.1.0: one byte of the bundle changed.
    bundle = releases / "1.1.0" / name.format("1.1.0")
    data = bytearray(bundle.read_bytes())
    data[1000] ^= 0xFF
    bundle.write_bytes(bytes(data))
    # 1.2.0: the manifest edited (a bundle's size), the signature left.
    m = releases / "1.2.0" / release.MANIFEST
    m.write_bytes(m.read_bytes().replace(b'"size": ', b'"size": 1'))
    # 1.3.0: unsigned. 1.4.0: truncated. 1.10.0: the bundle a symlink out of the tree.
    (releases / "1.3.0" / release.SIGNATURE).unlink()
    bundle = releases / "1.4.0" / name.format("1.4.0")
    bundle.write_bytes(bundle.read_bytes()[:-10])
    bundle = releases / "1.10.0" / name.format("1.10.0")
    outside = shutil.copy(bundle, tmp_path / "outside.tar.gz")
    bundle.unlink()
    bundle.symlink_to(outside)

    r = netroom("release", "list", "--lang", "en", "--dir", str(releases),
                "--pub", str(key[0] / "release.pub"))
    assert r.returncode == 1, r.stderr
    rows = {line.split()[0]: line for line in r.stdout.splitlines()[1:]}
    assert list(rows) == versions  # 1.10.0 after 1.4.0
    assert rows["1.0.0"].endswith("  ok") and "linux" in rows["1.0.0"]
    assert rows["1.1.0"].endswith(f"{name.format('1.1.0')}: SHA-256 differs from the manifest")
    assert "signature not valid under any --pub key" in rows["1.2.0"]
    assert rows["1.3.0"].endswith("no signature (manifest.json.sig missing)")
    size = (releases / "1.4.0" / name.format("1.4.0")).stat().st_size
    assert rows["1.4.0"].endswith(f"is {size} bytes, the manifest says {size + 10}")
    assert rows["1.10.0"].endswith(f"{name.format('1.10.0')} missing or not served")

    # Only sound releases, under another key: the signature is what fails.
    for v in versions[1:]:
        shutil.rmtree(releases / v)
    other = tmp_path / "other.pub"
    other.write_text(signing.keygen()[1] + "\n")
    r = netroom("release", "list", "--lang", "en", "--dir", str(releases), "--pub", str(other))
    assert r.returncode == 1 and "not valid under any --pub key" in r.stdout
    r = netroom("release", "list", "--lang", "en", "--dir", str(releases))
    assert r.returncode == 0 and "signature not checked (no --pub)" in r.stdout
    r = netroom("release", "list", "--dir", str(releases), "--pub", str(key[0] / "release.pub"))
    assert r.returncode == 0 and "正常" in r.stdout
    r = netroom("release", "list", "--dir", str(releases), "--pub", str(key[0] / "release.key"))
    assert r.returncode == 2 and r.stderr.startswith("netroom release: error: --pub: ")


def test_publish_refuses_what_is_not_one_release(tmp_path: Path,
                                                 key: tuple[Path, str]) -> None:
    dist, releases = tmp_path / "dist", tmp_path / "releases"

    def refused(*bundles: Path, extra: tuple[str, ...] = ()) -> str:
        r = publish(key[0], releases, *bundles, extra=extra)
        assert r.returncode == 2, r.stdout
        assert r.stderr.count("\n") == 1, r.stderr
        return r.stderr.removeprefix("netroom release: error: ").strip()

    assert refused(linux_bundle(dist, "1.5.0"), windows_bundle(dist, "1.5.1")) == (
        "netroom-agent-1.5.1-windows-amd64.zip: version 1.5.1, but "
        "netroom-agent-1.5.0-linux.tar.gz is 1.5.0: one version a release")
    assert refused(linux_bundle(dist / "lie", "1.6.0", inside="1.5.0")) == (
        "netroom-agent-1.6.0-linux.tar.gz: its VERSION file says '1.5.0', its name 1.6.0")
    assert refused(windows_bundle(dist / "lie", "1.6.0", inside="1.6.1")).startswith(
        "netroom-agent-1.6.0-windows-amd64.zip: its VERSION file says '1.6.1'")
    assert refused(linux_bundle(dist / "a", "1.7.0"), linux_bundle(dist / "b", "1.7.0")) == (
        "two linux bundles: a release holds one bundle per platform")
    odd = dist / "agent-1.7.0.tar.gz"
    odd.write_bytes(b"x")
    assert refused(odd).startswith("agent-1.7.0.tar.gz: not a bundle's name")
    fake = dist / "netroom-agent-1.7.0-linux.tar.gz"
    fake.write_bytes(b"not a tarball")
    assert refused(fake).startswith("netroom-agent-1.7.0-linux.tar.gz: not a readable linux "
                                    "bundle")
    bad_key = tmp_path / "bad.key"
    bad_key.write_text("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    r = netroom("release", "publish", "--key", str(bad_key), "--dir", str(releases),
                str(linux_bundle(dist, "1.5.0")))
    assert r.returncode == 2 and r.stderr.startswith(f"netroom release: error: --key: {bad_key}")
    assert not releases.exists() or not list(releases.iterdir())  # nothing half-made

    first = linux_bundle(dist / "first", V)
    assert publish(key[0], releases, first).returncode == 0
    manifest = (releases / V / release.MANIFEST).read_bytes()
    again = linux_bundle(dist / "again", V)  # another build of the same version
    assert refused(again) == (f"--dir: {releases / V} exists: version {V} is published "
                              "(--force replaces it)")
    assert (releases / V / release.MANIFEST).read_bytes() == manifest
    r = publish(key[0], releases, again, extra=("--force",))
    assert r.returncode == 0, r.stderr
    replaced = signing.verify((releases / V / release.MANIFEST).read_bytes(),
                              (releases / V / release.SIGNATURE).read_bytes(), [key[1]])
    assert replaced.files["linux"].sha256 == hashlib.sha256(again.read_bytes()).hexdigest()
    assert sorted(p.name for p in releases.iterdir()) == [V]


def test_the_server_sends_the_published_bytes(published: Path, server: SpeedServer) -> None:
    rel = published / V
    manifest = signing.verify((rel / release.MANIFEST).read_bytes(),
                              (rel / release.SIGNATURE).read_bytes(),
                              [(published.parent / "key" / "release.pub").read_text()])
    base = f"{server.url}/releases/{V}/"
    with OPENER.open(base + release.MANIFEST, timeout=10) as resp:
        assert resp.headers["Content-Type"] == "application/json"
        assert resp.read() == (rel / release.MANIFEST).read_bytes()
    with OPENER.open(base + release.SIGNATURE, timeout=10) as resp:
        assert resp.read() == (rel / release.SIGNATURE).read_bytes()
    for f in manifest.files.values():
        with OPENER.open(base + f.name, timeout=10) as resp:
            assert resp.headers["Content-Type"] == "application/octet-stream"
            assert int(resp.headers["Content-Length"]) == f.size
            body = resp.read()
        assert hashlib.sha256(body).hexdigest() == f.sha256
    status, headers, body = get(server, f"/releases/{V}/{manifest.files['linux'].name}", "HEAD")
    assert (status, int(headers["content-length"]), body) == (
        200, manifest.files["linux"].size, b"")


def test_a_large_bundle_is_streamed_not_loaded(tmp_path: Path) -> None:
    """32 MiB through the server while Python's allocations are traced: the
    peak stays far under the file's size (the server reads 64 KiB blocks)."""
    rel = tmp_path / "releases" / V
    rel.mkdir(parents=True)
    big = rel / f"netroom-agent-{V}-linux.tar.gz"
    with open(big, "wb") as fh:
        for _ in range(32):
            fh.write(os.urandom(1 << 20))
    with served(tmp_path / "releases") as srv:
        sha = hashlib.sha256()
        tracemalloc.start()
        try:
            with OPENER.open(f"{srv.url}/releases/{V}/{big.name}", timeout=30) as resp:
                while chunk := resp.read(1 << 16):
                    sha.update(chunk)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert sha.hexdigest() == hashlib.sha256(big.read_bytes()).hexdigest()
        assert peak < 4 << 20, peak


def test_downloads_share_the_speed_tests_limits(tmp_path: Path) -> None:
    """With one worker, a client that stalls a bundle's download holds it:
    the next request, speed test or release, is answered busy (503)."""
    rel = tmp_path / "releases" / V
    rel.mkdir(parents=True)
    big = rel / f"netroom-agent-{V}-linux.tar.gz"
    big.write_bytes(os.urandom(32 << 20))  # more than loopback's socket buffers
    srv = SpeedServer(SpeedServerConfig("127.0.0.1:0", max_clients=1, max_connections=4,
                                        releases=str(tmp_path / "releases")))
    srv.start()
    try:
        host, port = srv.url.removeprefix("http://").rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=10) as stalled:
            stalled.sendall(f"GET /releases/{V}/{big.name} HTTP/1.1\r\nHost: x\r\n\r\n"
                            .encode())
            assert stalled.recv(12) == b"HTTP/1.1 200"  # the worker is sending it
            assert get(srv, f"/releases/{V}/{release.MANIFEST}")[0] == 503
            assert get(srv, "/latency")[0] == 503
            assert srv.stats["busy"] == 2
        assert wait_until(lambda: get(srv, "/latency")[0] == 200, 10)
    finally:
        srv.stop()


def test_nothing_else_under_releases_is_served(tmp_path: Path, published: Path,
                                               server: SpeedServer) -> None:
    secret = b"the collector's secrets"
    (tmp_path / "secret").write_bytes(secret)
    (published / "secret").write_bytes(secret)  # in the tree but not a release's file
    rel = published / V
    (rel / ".hidden").write_bytes(secret)
    (rel / "sub").mkdir()
    (rel / "sub" / "file").write_bytes(secret)
    (rel / "escape").symlink_to(tmp_path / "secret")
    (rel / "parent").symlink_to(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "file").write_bytes(secret)
    (published / "9.9").symlink_to(outside)  # a version leading out of the tree
    os.mkfifo(rel / "fifo")
    bundle = f"netroom-agent-{V}-linux.tar.gz"
    (rel / "alias").symlink_to(bundle)  # inside the tree: served

    for path in ["/releases/../secret", "/releases/../config.yaml",
                 f"/releases/{V}/../../secret", f"/releases/{V}/../secret",
                 "/releases/%2e%2e/secret", f"/releases/{V}/%2e%2e%2fsecret",
                 f"/releases/{V}/%2E%2E/%2E%2E/secret", "/releases/%2e%2e%2fsecret/x",
                 f"/releases/{V}/..%2f..%2fsecret", "/releases//etc/passwd",
                 f"/releases/{V}//etc/passwd", "/releases/%2fetc/passwd",
                 f"/releases/{V}/.hidden", f"/releases/{V}/sub", f"/releases/{V}/sub/file",
                 f"/releases/{V}/escape", f"/releases/{V}/parent", "/releases/9.9/file",
                 f"/releases/{V}/fifo", f"/releases/{V}/manifest.json%00",
                 f"/releases/{V}/", f"/releases/{V}", "/releases/", "/releases",
                 "/releases/secret", f"/releases/{V}/nothing.zip"]:
        status, _, body = get(server, path)
        assert status == 404, path
        assert secret not in body
    assert get(server, f"/releases/{V}/escape", "HEAD")[0] == 404
    status, _, body = get(server, f"/releases/{V}/alias")
    assert status == 200 and body == (rel / bundle).read_bytes()
    assert get(server, "/latency")[2] == b"ok"  # and the speed tests go on

    # Without `releases`, nothing is served under /releases.
    off = SpeedServer(SpeedServerConfig("127.0.0.1:0"))
    off.start()
    try:
        assert get(off, f"/releases/{V}/{release.MANIFEST}")[0] == 404
    finally:
        off.stop()


def test_releases_is_checked_at_start(tmp_path: Path) -> None:
    missing, a_file = tmp_path / "missing", tmp_path / "file"
    a_file.write_text("x")
    for path, why in ((missing, "no such directory"), (a_file, "not a directory")):
        with pytest.raises(ConfigError) as err:
            read_config({"releases": str(path)})
        assert str(err.value) == f"collector.speedtest.releases: {why}: {str(path)!r}"
        config = tmp_path / "config.yaml"
        config.write_text(yaml.safe_dump({"collector": {"speedtest": {
            "listen": "127.0.0.1:0", "releases": str(path)}}}))
        r = netroom("speedserver", "--config", str(config))
        assert r.returncode == 2
        assert r.stderr == (f"netroom speedserver: error: collector.speedtest.releases: {why}: "
                            f"{str(path)!r}\n")
    r = netroom("speedserver", "--listen", "127.0.0.1:0", "--releases", str(missing))
    assert (r.returncode, r.stderr) == (2, "netroom speedserver: error: --releases: no such "
                                           f"directory: {str(missing)!r}\n")
    assert read_config({"releases": str(tmp_path)}).releases == str(tmp_path)
    assert read_config({}).releases == ""
    # The shipped config leaves it off.
    shipped = yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))
    assert read_config(shipped["collector"]["speedtest"]).releases == ""


def test_the_speedserver_command_serves_releases(published: Path) -> None:
    p = subprocess.Popen([sys.executable, "-m", "collector.cli.main", "speedserver",
                          "--listen", "127.0.0.1:0", "--releases", str(published)],
                         cwd=REPO, stderr=subprocess.PIPE, text=True)
    try:
        assert p.stderr is not None
        deadline = time.monotonic() + 30
        line = ""
        while "serving on" not in line and time.monotonic() < deadline:
            if select.select([p.stderr], [], [], 1)[0]:
                line = p.stderr.readline()
        assert "serving on" in line and f"releases from {published}" in line, line
        url = line.split("serving on ", 1)[1].split()[0]
        with OPENER.open(f"{url}/releases/{V}/{release.MANIFEST}", timeout=10) as resp:
            assert resp.read() == (published / V / release.MANIFEST).read_bytes()
    finally:
        p.terminate()
        assert p.wait(20) == 0
