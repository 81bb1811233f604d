"""`netroom doctor`: checks the collector host's set-up, one line per finding.

Config (exit 2 when it cannot be read), file permissions, InfluxDB (the
collector's credentials, its database, the right to write and read:
collector/preflight.py, what netroom-collector checks at start) and the
broker (login, TLS, and, with sites in the tree, the test publish of a
site's settings document, as the collector's settings connection does).
A problem's line carries its fix. Exit 0: no problem; 1: some; 2: the config.

The broker is asked as the settings connection's user
(``<mqtt.username>-settings``, the collector's password): the collector's
own user has a persistent session holding the agents' queued messages, which
no check may take over. That user's subscription is checked by
netroom-collector itself at start (exit 2 when refused).
"""
from __future__ import annotations

import argparse
import os
import stat
import time
from typing import Any

from collector import preflight
from collector.config import CollectorConfig, load
from collector.publish import settings_login
from netroom import central
from netroom.doctor import LANGS, Report, probe, report_probe
from netroom.settings import ConfigError, load_yaml

TEXTS: dict[str, tuple[str, str]] = {
    "config.ok": ("配置 {path}：有效（{sites} 个站点）", "config {path}: valid ({sites} sites)"),
    "config.bad": ("配置 {path}：{detail}", "config {path}: {detail}"),
    "config.bad.fix": ("按提示改正该项后再运行", "correct that key and run this again"),
    "files.secret": ("{path} 含密码（{key}），但所有用户可读（权限 {mode}）",
                     "{path} holds a password ({key}) but every user may read it (mode {mode})"),
    "files.secret.fix": ("chmod 640 {path}（属组为汇聚程序的用户组）",
                         "chmod 640 {path} (group: the collector's)"),
    "files.spool": ("缓存目录 {path}：不可写", "spool directory {path}: not writable"),
    "files.spool.fix": ("以汇聚程序的用户身份可写，或改 collector.spool_dir",
                        "make it writable for the collector's user, or change "
                        "collector.spool_dir"),
    "files.ok": ("文件权限：缓存目录 {path} 可写，密码不对他人开放",
                 "files: spool directory {path} writable, no password readable by others"),
    "influx.ok": ("InfluxDB {url} 数据库 {db}：可写可读", "InfluxDB {url} database {db}: "
                  "writable and readable"),
    "influx.unreachable": ("InfluxDB {url}：无法连接（{detail}）",
                           "InfluxDB {url}: cannot connect ({detail})"),
    "influx.unreachable.fix": ("启动 influxd，或改正 influxdb.url"
                               "（汇聚程序会先写入缓存，不丢数据）",
                               "start influxd, or correct influxdb.url (the collector spools "
                               "meanwhile: nothing is lost)"),
    "influx.credentials": ("InfluxDB {url}：认证失败（{detail}）",
                           "InfluxDB {url}: authentication failed ({detail})"),
    "influx.credentials.fix": ("核对 influxdb.username 与密码（NETROOM_INFLUXDB_PASSWORD）或 "
                               "influxdb.token", "check influxdb.username and its password "
                               "(NETROOM_INFLUXDB_PASSWORD), or influxdb.token"),
    "influx.no_database": ("InfluxDB {url}：数据库 {db} 不存在（{detail}）",
                           "InfluxDB {url}: no database {db} ({detail})"),
    "influx.no_database.fix": ("以管理员执行 CREATE DATABASE {db}，或改正 influxdb.database",
                               "CREATE DATABASE {db} as an InfluxDB admin, or correct "
                               "influxdb.database"),
    "influx.no_write": ("InfluxDB {url}：无权写入 {db}（{detail}）",
                        "InfluxDB {url}: may not write to {db} ({detail})"),
    "influx.no_write.fix": ("GRANT ALL ON {db} TO 汇聚程序的用户", "GRANT ALL ON {db} TO the "
                            "collector's user"),
    "influx.no_read": ("InfluxDB {url}：无权读取 {db}（{detail}）",
                       "InfluxDB {url}: may not read {db} ({detail})"),
    "influx.no_read.fix": ("GRANT ALL ON {db} TO 汇聚程序的用户（合规计算需回读数据）",
                           "GRANT ALL ON {db} TO the collector's user (the rules read back "
                           "what it wrote)"),
    "influx.error": ("InfluxDB {url}：{detail}", "InfluxDB {url}: {detail}"),
    "influx.error.fix": ("查看 InfluxDB 日志", "see InfluxDB's log"),
    "acl.fix": ("代理服务器须允许 {who} 发布 netroom/settings/v1/+（deploy/mosquitto/README.md）",
                "the broker must let {who} publish netroom/settings/v1/+ "
                "(deploy/mosquitto/README.md)"),
    "mqtt.settings_user": ("代理服务器以设置连接的用户检查（同一密码）；"
                           "汇聚程序自身的订阅在其启动时检查",
                           "the broker is checked as the settings connection's user (same "
                           "password); the collector's own subscription is checked when it "
                           "starts"),
}

SECRETS = (("mqtt", "password"), ("influxdb", "password"), ("influxdb", "token"))


def add_doctor(sub: Any) -> None:
    p = sub.add_parser("doctor", help="check config, files, InfluxDB and the broker",
                       description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", "-c", required=True, help="path to config.yaml")
    p.add_argument("--lang", choices=LANGS, default="zh", help="zh (default) or en")
    p.add_argument("--timeout", type=float, default=10.0,
                   help="seconds to wait for each answer (default 10)")
    p.set_defaults(run=run)


def _existing(path: str) -> str:
    path = os.path.abspath(path)
    while not os.path.exists(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    return path


def check_files(r: Report, path: str, cfg: CollectorConfig) -> None:
    data = load_yaml(path)
    bad = 0
    mode = stat.S_IMODE(os.stat(path).st_mode)
    for section, key in SECRETS:
        part = data.get(section)
        if os.name == "posix" and isinstance(part, dict) and part.get(key) \
                and mode & stat.S_IROTH:
            bad += 1
            r.problem("files.secret", path=path, key=f"{section}.{key}", mode=f"{mode:04o}")
            break
    if not os.access(_existing(cfg.spool_dir), os.W_OK):
        bad += 1
        r.problem("files.spool", path=cfg.spool_dir)
    if not bad:
        r.ok("files.ok", path=cfg.spool_dir)


def check_influx(r: Report, cfg: CollectorConfig) -> None:
    found = preflight.check_influx(cfg.influxdb)
    fields = {"url": cfg.influxdb.url, "db": cfg.influxdb.database, "detail": found.detail}
    if found.code == preflight.OK:
        r.ok("influx.ok", **fields)
    else:
        r.problem(f"influx.{found.code}", **fields)


def check_broker(r: Report, cfg: CollectorConfig, timeout_s: float) -> None:
    login = settings_login(cfg.mqtt, cfg.workers)
    client_id = f"{cfg.client_id}-settings" if cfg.mqtt.username else f"{cfg.client_id}-doctor"
    publish = None
    topic = ""
    if cfg.org.sites:
        site = cfg.org.sites[0]
        topic = central.topic(site.id)
        doc = central.document(site.settings, time.time())
        publish = (topic, central.encode(doc), True)
    who = repr(login.username) if login.username else "anonymous"
    if login.username:
        r.note("mqtt.settings_user")
    p = probe(login, client_id, timeout_s, publish)
    report_probe(r, p, login, who, timeout_s, topic)


def run(args: argparse.Namespace) -> int:
    r = Report(args.lang, TEXTS)
    try:
        cfg = load(args.config)
    except ConfigError as exc:
        r.problem("config.bad", path=args.config, detail=str(exc))
        r.summary()
        return 2
    r.ok("config.ok", path=args.config, sites=len(cfg.org.sites))
    check_files(r, args.config, cfg)
    check_influx(r, cfg)
    check_broker(r, cfg, args.timeout)
    r.summary()
    return 1 if r.problems else 0
