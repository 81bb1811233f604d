"""netroom-agent doctor: checks this PC's agent set-up, one line per finding.

Config (exit 2 when it cannot be read), file permissions, the broker (login,
TLS, a test publish to this PC's own topic and the subscription to its
site's settings, each broker answer's reason code read), the clock
against ``agent.clock.url``, and on Linux whether the PC can update itself
to the version the centre names (its keys, launcher and prefix, and that
release's signature, fetched as the agent would). A problem's line carries its fix. Exit 0: no
problem; 1: some; 2: the config itself.

The test publish is this PC's inventory, retained, exactly what the agent
sends once a day, so repeating it changes nothing. The broker makes every
session's id its user (deploy/mosquitto): while the agent runs, this check's
login takes the agent's connection over for a moment; the agent reconnects
by itself within seconds.
"""
from __future__ import annotations

import argparse
import os
import stat
import sys
import time
from typing import Any

import netroom
from agent.collectors import inventory, status
from agent.config import AgentConfig, ConfigError, read, read_file
from agent.outbox import Outbox
from agent.settings import Central
from agent.transport import outbox_path
from agent.update import fetch, files
from agent.update.job import Updater
from netroom import central, protocol, release, signing
from netroom.doctor import LANGS, Report, probe, report_probe

CLOCK_MAX_S = 60.0  # a PC clock further off than this is a problem

TEXTS: dict[str, tuple[str, str]] = {
    "config.ok": ("配置 {path}：有效（站点 {site}，主机 {host}，{network}，{role}）",
                  "config {path}: valid (site {site}, host {host}, {network}, {role})"),
    "config.bad": ("配置 {path}：{detail}", "config {path}: {detail}"),
    "config.bad.fix": ("按提示改正该项后再运行", "correct that key and run this again"),
    "files.secret": ("{path} 含密码（{key}），但所有用户可读（权限 {mode}）",
                     "{path} holds a password ({key}) but every user may read it (mode {mode})"),
    "files.secret.fix": ("chmod 600 {path}", "chmod 600 {path}"),
    "files.state": ("状态目录 {path}：不可写", "state directory {path}: not writable"),
    "files.state.fix": ("以运行代理的用户身份可写（chown/chmod），或改 agent.state_dir",
                        "make it writable for the agent's user (chown/chmod), or change "
                        "agent.state_dir"),
    "files.ok": ("文件权限：状态目录 {path} 可写，密码文件不对他人开放",
                 "files: state directory {path} writable, no password readable by others"),
    "outbox.pending": ("发件箱中有 {n} 条消息待代理服务器确认",
                       "the outbox holds {n} message(s) the broker has not acknowledged yet"),
    "acl.fix": ("每台电脑只能以自己的 <站点>/<主机> 发布：agent.site 与 agent.host "
                "须与代理服务器用户 {who} 一致（netroom_credentials.py sync 后重启 mosquitto）",
                "each PC may publish only as its own <site>/<host>: agent.site and agent.host "
                "must match the broker user {who} (sync the PC list with "
                "netroom_credentials.py, then restart mosquitto)"),
    "clock.ok": ("时钟：与 {url} 相差 {offset:+.1f} 秒（±{error:.1f}）",
                 "clock: {offset:+.1f} s from {url} (+-{error:.1f})"),
    "clock.off": ("时钟：与 {url} 相差 {offset:+.1f} 秒（±{error:.1f}），超过 {limit:g} 秒",
                  "clock: {offset:+.1f} s from {url} (+-{error:.1f}), more than {limit:g} s"),
    "clock.off.fix": ("校准本机时钟（NTP 或 w32time，以汇聚服务器为时间源）",
                      "set this PC's clock right (NTP or w32time, with the collector host as "
                      "its source)"),
    "clock.failed": ("时钟：无法与 {url} 比对（{detail}）",
                     "clock: cannot compare with {url} ({detail})"),
    "clock.failed.fix": ("检查 agent.clock.url 是否为汇聚服务器的测速服务地址（如 http://汇聚服务器:8090/）",
                         "agent.clock.url must be the collector's speed-test server "
                         "(e.g. http://collector:8090/)"),
    "update.none": ("自动升级：中心未指定版本（本机信任 {n} 个发布密钥）",
                    "self-update: the centre names no version ({n} release key(s) trusted here)"),
    "update.current": ("自动升级：本机已是中心指定的版本 {version}",
                       "self-update: this PC runs {version}, the version the centre names"),
    "update.ok": ("自动升级：{url} 上的版本 {version} 签名有效，本机将自动升级",
                  "self-update: release {version} at {url} is signed by a key this PC trusts; "
                  "it will update itself"),
    "update.cannot": ("自动升级：中心指定版本 {version}，但本机无法自动升级：{why}",
                      "self-update: the centre names {version}, but this PC cannot update "
                      "itself: {why}"),
    "update.cannot.fix": ("用安装包的 install.sh 重新安装（安装包用 --update-key 打包，"
                          "或 install.sh --update-keys release.pub）；见 docs/updates.md",
                          "reinstall with the bundle's install.sh (a bundle built with "
                          "--update-key, or install.sh --update-keys release.pub); "
                          "docs/updates.md"),
    "update.bad": ("自动升级：版本 {version} 无法使用：{why}",
                   "self-update: release {version} cannot be used: {why}"),
    "update.bad.fix": ("在汇聚服务器上执行 netroom release list，并核对 agents.update.url",
                       "run netroom release list on the collector and check agents.update.url"),
    "clock.unchecked": ("时钟：未检查（未设置 agent.clock.url，中心下发的设置中也没有）",
                        "clock: not checked (agent.clock.url is not set, nor in the centre's "
                        "settings)"),
}


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="netroom-agent doctor", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", "-c", required=True, help="path to config.yaml")
    p.add_argument("--lang", choices=LANGS, default="zh", help="zh (default) or en")
    p.add_argument("--timeout", type=float, default=10.0,
                   help="seconds to wait for each answer (default 10)")
    return p.parse_args(argv)


def check_files(r: Report, path: str, data: Any, cfg: AgentConfig) -> None:
    bad = 0
    mqtt = data.get("mqtt") if isinstance(data.get("mqtt"), dict) else {}
    secrets = [(path, "mqtt.password")] if mqtt.get("password") else []
    if cfg.mqtt.tls is not None and cfg.mqtt.tls.key:
        secrets.append((cfg.mqtt.tls.key, "mqtt.tls.key"))
    if os.name == "posix":
        for file, key in secrets:
            mode = stat.S_IMODE(os.stat(file).st_mode)
            if mode & stat.S_IROTH:
                bad += 1
                r.problem("files.secret", path=file, key=key, mode=f"{mode:04o}")
    if not os.access(_existing(cfg.state_dir), os.W_OK):
        bad += 1
        r.problem("files.state", path=cfg.state_dir)
    if not bad:
        r.ok("files.ok", path=cfg.state_dir)
    box = outbox_path(cfg.state_dir)
    pending = len(Outbox(box)) if os.path.isdir(box) else 0
    if pending:
        r.note("outbox.pending", n=pending)


def _existing(path: str) -> str:
    """``path`` or its nearest existing parent (the agent makes the rest)."""
    path = os.path.abspath(path)
    while not os.path.exists(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    return path


def inventory_message(cfg: AgentConfig) -> tuple[str, bytes, bool]:
    """This PC's inventory, as the agent sends it."""
    body = inventory.Inventory(cfg.state_dir, host_id=cfg.host_id).collect()
    payload = protocol.envelope(cfg.site, cfg.host, cfg.network, cfg.role, time.time())
    payload.update(protocol.fit("inventory", body))
    topic = protocol.topic(cfg.site, cfg.host, "inventory")
    return topic, protocol.encode(payload), protocol.KINDS["inventory"].retained


def check_broker(r: Report, cfg: AgentConfig, timeout_s: float) -> None:
    topic, payload, retain = inventory_message(cfg)
    settings = central.topic(cfg.site)
    who = repr(cfg.mqtt.username) if cfg.mqtt.username else "anonymous"
    p = probe(cfg.mqtt, cfg.mqtt.client_id, timeout_s, (topic, payload, retain), settings)
    report_probe(r, p, cfg.mqtt, who, timeout_s, topic, settings)


def check_clock(r: Report, cfg: AgentConfig, timeout_s: float) -> None:
    url = cfg.clock.url
    if not url:
        r.note("clock.unchecked")
        return
    try:
        off = status.estimate(status.sample(url, time.monotonic() + timeout_s))
    except status.ClockError as exc:
        r.problem("clock.failed", url=url, detail=str(exc))
        return
    fields = {"url": url, "offset": off.offset_s, "error": off.error_s, "limit": CLOCK_MAX_S}
    if abs(off.offset_s) - off.error_s > CLOCK_MAX_S:
        r.problem("clock.off", **fields)
    else:
        r.ok("clock.ok", **fields)


def check_update(r: Report, cfg: AgentConfig, timeout_s: float) -> None:
    """Can this PC update itself to the version the centre names, and is
    that release there and signed by a key it trusts (as the agent checks)."""
    version = cfg.update.version
    if not version:
        r.note("update.none", n=len(cfg.update_keys))
        return
    if version == netroom.__version__:
        r.ok("update.current", version=version)
        return
    # Run from the install's venv (<prefix>/venv-<version>-<time>): the prefix
    # is the launcher's, which tells the agent so through its environment.
    prefix = os.path.dirname(os.path.realpath(sys.prefix))
    why = Updater(cfg, "", dict, {files.PREFIX_ENV: prefix}).unsupported()
    if why:
        r.problem("update.cannot", version=version, why=why)
        return
    base = f"{cfg.update.url}/{version}"
    try:
        manifest = signing.verify(
            fetch.get(f"{base}/{release.MANIFEST}", release.MAX_MANIFEST_BYTES, timeout_s),
            fetch.get(f"{base}/{release.SIGNATURE}", 1024, timeout_s), cfg.update_keys)
        if manifest.version != version or "linux" not in manifest.files:
            raise release.ReleaseError(f"{base} holds release {manifest.version} for "
                                       f"{', '.join(manifest.files)}")
    except (fetch.FetchError, release.ReleaseError) as exc:
        r.problem("update.bad", version=version, why=str(exc))
        return
    r.ok("update.ok", version=version, url=cfg.update.url)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    r = Report(args.lang, TEXTS)
    try:
        data = read_file(args.config)
        cfg = read(data)
    except ConfigError as exc:
        r.problem("config.bad", path=args.config, detail=str(exc))
        r.summary()
        return 2
    kept = Central(data, cfg)
    kept.load_kept()  # the centre's last settings (agent.clock may come from there)
    cfg = kept.cfg
    r.ok("config.ok", path=args.config, site=cfg.site, host=cfg.host, network=cfg.network,
         role=cfg.role)
    check_files(r, args.config, data, cfg)
    check_broker(r, cfg, args.timeout)
    check_clock(r, cfg, args.timeout)
    if sys.platform == "linux":
        check_update(r, cfg, args.timeout)
    r.summary()
    return 1 if r.problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
