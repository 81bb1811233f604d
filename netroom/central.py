"""Settings from the centre: the document the collector publishes for each site.

The collector's `sites` tree carries `agents:` blocks (per unit, per site;
a site's block also names its ``testers`` per network and per-PC ``hosts``
sections), inherited down the tree. For every site the collector publishes
one document, retained, QoS 1, on ``netroom/settings/v1/<site>``::

    {"schema": 1, "site": "sq-1", "version": "9c1e0f3a5b7d2e46", "issued": 1764063744.2,
     "settings": {"interval": 60, "probes": [...], "isolation": {...}, "bandwidth": {...}},
     "testers": {"gov": "pc-07"},
     "hosts": {"pc-07": {"interval": 30}}}

``settings`` is the site's block with its units' blocks under it (nearest
wins, mappings merged key by key, lists replaced whole); ``version`` is a
hash of site, settings, testers and hosts (not of ``issued``, the time the
collector read its config), so an unchanged config keeps its version across
collector restarts and "stale" is a plain comparison. The topic lies outside
``netroom/v1/#``: the collector's ingest and older agents never see it.

Both sides check a document with ``check_site``: the collector before it
publishes (a bad `agents:` block is a one-line ConfigError at start-up),
the agent when one arrives (``decode``). A PC's own settings are
``for_host``: the site's, then a ``hosts`` section keyed by its hostname,
then one keyed by its host id (``<hostname>-<6 hex>``), and
``bandwidth.tester`` when ``testers`` names it for its network. The agent's
own file wins over all of that where it sets a key (agent.config).
"""
from __future__ import annotations

import hashlib
import json
import math
from operator import attrgetter
from sys import intern
from typing import Any, Iterable, Mapping, NamedTuple

from netroom import protocol
from netroom.agentsettings import SETTING_KEYS, read_settings
from netroom.settings import ConfigError, Section

SCHEMA = 1
TOPIC_PREFIX = "netroom/settings/v1"
MAX_BYTES = 256 * 1024
SITE_KEYS = ("testers", "hosts")  # in a site's `agents:` block only
VERSION_LEN = 16
# The status fields that say what a PC runs (netroom.protocol KINDS["status"]).
VERSION_FIELD = "settings_version"
ERROR_FIELD = "settings_error"
LOCAL_FIELD = "settings_local"


class SettingsError(ValueError):
    """A settings document the agent refuses; str() is the reason (one line)."""


def topic(site: str) -> str:
    return f"{TOPIC_PREFIX}/{site}"


def site_of(name: str) -> str | None:
    """The site of a settings topic, None for any other topic."""
    prefix = TOPIC_PREFIX + "/"
    if not name.startswith(prefix):
        return None
    site = name[len(prefix):]
    return site if protocol.SITE_ID_RE.match(site) else None


def merge(base: Mapping[str, Any], over: Mapping[str, Any] | None) -> dict[str, Any]:
    """``over`` on ``base``: mappings merged key by key, anything else replaced;
    a None in ``over`` (a key written with nothing after it) changes nothing."""
    out = dict(base)
    for key, value in (over or {}).items():
        if value is None:
            continue
        old = out.get(key)
        if isinstance(value, Mapping) and isinstance(old, Mapping):
            out[key] = merge(old, value)
        else:
            out[key] = value
    return out


def canonical(obj: Any) -> bytes:
    """The one byte form of a document's content (what its version hashes)."""
    return json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":"),
                      allow_nan=False).encode("utf-8")


class Settings(NamedTuple):
    """One site's settings: the block every PC of it runs, the tester of each
    network (host or hostname) and per-PC sections (keyed by host or hostname)."""

    site: str
    settings: Mapping[str, Any]
    testers: Mapping[str, str] = {}
    hosts: Mapping[str, Mapping[str, Any]] = {}

    def content(self) -> dict[str, Any]:
        return {"site": self.site, "settings": dict(self.settings),
                "testers": dict(self.testers), "hosts": {k: dict(v) for k, v in self.hosts.items()}}

    @property
    def version(self) -> str:
        return hashlib.sha256(canonical(self.content())).hexdigest()[:VERSION_LEN]


class Document(NamedTuple):
    """A settings document as published: ``issued`` is epoch s."""

    settings: Settings
    version: str
    issued: float


def document(settings: Settings, issued: float) -> Document:
    return Document(settings, settings.version, round(issued, 3))


def encode(doc: Document) -> bytes:
    s = doc.settings
    return canonical({"schema": SCHEMA, "version": doc.version, "issued": doc.issued,
                      **s.content()})


def decode(payload: bytes | bytearray, site: str) -> Document:
    """A document off the wire for ``site``, checked as the collector checked
    it; raise SettingsError with the reason."""
    if len(payload) > MAX_BYTES:
        raise SettingsError(f"{len(payload)} bytes, limit {MAX_BYTES}")
    try:
        obj = json.loads(bytes(payload).decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise SettingsError(f"not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise SettingsError("not a JSON object")
    if type(obj.get("schema")) is not int or obj["schema"] != SCHEMA:
        raise SettingsError(f"schema must be {SCHEMA}, got {obj.get('schema')!r}")
    if obj.get("site") != site:
        raise SettingsError(f"for site {obj.get('site')!r}, this PC is in {site!r}")
    version, issued = obj.get("version"), obj.get("issued", 0)
    if not isinstance(version, str) or not version:
        raise SettingsError("version: required")
    if isinstance(issued, bool) or not isinstance(issued, (int, float)) \
            or not math.isfinite(issued):
        raise SettingsError(f"issued: must be a number, got {issued!r}")
    for name in ("settings", "testers", "hosts"):
        if not isinstance(obj.get(name, {}), dict):
            raise SettingsError(f"{name}: must be an object")
    settings = Settings(site, obj.get("settings", {}), obj.get("testers", {}),
                        obj.get("hosts", {}))
    try:
        check_site(settings, "settings")
    except ConfigError as exc:
        raise SettingsError(str(exc)) from None
    if settings.version != version:
        raise SettingsError(f"version {version!r} does not match the content "
                            f"({settings.version}): changed on the way, or not from the "
                            "collector")
    return Document(settings, version, float(issued))


def read_block(data: Any, key: str, site: bool) -> tuple[dict[str, Any], dict[str, str],
                                                          dict[str, dict[str, Any]]]:
    """One node's `agents:` block, structure only (the values are checked once
    merged, by check()/check_site()): (settings, testers, hosts).

    ``site``: a site's block may also hold ``testers`` and ``hosts``.
    """
    if data is None:
        return {}, {}, {}
    if not isinstance(data, dict):
        raise ConfigError(f"{key}: must be a mapping")
    allowed = SETTING_KEYS + SITE_KEYS if site else SETTING_KEYS
    for name in data:
        if name not in allowed:
            where = "only a site's block has it" if name in SITE_KEYS else "unknown key"
            raise ConfigError(f"{key}.{name}: {where}")
    settings = {k: v for k, v in data.items() if k in SETTING_KEYS}
    _check_block(settings, key)
    testers = _read_testers(data.get("testers"), f"{key}.testers")
    hosts = _read_hosts(data.get("hosts"), f"{key}.hosts")
    return settings, testers, hosts


def _check_block(block: Mapping[str, Any], key: str) -> None:
    for name in block:
        if name not in SETTING_KEYS:
            raise ConfigError(f"{key}.{name}: unknown key")
    bandwidth = block.get("bandwidth")
    if isinstance(bandwidth, Mapping) and "tester" in bandwidth:
        raise ConfigError(f"{key}.bandwidth.tester: name the site's tester PCs in its "
                          "agents.testers (gov: <host>, internet: <host>)")
    _plain(block, key)


def _plain(value: Any, key: str) -> None:
    """JSON-able values only: what YAML makes of dates and the like is refused."""
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise ConfigError(f"{key}: keys must be text, got {k!r}")
            _plain(v, f"{key}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _plain(v, f"{key}[{i}]")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ConfigError(f"{key}: must be a finite number")
    elif value is not None and not isinstance(value, (str, int, bool)):
        raise ConfigError(f"{key}: must be text, a number, true/false, a list or a mapping, "
                          f"got {value!r}")


def _read_testers(data: Any, key: str) -> dict[str, str]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{key}: must be a mapping of network to host, e.g. {{gov: pc-07}}")
    out = {}
    for network, host in data.items():
        if network not in protocol.NETWORKS:
            raise ConfigError(f"{key}: networks are {', '.join(protocol.NETWORKS)}, "
                              f"got {network!r}")
        if not isinstance(host, str) or not protocol.ID_RE.match(host):
            raise ConfigError(f"{key}.{network}: must be a host or hostname (1-64 letters, "
                              f"digits, '.', '_' or '-'), got {host!r}")
        out[network] = host
    return out


def _read_hosts(data: Any, key: str) -> dict[str, dict[str, Any]]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{key}: must be a mapping of host (or hostname) to settings")
    out = {}
    for host, given in data.items():
        if not isinstance(host, str) or not protocol.ID_RE.match(host):
            raise ConfigError(f"{key}: {host!r} is not a host or hostname (1-64 letters, "
                              "digits, '.', '_' or '-')")
        block = {} if given is None else given
        if not isinstance(block, dict):
            raise ConfigError(f"{key}.{host}: must be a mapping")
        _check_block(block, f"{key}.{host}")
        out[host] = block
    return out


def check(settings: Mapping[str, Any], key: str, network: str,
          seen: set[str] | None = None) -> None:
    """Raise ConfigError if a PC on ``network`` would refuse ``settings``
    (merged, probes included); errors are named under ``key``.

    ``seen``: settings already found good, shared across calls. The sites of
    a unit mostly inherit one block unchanged, and checking it once instead
    of per site is most of what reading a 1,000-site tree costs.
    """
    if seen is not None:
        digest = network + json.dumps(settings, sort_keys=True, default=repr)
        if digest in seen:
            return
    _check_network(settings, key, network)
    if seen is not None:
        seen.add(digest)


def _check_network(settings: Mapping[str, Any], key: str, network: str) -> None:
    rest = {k: v for k, v in settings.items() if k != "probes"}
    s = Section(rest, key)
    read_settings(s, network, settings.get("probes"), f"{key}.probes")
    s.done()


def check_site(site: Settings, key: str, seen: set[str] | None = None) -> None:
    """Everything a PC of the site could be handed, for each network: the
    site's settings, each ``hosts`` section, each tester's; ConfigError.
    ``seen``: as for check()."""
    _check_block(site.settings, key)
    testers = _read_testers(site.testers, f"{key}.testers")
    hosts = _read_hosts(site.hosts, f"{key}.hosts")
    for network in protocol.NETWORKS:
        check(site.settings, key, network, seen)
        for host, block in hosts.items():
            check(merge(site.settings, block), f"{key}.hosts.{host}", network, seen)
    for network, host in testers.items():
        try:
            check(for_host(site, host, host, network), key, network, seen)
        except ConfigError as exc:
            raise ConfigError(f"{key}.testers.{network}: {host} runs the speed tests: {exc}"
                              ) from None


def for_host(site: Settings, host: str, hostname: str, network: str) -> dict[str, Any]:
    """What the centre says one PC runs: the site's settings, its hostname's
    section, its host's section (nearest wins), and tester when named."""
    out = dict(site.settings)
    for name in dict.fromkeys((hostname, host)):
        out = merge(out, site.hosts.get(name))
    tester = site.testers.get(network)
    if tester is not None and tester in (host, hostname):
        out = merge(out, {"bandwidth": {"tester": True}})
    return out


# -- what the report needs: PCs running stale settings --------------------

STATES = ("current", "stale", "refused", "none")


class SettingsState(NamedTuple):
    """What one PC runs against what its site's config says it should run.

    ``expected``: the site's version from the collector's config ("" for a
    site not in the tree); ``running``, ``error``: the ``settings_version``
    and ``settings_error`` of the PC's latest ``online`` status; ``local``:
    its ``settings_local`` (keys its own file sets); ``seen_ms``: that
    status's time, epoch ms.
    """

    site: str
    host: str
    expected: str
    running: str
    error: str = ""
    local: str = ""
    seen_ms: int = 0

    @property
    def state(self) -> str:
        """current | stale (runs another version) | refused (refused the
        latest document, runs an older one or none) | none (never had any:
        an agent older than this feature, or no document reached it)."""
        if self.error:
            return "refused"
        if not self.running:
            return "none"
        return "current" if self.running == self.expected else "stale"


def settings_states(expected: Mapping[str, str],
                    statuses: Iterable[tuple[str, str, str | None, str | None, str | None, int]]
                    ) -> list[SettingsState]:
    """One SettingsState per (site, host, running, error, local, seen_ms) of
    the PCs' latest online statuses, sorted by site and host."""
    # Interned: one string per site, PC and version across a fleet's statuses.
    return sorted((SettingsState(intern(site), intern(host), expected.get(site, ""),
                                 intern(running or ""), error or "", intern(local or ""), seen)
                   for site, host, running, error, local, seen in statuses),
                  key=attrgetter("site", "host"))
