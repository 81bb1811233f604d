"""``netroom release``: the agents' self-update releases (docs/updates.md).

- ``keygen``: a release key, ``release.key`` (private, 0600) and
  ``release.pub`` (the line every agent's ``agent.update_keys`` lists);
- ``publish``: agent bundles (deploy/*/build-bundle.sh) -> ``<dir>/<version>/``
  with a manifest (netroom.release) and its signature (netroom.signing);
- ``list``: the published releases, each checked as an agent would.

A release is built in a hidden directory beside the others and renamed into
place complete, its signature written last: the speed-test server, which
serves only version-named directories, never serves half of one.
Output for people is Chinese by default, English with ``--lang en``; errors
are one English line (exit 2), like every other command's.
"""
from __future__ import annotations

import argparse
import hashlib
import ipaddress
import os
import re
import shutil
import stat
import tarfile
import tempfile
import time
import zipfile
import zlib
from pathlib import Path
from typing import Callable, NamedTuple, Sequence

from ecdsa import SigningKey

from collector.report.format import grid
from collector.report.i18n import LANGS
from collector.speedtest.server import parse_listen, release_path
from netroom import release, signing
from netroom.durable import fsync_dir
from netroom.settings import ConfigError, Section, load_yaml

Sub = argparse._SubParsersAction  # argparse's own type for add_parser
KEY, PUB = "release.key", "release.pub"
# Bundle names as deploy/linux/build-bundle.sh and deploy/windows/build-bundle.sh
# write them; the windows one names its architecture.
BUNDLES = {"linux": re.compile(r"netroom-agent-(.+)-linux\.tar\.gz"),
           "windows-amd64": re.compile(r"netroom-agent-(.+)-windows-amd64\.zip"),
           "windows-win32": re.compile(r"netroom-agent-(.+)-windows-win32\.zip")}
MAX_VERSION_FILE = 256  # bytes of a bundle's VERSION file we read

TEXTS: dict[str, tuple[str, str]] = {
    "keygen.done": ("已生成发布密钥：\n  私钥 {key}（仅本人可读）\n  公钥 {pub}\n\n"
                    "公钥：\n  {line}\n",
                    "Release key made:\n  private {key} (readable by you only)\n"
                    "  public  {pub}\n\nPublic key:\n  {line}\n"),
    "keygen.agents": ("写入每台电脑的配置文件（config.yaml），电脑只安装用此密钥签名的版本：",
                      "Put this in every PC's config file (config.yaml); a PC installs only "
                      "releases signed with this key:"),
    "keygen.keep": ("私钥请保存在不联网的电脑（或加密U盘）上，不要放在汇聚服务器："
                    "持有私钥者可让所有电脑运行其程序。在那台电脑上执行 netroom release "
                    "publish，再把版本目录复制到汇聚服务器。换密钥时，先把新公钥加入各电脑的 "
                    "update_keys，再用新私钥发布。",
                    "Keep the private key on an offline machine (or an encrypted USB stick), "
                    "never on the collector: whoever holds it can make every PC run their code. "
                    "Run `netroom release publish` there and copy the version's directory to "
                    "the collector. To change keys, add the new public key to every PC's "
                    "update_keys first, then publish with the new private key."),
    "publish.done": ("已发布 {version}：{path}", "Published {version}: {path}"),
    "publish.copy": ("该目录不是汇聚服务器的 collector.speedtest.releases：把 {version} "
                     "目录先复制为 .{version}（不会被下载），再改名为 {version}。",
                     "This is not the collector's collector.speedtest.releases: copy the "
                     "{version} directory there as .{version} (never served), then rename it "
                     "to {version}."),
    "publish.settings": ("让各电脑更新到此版本：在汇聚服务器配置的站点树（sites）中，"
                         "于要更新的单位或站点加入：",
                         "To update the PCs to it, add this to the units or sites to update "
                         "in the sites tree of the collector's config:"),
    "collector": ("汇聚服务器地址", "collector-address"),
    "list.none": ("{dir}：没有已发布的版本", "{dir}: no release published"),
    "version": ("版本", "version"),
    "platforms": ("平台", "platforms"),
    "sizes": ("大小", "sizes"),
    "created": ("发布时间", "created"),
    "status": ("状态", "status"),
    "ok": ("正常", "ok"),
    "unchecked": ("文件正常；签名未验证（未给 --pub）",
                  "files ok; signature not checked (no --pub)"),
    "unsigned": ("缺少签名文件 {name}", "no signature ({name} missing)"),
    "bad_signature": ("签名无效：{detail}", "bad signature: {detail}"),
    "wrong_key": ("签名与所给公钥（--pub）均不符", "signature not valid under any --pub key"),
    "bad_manifest": ("清单无效：{detail}", "bad manifest: {detail}"),
    "other_version": ("清单中的版本为 {version}", "the manifest says version {version}"),
    "missing": ("{name} 缺失或不会被提供", "{name} missing or not served"),
    "size": ("{name} 大小 {actual}，清单为 {size}", "{name} is {actual} bytes, the manifest "
             "says {size}"),
    "sha256": ("{name} 的 SHA-256 与清单不符", "{name}: SHA-256 differs from the manifest"),
}


def say(lang: str, text: str, /, **fields: object) -> str:
    """TEXTS[text] in ``lang``, its fields filled."""
    return TEXTS[text][LANGS.index(lang)].format(**fields)


def add_release(sub: Sub[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("release", help="agent self-update: release key, publish, list",
                       description="Sign agent bundles as releases the PCs update "
                       "themselves from (docs/updates.md).")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    lang = argparse.ArgumentParser(add_help=False)
    lang.add_argument("--lang", choices=LANGS, default="zh", help="zh (default) or en")

    k = actions.add_parser("keygen", parents=[lang], help="make a release key",
                           description=f"Write DIR/{KEY} (private, mode 0600) and DIR/{PUB}; "
                           "never overwrites a key.")
    k.add_argument("--out", required=True, metavar="DIR", help="where to write the key files")
    k.set_defaults(run=run_keygen)

    pub = actions.add_parser("publish", parents=[lang], help="sign bundles as a release",
                             description="Copy agent bundles (one version, at most one per "
                             "platform) to DIR/<version>/ with their signed manifest.")
    pub.add_argument("--key", required=True, help=f"the private key ({KEY})")
    pub.add_argument("--dir", required=True, help="the releases directory")
    pub.add_argument("--force", action="store_true", help="replace a published version")
    pub.add_argument("--config", "-c", help="config.yaml: the URL from collector.speedtest")
    pub.add_argument("bundles", nargs="+", metavar="BUNDLE",
                     help="netroom-agent-<version>-linux.tar.gz, "
                     "netroom-agent-<version>-windows-<arch>.zip")
    pub.set_defaults(run=run_publish)

    ls = actions.add_parser("list", parents=[lang], help="list and check published releases",
                            description="One row per release; exit 1 if one is broken.")
    ls.add_argument("--dir", required=True, help="the releases directory")
    ls.add_argument("--pub", action="append", default=[], metavar="FILE",
                    help=f"a public key file ({PUB}) to check signatures with (repeatable)")
    ls.set_defaults(run=run_list)


# --- keygen -------------------------------------------------------------------

def run_keygen(args: argparse.Namespace) -> int:
    out = Path(args.out)
    key, pub = out / KEY, out / PUB
    for path in (key, pub):
        if path.exists() or path.is_symlink():
            raise ConfigError(f"--out: {path} exists: refusing to overwrite a release key")
    out.mkdir(mode=0o700, parents=True, exist_ok=True)  # mode: a new directory only
    pem, line = signing.keygen()
    _create(key, pem, 0o600)
    _create(pub, line.encode() + b"\n", 0o644)
    lang = args.lang
    print(say(lang, "keygen.done", key=key, pub=pub, line=line))
    print(say(lang, "keygen.agents"))
    print(f"\nagent:\n  update_keys:\n    - '{line}'\n")
    print(say(lang, "keygen.keep"))
    return 0


def _create(path: Path, data: bytes, mode: int) -> None:
    """A new file (never an existing one, nor through a symlink) with ``mode``."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with open(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


# --- publish ------------------------------------------------------------------

class Bundle(NamedTuple):
    path: Path
    platform: str
    version: str


def run_publish(args: argparse.Namespace) -> int:
    sk = _private_key(args.key)
    bundles = [_bundle(Path(b)) for b in args.bundles]
    version = bundles[0].version
    for b in bundles:
        if b.version != version:
            raise ConfigError(f"{b.path.name}: version {b.version}, but "
                              f"{bundles[0].path.name} is {version}: one version a release")
    platforms = [b.platform for b in bundles]
    if len(set(platforms)) < len(platforms):
        dup = next(p for p in platforms if platforms.count(p) > 1)
        raise ConfigError(f"two {dup} bundles: a release holds one bundle per platform")
    root = Path(args.dir)
    if not root.is_dir():
        raise ConfigError(f"--dir: no such directory: {root}")
    final = root / version
    if (final.exists() or final.is_symlink()) and not args.force:
        raise ConfigError(f"--dir: {final} exists: version {version} is published "
                          "(--force replaces it)")
    manifest = _build(root, final, version, bundles, sk)
    _print_published(args, final, manifest)
    return 0


def _private_key(path: str) -> SigningKey:
    try:
        with open(path, "rb") as fh:
            pem = fh.read(64 * 1024)
    except OSError as exc:
        raise ConfigError(f"--key: cannot read {path}: {exc.strerror}") from None
    try:
        return signing.load_private(pem)
    except release.ReleaseError as exc:
        raise ConfigError(f"--key: {path}: not a release key ({exc})") from None


def _bundle(path: Path) -> Bundle:
    """A bundle's platform and version, from its name and its VERSION file."""
    found = [(p, m.group(1)) for p, rx in BUNDLES.items() if (m := rx.fullmatch(path.name))]
    if not found:
        raise ConfigError(f"{path.name}: not a bundle's name: expected "
                          "netroom-agent-<version>-linux.tar.gz or "
                          "netroom-agent-<version>-windows-<arch>.zip")
    platform, version = found[0]
    if not release.VERSION_RE.fullmatch(version):
        raise ConfigError(f"{path.name}: {version!r} is not a release version")
    if not path.is_file():
        raise ConfigError(f"{path}: no such file")
    size = path.stat().st_size
    if not 0 < size <= release.MAX_BUNDLE_BYTES:
        raise ConfigError(f"{path}: {size} bytes: must be 1-{release.MAX_BUNDLE_BYTES}")
    inside = _version_file(path, platform)
    if inside != version:
        raise ConfigError(f"{path.name}: its VERSION file says {inside!r}, its name {version}")
    return Bundle(path, platform, version)


def _version_file(path: Path, platform: str) -> str:
    """The text of ``<top>/VERSION`` inside the bundle (build-bundle.sh writes it)."""
    try:
        if platform == "linux":
            with tarfile.open(path, "r:gz") as tar:
                for member in tar:
                    if member.isfile() and _is_version(member.name):
                        fh = tar.extractfile(member)
                        return fh.read(MAX_VERSION_FILE).decode().strip() if fh else ""
        else:
            with zipfile.ZipFile(path) as z:
                for info in z.infolist():
                    if not info.is_dir() and _is_version(info.filename):
                        with z.open(info) as fh:
                            return fh.read(MAX_VERSION_FILE).decode().strip()
    except (tarfile.TarError, zipfile.BadZipFile, zlib.error, EOFError,
            UnicodeDecodeError) as exc:
        raise ConfigError(f"{path.name}: not a readable {platform} bundle: {exc}") from None
    raise ConfigError(f"{path.name}: no <dir>/VERSION inside: not built by build-bundle.sh")


def _is_version(name: str) -> bool:
    parts = [p for p in name.split("/") if p not in ("", ".")]
    return len(parts) == 2 and parts[1] == "VERSION"


def _build(root: Path, final: Path, version: str, bundles: Sequence[Bundle],
           sk: SigningKey) -> release.Manifest:
    """Write the release in a hidden directory, then rename it to ``final``."""
    work = Path(tempfile.mkdtemp(prefix=f".{version}.", dir=root))
    try:
        files = {b.platform: _copy(b.path, work / b.path.name) for b in bundles}
        manifest = release.Manifest(version, round(time.time(), 3), files)
        data = release.encode(manifest)
        try:
            release.decode(data)  # what an agent will check, now rather than on 1,000 PCs
        except release.ReleaseError as exc:
            raise ConfigError(str(exc)) from None
        sig = signing.sign(data, sk)
        signing.verify(data, sig, [signing.public_line(sk)])
        _write(work / release.MANIFEST, data)
        _write(work / release.SIGNATURE, sig)  # last: a manifest without it is never trusted
        work.chmod(0o755)  # mkdtemp's 0700; the collector's user serves it
        fsync_dir(work)
        if final.exists() or final.is_symlink():  # --force
            old = Path(tempfile.mkdtemp(prefix=f".{version}.old.", dir=root))
            os.replace(final, old / version)
            os.replace(work, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(work, final)
        fsync_dir(root)
        return manifest
    finally:
        shutil.rmtree(work, ignore_errors=True)  # gone already when all went well


def _copy(src: Path, dst: Path) -> release.File:
    """Copy ``src`` to ``dst``, hashing what was copied (one pass)."""
    sha = hashlib.sha256()
    size = 0
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        while chunk := fin.read(1 << 20):
            sha.update(chunk)
            fout.write(chunk)
            size += len(chunk)
        fout.flush()
        os.fsync(fout.fileno())
    dst.chmod(0o644)
    return release.File(dst.name, sha.hexdigest(), size)


def _write(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    path.chmod(0o644)


def _print_published(args: argparse.Namespace, final: Path,
                     manifest: release.Manifest) -> None:
    lang = args.lang
    print(say(lang, "publish.done", version=manifest.version, path=final))
    print("\n".join("  " + line for line in grid(
        [[p, f.name, _size(f.size), f"sha256 {f.sha256}"]
         for p, f in sorted(manifest.files.items())])))
    url, served_from = _url(args.config, lang)
    if served_from and Path(served_from).resolve() != final.parent.resolve():
        print("\n" + say(lang, "publish.copy", version=manifest.version))
    print("\n" + say(lang, "publish.settings"))
    print(f"\nagents:\n  update:\n    version: '{manifest.version}'\n    url: {url}")


def _url(config: str | None, lang: str) -> tuple[str, str]:
    """(the releases' URL, collector.speedtest.releases) from config.yaml's
    collector.speedtest; the port 8090 and a placeholder host without it."""
    host, port, served_from = f"<{say(lang, 'collector')}>", 8090, ""
    if config:
        # Only these two keys: this may run on the offline machine of the key,
        # where the collector's other paths do not exist.
        s = Section(load_yaml(config).get("collector"), "collector").sub("speedtest")
        served_from = s.text("releases", "")
        addr = parse_listen(s.text("listen", ""))
        if addr is not None:
            port = addr[1]
            if not _unspecified(addr[0]):  # listening on every address names none
                host = f"[{addr[0]}]" if ":" in addr[0] else addr[0]
    return f"http://{host}:{port}/releases", served_from


def _unspecified(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:  # a name
        return False


# --- list ---------------------------------------------------------------------

def run_list(args: argparse.Namespace) -> int:
    root = Path(args.dir)
    if not root.is_dir():
        raise ConfigError(f"--dir: no such directory: {root}")
    keys = [k for path in args.pub for k in _public_keys(path)]
    lang = args.lang
    versions = sorted((d.name for d in root.iterdir()
                       if d.is_dir() and release.VERSION_RE.fullmatch(d.name)), key=_natural)
    if not versions:
        print(say(lang, "list.none", dir=root))
        return 0
    real = os.path.realpath(root)
    rows = [[say(lang, k) for k in ("version", "platforms", "sizes", "created", "status")]]
    broken = 0
    for version in versions:
        row, ok = _check(real, version, keys, lambda key, **f: say(lang, key, **f))
        rows.append(row)
        broken += not ok
    print("\n".join(grid(rows)))
    return 1 if broken else 0


def _public_keys(path: str) -> list[str]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--pub: cannot read {path}: {exc}") from None
    lines = [t.strip() for t in text.splitlines() if t.strip() and not t.startswith("#")]
    for line in lines:
        if why := release.public_key_error(line):
            raise ConfigError(f"--pub: {path}: {why}")
    if not lines:
        raise ConfigError(f"--pub: {path}: no key in it")
    return lines


def _check(root: str, version: str, keys: Sequence[str],
           t: Callable[..., str]) -> tuple[list[str], bool]:
    """One release's row, as an agent would see it; and whether it is sound."""
    row = [version, "", "", "", ""]
    data = _read_small(release_path(root, version, release.MANIFEST),
                       release.MAX_MANIFEST_BYTES + 1)
    sig = _read_small(release_path(root, version, release.SIGNATURE), 4096)
    if data is None:
        row[4] = t("missing", name=release.MANIFEST)
        return row, False
    try:
        manifest = release.decode(data)
    except release.ReleaseError as exc:
        row[4] = t("bad_manifest", detail=exc)
        return row, False
    row[1] = ", ".join(sorted(manifest.files))
    row[2] = ", ".join(_size(f.size) for _, f in sorted(manifest.files.items()))
    row[3] = time.strftime("%Y-%m-%d %H:%M", time.localtime(manifest.created))
    problems = [] if manifest.version == version else [t("other_version",
                                                          version=manifest.version)]
    if sig is None:
        problems.append(t("unsigned", name=release.SIGNATURE))
    elif keys:
        try:
            release.decode_signature(sig)
        except release.ReleaseError as exc:
            problems.append(t("bad_signature", detail=exc))
        else:
            try:
                signing.verify(data, sig, keys)
            except release.ReleaseError:  # its words are the agent's (agent.update_keys)
                problems.append(t("wrong_key"))
    for _, f in sorted(manifest.files.items()):
        problems += _file_problems(release_path(root, version, f.name), f, t)
    if problems:
        row[4] = "; ".join(problems)
    else:
        row[4] = t("ok" if keys else "unchecked")
    return row, not problems


def _file_problems(path: str | None, f: release.File, t: Callable[..., str]) -> list[str]:
    """What is wrong with a bundle the server serves from ``path`` (None: never)."""
    try:
        st = os.stat(path) if path is not None else None
    except OSError:
        st = None
    if path is None or st is None or not stat.S_ISREG(st.st_mode):
        return [t("missing", name=f.name)]
    if st.st_size != f.size:
        return [t("size", name=f.name, actual=st.st_size, size=f.size)]
    sha = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            sha.update(chunk)
    return [] if sha.hexdigest() == f.sha256 else [t("sha256", name=f.name)]


def _read_small(path: str | None, limit: int) -> bytes | None:
    """A release's own file (at most ``limit`` bytes); None if not served."""
    if path is None or not os.path.isfile(path):
        return None
    with open(path, "rb") as fh:
        return fh.read(limit)


def _natural(version: str) -> list[tuple[int, str]]:
    """1.10.0 after 1.9.0."""
    return [(int(p), "") if p.isdigit() else (-1, p) for p in re.split(r"(\d+)", version) if p]


def _size(n: int) -> str:
    if n < 2**10:
        return f"{n} B"
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 2**10:.1f} KiB"
