"""deploy/compose/: the production stack as containers, checked without Docker.

No Docker daemon can run here, so compose.yaml is never started: it is
checked against the Compose Specification's documented structure instead
(compose-spec.io, "Compose file": top-level elements, services, volumes,
interpolation), and against the files the other tests run for real:
deploy/mosquitto/netroom.conf under Debian's main mosquitto.conf
(tests/servers.py ProductionMosquitto), deploy/grafana/provisioning/*
(tests/test_dashboards.py), and config.yaml's collector sections (loaded by
the collector's own loader). The read-only InfluxDB user of
docs/operations.md is created on a real influxd with auth enabled, and
shown to read but not write.
"""
from __future__ import annotations

import configparser
import json
import re
import secrets
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import yaml
from harness import REPO
from servers import DEBIAN_MAIN, DEPLOY_MOSQUITTO, Influxd

COMPOSE_DIR = REPO / "deploy" / "compose"
COMPOSE = COMPOSE_DIR / "compose.yaml"
PROVISIONING = REPO / "deploy" / "grafana" / "provisioning"  # as tests/test_dashboards.py
GENERATED = REPO / "dashboards" / "generated"
OPERATIONS = REPO / "docs" / "operations.md"

# Compose Specification: the top-level elements, and the service attributes
# this stack may use (a subset of the specification's list).
TOP_LEVEL = {"version", "name", "services", "networks", "volumes", "configs", "secrets"}
SERVICE_KEYS = {"image", "build", "network_mode", "depends_on", "restart", "ports",
                "volumes", "environment", "healthcheck", "stop_grace_period", "command",
                "user", "read_only", "init", "logging", "ulimits"}
HEALTHCHECK_KEYS = {"test", "interval", "timeout", "retries", "start_period",
                    "start_interval", "disable"}
RESTART = re.compile(r"no|always|unless-stopped|on-failure(:\d+)?")
DURATION = re.compile(r"(\d+(us|ms|s|m|h))+")
# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}
INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")
PUBLISHABLE = {1883, 8883, 3000}
SECRET_NAME = re.compile(r"PASSWORD|TOKEN|SECRET|_URL$")
# Host paths that are the operator's own files (secrets), not the repository's.
OPERATOR_FILES = {"NETROOM_MOSQUITTO_USERS"}


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return data


def services() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = compose()["services"]
    return out


def strings(node: Any) -> Iterator[str]:
    """Every string key and value in a loaded YAML document."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from strings(key)
            yield from strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings(item)
    elif isinstance(node, str):
        yield node


def host_path(source: str) -> tuple[Path | None, str]:
    """A bind mount's host path: (repository path or None, variable name or '')."""
    m = INTERPOLATION.fullmatch(source)
    if m is None:
        return (COMPOSE_DIR / source).resolve(), ""
    name, op, arg = m.groups()
    if op in (":-", "-"):
        return (COMPOSE_DIR / arg).resolve(), name
    return None, name


def binds(service: str) -> dict[str, Path | None]:
    """target -> resolved host path of each bind mount (None: the operator's file)."""
    out = {}
    for v in services()[service].get("volumes", []):
        if v["type"] == "bind":
            out[v["target"]] = host_path(v["source"])[0]
    return out


def dockerfile(name: str) -> tuple[list[str], list[str]]:
    """(instructions with continuations joined, FROM images) of deploy/compose/<name>."""
    text = (COMPOSE_DIR / name).read_text(encoding="utf-8")
    lines = [x for x in text.splitlines() if not x.lstrip().startswith("#")]
    joined = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    instr = [x.strip() for x in joined.splitlines() if x.strip()]
    froms = [x.split()[1] for x in instr if x.startswith("FROM ")]
    return instr, froms


def section(text: str, title: str) -> str:
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else len(text)]


def test_the_file_says_it_was_never_run() -> None:
    def words(text: str) -> str:
        return " ".join(text.replace("#", " ").split())

    head = words(COMPOSE.read_text(encoding="utf-8").split("\nname:")[0])
    assert "NOT RUN HERE" in head and "no Docker daemon" in head
    for name in ("mosquitto.Dockerfile", "collector.Dockerfile"):
        assert "no Docker daemon" in words((COMPOSE_DIR / name).read_text(encoding="utf-8"))
    doc = section(OPERATIONS.read_text(encoding="utf-8"), "Production stack")
    assert "deploy/compose/compose.yaml" in doc and "It has not been run" in doc


def test_follows_the_compose_specification() -> None:
    data = compose()
    assert set(data) <= TOP_LEVEL and "version" not in data  # `version` is obsolete
    svc = services()
    assert set(svc) == {"netns", "mosquitto", "influxdb", "grafana", "collector"}
    for name, s in svc.items():
        assert set(s) <= SERVICE_KEYS, (name, set(s) - SERVICE_KEYS)
        assert "image" in s or "build" in s, name
        assert RESTART.fullmatch(s["restart"]), name
        if "build" in s:
            context = (COMPOSE_DIR / s["build"]["context"]).resolve()
            assert (context / s["build"]["dockerfile"]).is_file(), name
        mode = s.get("network_mode", "")
        if mode:  # one namespace, owned by netns; ports go on the owner only
            assert mode == "service:netns" and "ports" not in s, name
            deps = s["depends_on"]
            assert "netns" in (deps if isinstance(deps, list) else list(deps)), name
        if name != "netns":
            hc = s["healthcheck"]
            assert set(hc) <= HEALTHCHECK_KEYS and hc["test"][0] == "CMD", name
            for key in ("interval", "timeout", "start_period"):
                assert DURATION.fullmatch(hc[key]), (name, key)
        if "stop_grace_period" in s:
            assert DURATION.fullmatch(s["stop_grace_period"])
        deps = s.get("depends_on", [])
        for dep, cond in (deps.items() if isinstance(deps, dict) else []):
            assert dep in svc and cond["condition"] in {
                "service_started", "service_healthy", "service_completed_successfully"}
            if cond["condition"] == "service_healthy":
                assert "healthcheck" in svc[dep], (name, dep)


def test_images_are_pinned() -> None:
    images = [s["image"] for s in services().values()]
    images += dockerfile("mosquitto.Dockerfile")[1] + dockerfile("collector.Dockerfile")[1]
    for image in images:
        name, _, tag = image.rpartition(":")
        assert name and "/" not in tag and tag != "latest" and re.search(r"\d", tag), image
    assert services()["influxdb"]["image"].startswith("influxdb:1.8.")
    assert services()["grafana"]["image"].startswith("grafana/grafana-oss:")


def test_volumes_are_declared_and_host_paths_exist() -> None:
    declared = set(compose()["volumes"])
    used = set()
    operator = set()
    for name, s in services().items():
        for v in s.get("volumes", []):
            assert isinstance(v, dict) and v["type"] in {"bind", "volume"}, (name, v)
            if v["type"] == "volume":
                assert v["source"] in declared, (name, v)
                used.add(v["source"])
            else:
                path, var = host_path(v["source"])
                if path is None:
                    operator.add(var)
                else:
                    assert path.exists() and REPO in path.parents, (name, path)
                assert v.get("read_only") is True, (name, v["target"])
    assert used == declared  # named volumes for every service's data, none unused
    assert operator == OPERATOR_FILES


def test_no_secret_is_in_the_files() -> None:
    # In every value (compose interpolates values, never comments) a `$` is
    # interpolation or `$$`; every variable is listed in env.example.
    values = list(strings(compose()))
    for value in values:
        assert "$" not in INTERPOLATION.sub("", value).replace("$$", ""), value
    text = "\n".join(values)
    example = (COMPOSE_DIR / "env.example").read_text(encoding="utf-8")
    listed = {}
    for raw in example.splitlines():
        line = raw.lstrip("# ").strip()
        if re.fullmatch(r"NETROOM_[A-Z_]+=.*", line):
            key, _, value = line.partition("=")
            listed[key] = value
    assert {m.group(1) for m in INTERPOLATION.finditer(text)} == set(listed)
    for key, value in listed.items():  # placeholders only, or a path
        assert value == "" or value.startswith("/srv/"), key
    for name, s in services().items():
        for key, value in s.get("environment", {}).items():
            if SECRET_NAME.search(key):
                m = INTERPOLATION.fullmatch(value)
                assert m and m.group(2) == ":?", (name, key)  # required, from .env
    assert not (COMPOSE_DIR / ".env").exists()
    collector_cfg = yaml.safe_load((COMPOSE_DIR / "collector.yaml").read_text("utf-8"))
    assert "password" not in collector_cfg["mqtt"] and "password" not in collector_cfg["influxdb"]


def test_only_the_broker_and_grafana_are_published() -> None:
    published = set()
    for s in services().values():
        for port in s.get("ports", []):
            host, _, container = str(port).rpartition(":")
            assert host == container  # same port outside
            published.add(int(container))
    assert published <= PUBLISHABLE and 3000 in published
    assert published & {1883, 8883}
    # Nothing else listens beyond the shared loopback.
    env = services()["influxdb"]["environment"]
    assert env["INFLUXDB_HTTP_BIND_ADDRESS"].startswith("127.0.0.1:")
    assert env["INFLUXDB_BIND_ADDRESS"].startswith("127.0.0.1:")
    listeners = [x.split() for x in (DEPLOY_MOSQUITTO / "netroom.conf").read_text(
        encoding="utf-8").splitlines() if x.startswith("listener ")]
    for listener in listeners:
        assert listener[2:] == ["127.0.0.1"] or int(listener[1]) in published, listener
    speed = yaml.safe_load((COMPOSE_DIR / "collector.yaml").read_text("utf-8"))
    assert speed["collector"]["speedtest"]["listen"].startswith("127.0.0.1:")


def test_mosquitto_mounts_the_tested_config() -> None:
    """The fragment tests/servers.py runs, in the conf.d of Debian's main file,
    and the users' file where netroom.conf's plugin reads it."""
    mounts = binds("mosquitto")
    assert mounts["/etc/mosquitto/conf.d/netroom.conf"] == DEPLOY_MOSQUITTO / "netroom.conf"
    assert "include_dir {d}/conf.d" in DEBIAN_MAIN
    conf = (DEPLOY_MOSQUITTO / "netroom.conf").read_text(encoding="utf-8")
    [users] = re.findall(r"^plugin_opt_config_file (\S+)$", conf, re.M)
    assert mounts[users] is None  # the operator's file, from .env
    [plugin] = re.findall(r"^plugin (\S+)$", conf, re.M)
    assert plugin.startswith("/usr/lib/x86_64-linux-gnu/")  # Debian's layout, hence Debian
    instr, froms = dockerfile("mosquitto.Dockerfile")
    assert froms[0].startswith("debian:12")
    run = " ".join(x for x in instr if x.startswith(("RUN ", "ARG ")))
    assert re.search(r'mosquitto=\$\{MOSQUITTO_VERSION\}', run)
    [version] = re.findall(r"ARG MOSQUITTO_VERSION=(\S+)", run)
    assert version.startswith("2.0.11-")  # the broker the tests run (docs/security.md)
    # Debian's main file is changed in one line only: the log to stdout.
    assert re.findall(r"sed -i '([^']*)'", run) == [r"s|^log_dest file .*|log_dest stdout|"]
    assert json.loads(instr[-1].removeprefix("CMD ")) == [
        "/usr/sbin/mosquitto", "-c", "/etc/mosquitto/mosquitto.conf"]


def test_grafana_mounts_the_tested_provisioning() -> None:
    mounts = binds("grafana")
    for kind in ("dashboards", "alerting"):
        assert mounts[f"/etc/grafana/provisioning/{kind}"] == PROVISIONING / kind
    provider = yaml.safe_load((PROVISIONING / "dashboards" / "netroom.yaml").read_text("utf-8"))
    assert mounts[provider["providers"][0]["options"]["path"]] == GENERATED
    # The data source: the tested file, with its read-only user uncommented.
    derived_dir = mounts["/etc/grafana/provisioning/datasources"]
    assert derived_dir == COMPOSE_DIR / "grafana" / "datasources"
    assert derived_dir is not None
    assert sorted(p.name for p in derived_dir.iterdir()) == ["netroom.yaml"]
    shipped_text = (PROVISIONING / "datasources" / "netroom.yaml").read_text("utf-8")
    assert "    # user: grafana\n" in shipped_text
    shipped = yaml.safe_load(shipped_text)
    derived = yaml.safe_load((derived_dir / "netroom.yaml").read_text("utf-8"))
    shipped["datasources"][0]["user"] = "grafana"
    shipped["datasources"][0]["secureJsonData"] = {"password": "$NETROOM_INFLUXDB_PASSWORD"}
    assert derived == shipped
    env = services()["grafana"]["environment"]
    assert env["NETROOM_INFLUXDB_PASSWORD"].startswith("${NETROOM_INFLUXDB_GRAFANA_PASSWORD:?")
    assert services()["influxdb"]["environment"]["INFLUXDB_READ_USER"] == "grafana"
    # The contact points expand these: each one is set.
    contact = (PROVISIONING / "alerting" / "netroom-contact-points.yaml").read_text("utf-8")
    for var in re.findall(r"\$(NETROOM_[A-Z_]+)", contact):
        assert var in env, var


def test_grafana_intranet_settings_are_the_documented_ones() -> None:
    """Every `[section] key = value` in the doc's table is set in compose as
    GF_SECTION_KEY (Grafana's documented environment override), and back."""
    doc = section(OPERATIONS.read_text(encoding="utf-8"), "Production stack")
    rows = re.findall(r"\| `\[(\w+)\] (\w+) = (\w+)` \| `(GF_\w+)=(\w+)` \|", doc)
    assert len(rows) >= 6
    documented = {}
    for sec, key, value, var, env_value in rows:
        assert var == f"GF_{sec}_{key}".upper() and value == env_value
        documented[var] = value
    env = services()["grafana"]["environment"]
    assert {k: v for k, v in env.items() if k.startswith("GF_") and
            k != "GF_SECURITY_ADMIN_PASSWORD"} == documented
    for var in ("GF_ANALYTICS_REPORTING_ENABLED", "GF_ANALYTICS_CHECK_FOR_UPDATES",
                "GF_ANALYTICS_CHECK_FOR_PLUGIN_UPDATES", "GF_SECURITY_DISABLE_GRAVATAR",
                "GF_NEWS_NEWS_FEED_ENABLED"):
        assert var in documented, var


def test_collector_image_installs_this_repository() -> None:
    instr, _ = dockerfile("collector.Dockerfile")
    setup = configparser.ConfigParser()
    setup.read(REPO / "setup.cfg", encoding="utf-8")
    packages = {p for p in setup["options.packages.find"]["include"].split() if "." not in p}
    copied: set[str] = set()
    for x in instr:
        if x.startswith("COPY "):
            copied.update(p.rstrip("/") for p in x.split()[1:-1])
    assert packages | {"setup.cfg", "pyproject.toml", "README.md"} <= copied
    assert any(x.startswith("RUN pip install") and "'.[collector]'" in x for x in instr)
    [cmd] = [x for x in instr if x.startswith("CMD ")]
    argv = json.loads(cmd.removeprefix("CMD "))
    assert argv[0] == "netroom-collector" and argv[1] == "--config"
    assert "netroom-collector = collector.__main__:main" in setup["options.entry_points"][
        "console_scripts"]
    assert binds("collector")[argv[2]] == COMPOSE_DIR / "collector.yaml"
    spool = yaml.safe_load((COMPOSE_DIR / "collector.yaml").read_text("utf-8"))
    volumes = {v["target"] for v in services()["collector"]["volumes"] if v["type"] == "volume"}
    assert spool["collector"]["spool_dir"] in volumes
    assert [x for x in instr if x.startswith("USER ")] == ["USER netroom"]


# What compose's collector config changes from config.yaml, and nothing more.
CHANGED: dict[str, dict[str, Any]] = {
    "mqtt": {"username": "netroom-collector"},
    "influxdb": {"username": "netroom", "create_database": False,
                 "retention": {"manage": False}},
    "collector": {"spool_dir": "/var/lib/netroom/spool"},
}


def test_collector_config_is_config_yaml_with_the_stack_changes() -> None:
    from collector.config import load

    base = yaml.safe_load((REPO / "config.yaml").read_text("utf-8"))
    derived = yaml.safe_load((COMPOSE_DIR / "collector.yaml").read_text("utf-8"))
    assert set(derived) == {"mqtt", "influxdb", "collector", "sites", "rules"}
    assert derived["sites"] == base["sites"] and derived["rules"] == base["rules"]
    for sec, changes in CHANGED.items():
        assert derived[sec] == {**base[sec], **changes}, sec
    cfg = load(COMPOSE_DIR / "collector.yaml")
    assert (cfg.mqtt.host, cfg.mqtt.port, cfg.mqtt.username) == ("127.0.0.1", 1883,
                                                                  "netroom-collector")
    assert cfg.influxdb.url == "http://127.0.0.1:8086" and cfg.influxdb.username == "netroom"
    env = services()["influxdb"]["environment"]
    assert (env["INFLUXDB_DB"], env["INFLUXDB_USER"]) == (cfg.influxdb.database, "netroom")


def doc_sql() -> list[str]:
    doc = section(OPERATIONS.read_text(encoding="utf-8"), "Production stack")
    return [m.group(2) for m in re.finditer(r"-execute ([\"'])(.+?)\1$", doc, re.M)
            if "grafana" in m.group(2)]


def test_read_only_user_of_the_doc_reads_and_cannot_write(
        influxd_factory: Callable[..., Influxd]) -> None:
    statements = doc_sql()
    assert statements == ["CREATE USER grafana WITH PASSWORD '...'",
                          'GRANT READ ON "netroom" TO "grafana"']
    server = influxd_factory(auth_enabled=True)
    server.post("CREATE USER admin WITH PASSWORD 'admin-pw' WITH ALL PRIVILEGES")
    server.auth = ("admin", "admin-pw")
    server.post("CREATE DATABASE netroom")
    server.write("metrics,site=sq-1,host=pc-01 cpu_percent=12.5 1700000000000", "netroom")
    password = secrets.token_urlsafe(16)
    for q in statements:
        server.post(q.replace("'...'", f"'{password}'"))
    server.auth = ("grafana", password)
    rows = server.query('SELECT "cpu_percent" FROM "metrics"', db="netroom")
    assert rows["results"][0]["series"][0]["values"] == [[1700000000000, 12.5]]
    refused: list[Callable[[], Any]] = [
        lambda: server.write("metrics,site=sq-1,host=pc-01 cpu_percent=99 1700000001000",
                             "netroom"),
        lambda: server.post('DROP MEASUREMENT "metrics"', db="netroom"),
        lambda: server.post("CREATE DATABASE other"),
    ]
    for attempt in refused:
        with pytest.raises(RuntimeError, match="HTTP 403"):
            attempt()
    server.auth = ("admin", "admin-pw")
    rows = server.query('SELECT count("cpu_percent") FROM "metrics"', db="netroom")
    assert rows["results"][0]["series"][0]["values"][0][1] == 1
