#!/usr/bin/env python3
"""netroom's broker identities: one MQTT user per PC, in mosquitto's dynamic security file.

mosquitto 2.0 (netroom.conf) checks every login and every topic against the
file this script writes (plugin_opt_config_file). What it holds:

  <site>/<host>         one user per PC, e.g. sq-1/pc-07: may publish only
                        to netroom/v1/<site>/<host>/<kind>, and read only its
                        site's settings, netroom/settings/v1/<site>
  netroom-collector     may subscribe to netroom/v1/# and, for
                        collector.workers > 1, to $share/netroom-collector/...;
                        publishes nothing
  netroom-collector-<i> the same, one per worker (--workers N): with
                        use_username_as_clientid every session is its user's
  netroom-collector-settings  the collector's settings connection
                        (docs/settings.md): publishes netroom/settings/v1/+
  netroom-admin         reads netroom/# and $SYS/# for checks
  netroom-bridge-<site> a site broker's bridge (--bridges, site-bridge.conf):
                        publishes to netroom/v1/<site>/+/+ for the site's PCs,
                        reads netroom/settings/v1/<site>
The collector's workers and its settings user share its password.

Every user is also bound to the client id equal to its name, so the file
stays safe even if use_username_as_clientid is ever removed: logins then
fail instead of opening other principals' sessions.

Commands (every one writes the file atomically, mode 0600):

  sync    --file F --pcs LIST --out DIR [--workers N] [--prune]
          Make F hold the service users and one user per PC of LIST.
          LIST: one PC a line, "<site>,<host>" (a CSV export works; blank
          lines and lines starting with # are skipped). Users that already
          exist keep their passwords; every new user gets a random password,
          written to DIR/<site>.txt ("<user>:<password>" lines, for that
          site's installers) and DIR/services.txt. --prune removes PCs that
          are no longer listed. --bridges SITE[,SITE...]: one bridge user
          per site that has its own broker; its password goes to
          DIR/<site>.txt.
  site    --file F SITE --to G
          Write G, the users' file for SITE's own broker: that site's PCs
          only, with the same passwords (the same hashes), so its PCs log in
          there as they would here.
  passwd  --file F USER     set USER's password from standard input (one
          line); for the collector, its workers and settings user get
          the same.
  list    --file F          users and what they may do (no secrets).

mosquitto reads the file only at start: `systemctl restart mosquitto`
afterwards (a clean restart keeps every queued message). Python 3.6+,
standard library only. See deploy/mosquitto/README.md and docs/security.md.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
import secrets
import string
import sys
import tempfile
from typing import Any, Dict, Iterable, List, Optional, Tuple

# The same rules as netroom/schema.py SITE_ID_RE and netroom/protocol.py ID_RE
# (tests/test_broker_identity.py checks they agree); repeated here so the
# script runs with any python3 on the broker host.
SITE_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,63}\Z")
HOST_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")
SERVICE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")
COLLECTOR = "netroom-collector"
ADMIN = "netroom-admin"
TOPIC_ROOT = "netroom/v1"
SETTINGS_ROOT = "netroom/settings/v1"  # netroom/central.py TOPIC_PREFIX
PC_ROLE_PREFIX = "pc:"
BRIDGE_PREFIX = "netroom-bridge-"  # + site: a site broker's bridge (site-bridge.conf)
ITERATIONS = 101  # mosquitto's own default; passwords are random, 128+ bits
PASSWORD_LEN = 24
ALPHABET = string.ascii_letters + string.digits  # safe in CSV, YAML, env files, cmd
DENY_ALL = {"publishClientSend": False, "publishClientReceive": False,
            "subscribe": False, "unsubscribe": True}


class Error(Exception):
    """A problem with the input; str() is the one line shown."""


# -- pure ---------------------------------------------------------------------


def pc_user(site: str, host: str) -> str:
    """The MQTT user (and client id) of one PC."""
    return f"{site}/{host}"


def parse_pcs(text: str, source: str = "pcs") -> List[Tuple[str, str]]:
    """`<site>,<host>` lines -> [(site, host)], in order, without duplicates."""
    out: List[Tuple[str, str]] = []
    seen = set()
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = [f.strip() for f in line.split(",")]
        if len(fields) != 2:
            raise Error(f"{source}:{n}: expected '<site>,<host>', got {raw!r}")
        site, host = fields
        if not SITE_RE.match(site):
            raise Error(f"{source}:{n}: site must be 1-64 of a-z, 0-9 and '-', got {site!r}")
        if not HOST_RE.match(host):
            raise Error(f"{source}:{n}: host must be 1-64 letters, digits, '.', '_' or '-', "
                        f"got {host!r}")
        if (site, host) in seen:
            raise Error(f"{source}:{n}: {pc_user(site, host)} is listed twice")
        seen.add((site, host))
        out.append((site, host))
    return out


def new_password() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(PASSWORD_LEN))


def hash_password(password: str, iterations: int = ITERATIONS) -> Dict[str, Any]:
    """dynsec's fields: base64 PBKDF2-HMAC-SHA512 of the password with a 12-byte salt."""
    salt = os.urandom(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations, 64)
    return {"password": base64.b64encode(digest).decode("ascii"),
            "salt": base64.b64encode(salt).decode("ascii"), "iterations": iterations}


def check_password(entry: Dict[str, Any], password: str) -> bool:
    """True if ``password`` is the one stored in a dynsec client entry."""
    salt = base64.b64decode(entry["salt"])
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt,
                                 int(entry["iterations"]), 64)
    return secrets.compare_digest(base64.b64encode(digest).decode("ascii"), entry["password"])


def _acl(kind: str, topic: str) -> Dict[str, Any]:
    return {"acltype": kind, "topic": topic, "priority": 0, "allow": True}


def pc_role(site: str, host: str) -> Dict[str, Any]:
    """Publish (incl. retained messages and the Last Will) to its own topics
    only; read its site's settings document and nothing else.

    mosquitto 2.0.11's dynsec has no %u/%c substitution in ACLs (checked in
    tests/test_broker_identity.py), hence one role per PC.
    """
    return {"rolename": PC_ROLE_PREFIX + pc_user(site, host), "acls": [
        _acl("publishClientSend", f"{TOPIC_ROOT}/{site}/{host}/+"),
        _acl("subscribeLiteral", f"{SETTINGS_ROOT}/{site}"),
        _acl("publishClientReceive", f"{SETTINGS_ROOT}/{site}"),
    ]}


def bridge_user(site: str) -> str:
    return BRIDGE_PREFIX + site


def bridge_role(site: str) -> Dict[str, Any]:
    """A site broker's bridge: forwards what the site's PCs publish (each PC
    checked there by its own pc_role) and brings in the site's settings."""
    return {"rolename": bridge_user(site), "acls": [
        _acl("publishClientSend", f"{TOPIC_ROOT}/{site}/+/+"),
        _acl("subscribeLiteral", f"{SETTINGS_ROOT}/{site}"),
        _acl("publishClientReceive", f"{SETTINGS_ROOT}/{site}"),
    ]}


def collector_role(name: str) -> Dict[str, Any]:
    """Read everything netroom publishes, alone or in its own shared group."""
    return {"rolename": name, "acls": [
        _acl("subscribeLiteral", f"{TOPIC_ROOT}/#"),
        _acl("subscribeLiteral", f"$share/{name}/{TOPIC_ROOT}/#"),
        _acl("publishClientReceive", f"{TOPIC_ROOT}/#"),
    ]}


def settings_role(name: str) -> Dict[str, Any]:
    """Publish every site's settings document (retained); read nothing."""
    return {"rolename": name, "acls": [_acl("publishClientSend", f"{SETTINGS_ROOT}/+")]}


def admin_role(name: str) -> Dict[str, Any]:
    """Read netroom's topics and the broker's statistics (mosquitto_sub checks)."""
    return {"rolename": name, "acls": [
        _acl("subscribePattern", "netroom/#"),
        _acl("publishClientReceive", "netroom/#"),
        _acl("subscribePattern", "$SYS/#"),
        _acl("publishClientReceive", "$SYS/#"),
    ]}


def client(user: str, role: str, secret: Dict[str, Any]) -> Dict[str, Any]:
    return {"username": user, "clientid": user, "textName": "netroom",
            "roles": [{"rolename": role, "priority": 0}], **secret}


def _secret(entry: Dict[str, Any]) -> Dict[str, Any]:
    return {k: entry[k] for k in ("password", "salt", "iterations")}


def workers_of(collector: str, workers: int) -> List[str]:
    """The worker users of collector/workers.py: <collector>-0 .. -(N-1), none for 1."""
    return [f"{collector}-{i}" for i in range(workers)] if workers > 1 else []


def settings_user(collector: str) -> str:
    """The collector's settings connection (collector/publish.py)."""
    return f"{collector}-settings"


def shares_password(collector: str, user: str) -> bool:
    """``user`` logs in with the collector's password (a worker, the settings user)."""
    return user == settings_user(collector) or re.fullmatch(
        re.escape(collector) + r"-\d+", user) is not None


def build(old: Optional[Dict[str, Any]], pcs: Iterable[Tuple[str, str]], collector: str,
          admin: str, workers: int, prune: bool, bridges: Iterable[str] = ()
          ) -> Tuple[Dict[str, Any], Dict[str, str], List[str]]:
    """The new dynsec document, the new users' passwords and the removed users.

    Users in ``old`` keep their hashes; roles are always rebuilt from scratch,
    so a hand-made grant in the file does not survive a sync.
    """
    old_clients = {c["username"]: c for c in (old or {}).get("clients", [])
                   if isinstance(c, dict) and c.get("username") and c.get("salt")}
    created: Dict[str, str] = {}
    clients: List[Dict[str, Any]] = []
    roles: List[Dict[str, Any]] = [collector_role(collector),
                                   settings_role(settings_user(collector)), admin_role(admin)]

    def secret_for(user: str, like: Optional[str] = None) -> Dict[str, Any]:
        if user in old_clients:
            return _secret(old_clients[user])
        if like is not None:  # a worker or the settings user: the collector's password
            if like in created:
                return {**hash_password(created[like])}
            return _secret(old_clients[like])
        created[user] = new_password()
        return hash_password(created[user])

    clients.append(client(collector, collector, secret_for(collector)))
    for worker in workers_of(collector, workers):
        clients.append(client(worker, collector, secret_for(worker, like=collector)))
    settings = settings_user(collector)
    clients.append(client(settings, settings, secret_for(settings, like=collector)))
    clients.append(client(admin, admin, secret_for(admin)))
    listed = set()
    for site, host in pcs:
        user = pc_user(site, host)
        listed.add(user)
        role = pc_role(site, host)
        roles.append(role)
        clients.append(client(user, role["rolename"], secret_for(user)))
    for site in bridges:
        roles.append(bridge_role(site))
        clients.append(client(bridge_user(site), bridge_user(site),
                              secret_for(bridge_user(site))))
    removed = []
    kept = {c["username"] for c in clients}
    for user, entry in old_clients.items():
        if user in kept:
            continue
        if ("/" in user or user.startswith(BRIDGE_PREFIX)) and prune:
            removed.append(user)
            continue
        if user.startswith(BRIDGE_PREFIX):  # a bridge not listed now: kept
            site = user[len(BRIDGE_PREFIX):]
            roles.append(bridge_role(site))
            clients.append(client(user, user, _secret(entry)))
            continue
        if "/" in user:  # a PC not listed now: kept, with its own role
            site, _, host = user.partition("/")
            role = pc_role(site, host)
            roles.append(role)
            clients.append(client(user, role["rolename"], _secret(entry)))
        elif prune:  # e.g. a worker of a former workers count
            removed.append(user)
        else:
            clients.append({**entry, "roles": entry.get("roles", [])})
    doc = {"clients": clients, "groups": [], "roles": roles, "defaultACLAccess": dict(DENY_ALL)}
    return doc, created, removed


def site_doc(doc: Dict[str, Any], site: str) -> Dict[str, Any]:
    """The users' file of ``site``'s own broker: its PCs, same hashes and roles."""
    roles = {r["rolename"]: r for r in doc.get("roles", [])}
    clients = [c for c in doc.get("clients", [])
               if c.get("username", "").partition("/")[0] == site and "/" in c["username"]]
    if not clients:
        raise Error(f"no PC of site {site!r} in the file")
    return {"clients": clients, "groups": [],
            "roles": [roles[r["rolename"]] for c in clients for r in c.get("roles", [])
                      if r.get("rolename") in roles],
            "defaultACLAccess": dict(DENY_ALL)}


def set_password(doc: Dict[str, Any], user: str, password: str, collector: str) -> List[str]:
    """Give ``user`` (and, for the collector, its workers) ``password``; the users changed."""
    changed = []
    secret = hash_password(password)
    for c in doc.get("clients", []):
        name = c.get("username", "")
        if name == user or (user == collector and shares_password(collector, name)):
            c.update(secret)
            changed.append(name)
    if not changed:
        raise Error(f"no user {user!r} in the file (add it with `sync` first)")
    return changed


def describe(doc: Dict[str, Any]) -> List[str]:
    """One line per user: its name and what its roles allow."""
    roles = {r["rolename"]: r for r in doc.get("roles", [])}
    out = []
    for c in doc.get("clients", []):
        grants = []
        for ref in c.get("roles", []):
            for acl in roles.get(ref.get("rolename"), {}).get("acls", []):
                grants.append(f"{'+' if acl.get('allow') else '-'}{acl['acltype']} {acl['topic']}")
        out.append(f"{c['username']}: " + ("; ".join(grants) or "nothing"))
    return out


# -- files ----------------------------------------------------------------------


def read_doc(path: str) -> Optional[Dict[str, Any]]:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        if not text.strip():  # made empty beforehand to set its owner
            return None
        doc = json.loads(text)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise Error(f"{path}: cannot read: {exc}") from None
    if not isinstance(doc, dict):
        raise Error(f"{path}: not a dynamic security file")
    return doc


def write_private(path: str, text: str) -> None:
    """Write ``text`` to ``path`` atomically, mode 0600 from the start.

    A file replaced keeps its owner: mosquitto reads the file after dropping
    root, as user mosquitto (and starts without any user if it cannot).
    """
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".netroom-", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            st = None
        if st is not None and hasattr(os, "chown") and (st.st_uid, st.st_gid) != (
                os.getuid(), os.getgid()):
            os.chown(tmp, st.st_uid, st.st_gid)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_passwords(out_dir: str, created: Dict[str, str]) -> List[str]:
    """Append the new passwords to <out_dir>/<site>.txt and services.txt; the files written."""
    os.makedirs(out_dir, mode=0o700, exist_ok=True)
    by_file: Dict[str, List[str]] = {}
    for user, password in created.items():
        site = user[len(BRIDGE_PREFIX):] if user.startswith(BRIDGE_PREFIX) else ""
        name = (user.partition("/")[0] if "/" in user else site or "services") + ".txt"
        by_file.setdefault(name, []).append(f"{user}:{password}\n")
    written = []
    for name, lines in sorted(by_file.items()):
        path = os.path.join(out_dir, name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as f:
            f.writelines(lines)
        written.append(path)
    return written


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="netroom_credentials.py",
                                description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    p.add_argument("--file", required=True,
                   help="mosquitto's dynamic security file (plugin_opt_config_file)")
    p.add_argument("--collector", default=COLLECTOR,
                   help=f"the collector's user, = its mqtt.username (default {COLLECTOR})")
    p.add_argument("--admin", default=ADMIN, help=f"the operator's user (default {ADMIN})")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("sync", help="add (and with --prune remove) users")
    s.add_argument("--pcs", required=True, help="'<site>,<host>' lines; - for standard input")
    s.add_argument("--out", required=True, help="folder for the new users' passwords")
    s.add_argument("--workers", type=int, default=1,
                   help="collector.workers: makes <collector>-0..N-1 users (default 1)")
    s.add_argument("--prune", action="store_true",
                   help="remove PCs (and bridges) not listed")
    s.add_argument("--bridges", default="",
                   help="SITE[,SITE...]: sites with their own broker (site-bridge.conf)")
    b = sub.add_parser("site", help="the users' file for one site's own broker")
    b.add_argument("site")
    b.add_argument("--to", required=True, help="the site broker's users' file to write")
    w = sub.add_parser("passwd", help="set a user's password from standard input")
    w.add_argument("user")
    sub.add_parser("list", help="users and their grants, no secrets")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    args = parser().parse_args(argv)
    try:
        for name in (args.collector, args.admin):
            if not SERVICE_RE.match(name):
                raise Error(f"not a valid service user name: {name!r}")
        doc = read_doc(args.file)
        if args.command == "sync":
            if not 1 <= args.workers <= 64:
                raise Error(f"--workers: must be 1-64, got {args.workers}")
            text = sys.stdin.read() if args.pcs == "-" else _read_text(args.pcs)
            pcs = parse_pcs(text, args.pcs)
            bridges = [b.strip() for b in args.bridges.split(",") if b.strip()]
            for site in bridges:
                if not SITE_RE.match(site):
                    raise Error(f"--bridges: not a site id: {site!r}")
            new, created, removed = build(doc, pcs, args.collector, args.admin, args.workers,
                                          args.prune, bridges)
            files = write_passwords(args.out, created) if created else []
            write_private(args.file, json.dumps(new, indent=1) + "\n")
            print(f"{args.file}: {len(new['clients'])} users ({len(pcs)} PCs listed), "
                  f"{len(created)} new, {len(removed)} removed")
            for path in files:
                print(f"new passwords: {path}")
            print("then: systemctl restart mosquitto (it reads this file only at start)")
        elif args.command == "site":
            if doc is None:
                raise Error(f"{args.file}: no such file (run `sync` first)")
            part = site_doc(doc, args.site)
            write_private(args.to, json.dumps(part, indent=1) + "\n")
            print(f"{args.to}: {len(part['clients'])} PCs of {args.site}; copy it to the "
                  "site broker's plugin_opt_config_file, then restart its mosquitto")
        elif args.command == "passwd":
            if doc is None:
                raise Error(f"{args.file}: no such file (run `sync` first)")
            password = sys.stdin.readline().rstrip("\r\n")
            if not password:
                raise Error("no password on standard input")
            changed = set_password(doc, args.user, password, args.collector)
            write_private(args.file, json.dumps(doc, indent=1) + "\n")
            print(f"{args.file}: new password for {', '.join(changed)}; "
                  "then: systemctl restart mosquitto")
        else:
            for line in describe(doc or {}):
                print(line)
    except Error as exc:
        print(f"netroom_credentials.py: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"netroom_credentials.py: error: {exc}", file=sys.stderr)
        return 1
    return 0


def _read_text(path: str) -> str:
    try:
        with open(path, encoding="utf-8-sig") as f:  # -sig: a CSV saved by Excel
            return f.read()
    except OSError as exc:
        raise Error(f"{path}: cannot read: {exc.strerror}") from None


if __name__ == "__main__":
    sys.exit(main())
