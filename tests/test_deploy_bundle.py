"""deploy/linux/: the offline agent bundle and its installer.

The checks of install.sh's arguments, of the config template and of the
scripts' syntax run always, offline. Building a bundle needs the package
index (`pip download` of psutil, paho-mqtt, PyYAML, speedtest-cli, and
setuptools for building netroom's own wheel), which tests must not contact,
so the end-to-end test (build, install into a temp prefix, print a round,
publish through the SysV fallback to a loopback broker, upgrade, uninstall)
runs only with NETROOM_TEST_BUNDLE=1:

    NETROOM_TEST_BUNDLE=1 python3 -m pytest -q tests/test_deploy_bundle.py
"""
from __future__ import annotations

import ensurepip
import json
import os
import shutil
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path
from typing import Callable

import paho.mqtt.client as mqtt
import pytest
from harness import REPO
from paho.mqtt.enums import CallbackAPIVersion
from servers import Mosquitto, ProductionMosquitto, wait_until

from agent.config import load

LINUX = REPO / "deploy" / "linux"
TEMPLATE = REPO / "deploy" / "agent.yaml.in"


def env_for(root: Path) -> dict[str, str]:
    """install.sh's locations, all moved under ``root``."""
    names = ("PREFIX", "CONF_DIR", "STATE_DIR", "UNIT_DIR", "INITD_DIR", "RUN_DIR", "LOG_DIR")
    out = {k: v for k, v in os.environ.items() if not k.startswith("NETROOM_")}
    out.update({f"NETROOM_{n}": str(root / n.lower()) for n in names})
    return out


def install(script: Path, root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(script), *args], env=env_for(root), text=True,
                          capture_output=True, timeout=300, check=False)


GOOD = ["--site", "sq-1", "--network", "gov", "--role", "room", "--broker", "127.0.0.1"]


@pytest.mark.parametrize(("args", "option"), [
    (["--site", "sq 1", *GOOD[2:]], "--site"),
    (["--site", "../x", *GOOD[2:]], "--site"),
    ([*GOOD[:2], "--network", "lan", *GOOD[4:]], "--network"),
    ([*GOOD[:4], "--role", "boss", *GOOD[6:]], "--role"),
    (GOOD[:6], "--broker"),
    ([*GOOD, "--port", "70000"], "--port"),
    ([*GOOD, "--broker", "x;rm -rf /"], "--broker"),
    ([*GOOD, "--ca", "/nonexistent/ca.crt"], "--ca"),
    ([*GOOD, "--init", "upstart"], "--init"),
    ([], "--site"),  # nothing to keep and nothing given
    ([*GOOD, "--update-keys", "/nonexistent/release.pub"], "--update-keys"),
    # --update is the agent's own: it names the running agent's config, nothing else.
    (["--update"], "--config"),
    (["--update", "--config", "/nonexistent/config.yaml"], "--config"),
    (["--update", "--config", "/etc/hostname", *GOOD], "--update"),
    (["--update", "--config", "/etc/hostname", "--trial-deadline", "soon"], "--trial-deadline"),
    (["--config", "/etc/hostname"], "--config"),
])
def test_install_sh_rejects_bad_arguments_before_touching_anything(
        tmp_path: Path, args: list[str], option: str) -> None:
    p = install(LINUX / "install.sh", tmp_path, *args)
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("install.sh: error: ")
    assert option in lines[0]
    assert list(tmp_path.iterdir()) == []


def test_install_sh_refuses_a_keys_file_that_holds_no_key(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.write_text("wtI6U4Gi7nDxt/BcLbWaNJIpMeUM6j4xyK+Zc65+LDY=\n-----BEGIN PRIVATE KEY-----\n")
    p = install(LINUX / "install.sh", tmp_path / "root", *GOOD, "--update-keys", str(keys))
    assert p.returncode == 2
    assert p.stderr.strip() == (f"install.sh: error: --update-keys: '{keys}' holds a line that "
                                "is not a release public key: '-----BEGIN PRIVATE KEY-----'")
    assert not (tmp_path / "root").exists()


def render(values: dict[str, str]) -> str:
    text = TEMPLATE.read_text(encoding="utf-8")
    for key, value in values.items():
        text = text.replace(f"@{key}@", value)
    return text


def test_template_renders_a_config_the_agent_accepts(tmp_path: Path) -> None:
    """The placeholders install.sh and install.ps1 fill make a valid agent config."""
    ca = tmp_path / "ca.crt"
    ca.write_text("not checked by the loader, only its existence\n")
    text = render({
        "BROKER": "mqtt.example.internal", "PORT": "8883", "SITE": "sq-1",
        "NETWORK": "internet", "ROLE": "cadre", "STATE_DIR": r"C:\ProgramData\netroom",
        "MQTT_EXTRA": f"  username: 'sq-1'\n  tls:\n    ca: '{ca}'",
        "AGENT_EXTRA": "  host: 'pc-07'",
    })
    assert "@" not in text.replace("@example", "")
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    cfg = load(path)
    assert (cfg.site, cfg.network, cfg.role, cfg.host) == ("sq-1", "internet", "cadre", "pc-07")
    assert (cfg.mqtt.host, cfg.mqtt.port, cfg.mqtt.username) == (
        "mqtt.example.internal", 8883, "sq-1")
    assert cfg.mqtt.tls is not None and cfg.mqtt.tls.ca == str(ca)
    # Single quotes keep a Windows path's backslashes as they are.
    assert cfg.state_dir == "C:\\ProgramData\\netroom"


def test_template_without_extras(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(render({"BROKER": "192.0.2.7", "PORT": "1883", "SITE": "007",
                            "NETWORK": "gov", "ROLE": "room", "STATE_DIR": "/var/lib/netroom",
                            "MQTT_EXTRA": "", "AGENT_EXTRA": ""}), encoding="utf-8")
    cfg = load(path)
    # A numeric-looking site id stays a string (quoted in the template).
    assert (cfg.site, cfg.mqtt.port, cfg.mqtt.tls, cfg.state_dir) == (
        "007", 1883, None, "/var/lib/netroom")


@pytest.mark.parametrize(("shell", "script"), [
    ("bash", "install.sh"), ("bash", "build-bundle.sh"), ("sh", "netroom-agent.init")])
def test_scripts_parse(shell: str, script: str) -> None:
    p = subprocess.run([shell, "-n", str(LINUX / script)], capture_output=True, text=True,
                       check=False)
    assert p.returncode == 0, p.stderr


# A password every shell would mangle or run: $, $(...), `...`, quotes, ;, \.
HOSTILE = "p$HOME$(touch MARK1)`touch MARK2`;x'y\"z\\$((1+1))"


def shell_function(script: Path, name: str) -> str:
    """The text of shell function ``name`` in ``script`` (up to its closing brace)."""
    lines = script.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{name}() {{"))
    end = next(i for i in range(start, len(lines)) if lines[i] == "}")
    return "\n".join(lines[start:end + 1]) + "\n"


def test_install_sh_takes_no_password_from_the_environment(tmp_path: Path) -> None:
    """`sudo NETROOM_MQTT_PASSWORD=... ./install.sh` shows the password in the
    process list while sudo runs: refused before anything is touched."""
    env = {**env_for(tmp_path / "root"), "NETROOM_MQTT_PASSWORD": "secret-in-ps"}
    p = subprocess.run(["bash", str(LINUX / "install.sh"), *GOOD], env=env, text=True,
                       capture_output=True, timeout=60, check=False)
    assert p.returncode == 2, p.stderr
    assert p.stderr.startswith("install.sh: error: NETROOM_MQTT_PASSWORD: ")
    assert "--password-file" in p.stderr and "secret-in-ps" not in p.stderr
    assert not (tmp_path / "root").exists()


@pytest.mark.parametrize(("extra", "stdin", "option"), [
    (["--credentials", "{creds}"], "", "--credentials: needs --host"),
    (["--host", "pc-09", "--credentials", "{creds}"], "", "no line for sq-1/pc-09"),
    (["--host", "pc-01", "--credentials", "{creds}", "--password-file", "-"], "x\n",
     "not both"),
    (["--host", "pc-01", "--credentials", "{creds}", "--username", "sq-2/pc-01"], "",
     "--username: must be sq-1/pc-01"),
    (["--password-file", "-"], "", "nothing on standard input"),
    (["--password-file", "-"], "'quoted at both ends'\n", "cannot be stored in agent.env"),
    (["--password-file", "-"], "it's a back\\slash\n", "cannot be stored in agent.env"),
    (["--password-file", "-"], "tab\there\n", "control character"),
    (["--username", "sq-1/pc 01"], "", "--username"),
])
def test_install_sh_checks_passwords_before_touching_anything(
        tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, extra: list[str],
        stdin: str, option: str) -> None:
    creds = tmp_path_factory.mktemp("creds") / "sq-1.txt"
    creds.write_text("sq-1/pc-01:Abc123\nsq-1/pc-02:Def456\n")
    args = [a.replace("{creds}", str(creds)) for a in extra]
    p = subprocess.run(["bash", str(LINUX / "install.sh"), *GOOD, *args], input=stdin,
                       env=env_for(tmp_path), text=True, capture_output=True, timeout=60,
                       check=False)
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("install.sh: error: ")
    assert option in lines[0]
    assert "Abc123" not in p.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("password", [
    "plain", "with $dollar and $(subshell) and `tick`", "back\\slash \\n", "  spaces  ",
    '"double"', "it's", "a'b\"c", HOSTILE.replace("\\", ""), "#hash;semi", "x=y=z",
])
def test_agent_env_written_by_install_sh_reads_back_in_the_init_script(
        tmp_path: Path, password: str) -> None:
    """install.sh's writer and netroom-agent.init's reader, both taken from the
    real scripts, agree on every password install.sh accepts; nothing runs."""
    writer = shell_function(LINUX / "install.sh", "env_value")
    reader = shell_function(LINUX / "netroom-agent.init", "load_env")
    env_file = tmp_path / "agent.env"
    (tmp_path / "pw").write_text(password + "\n")
    w = subprocess.run(["bash", "-c", writer + textwrap.dedent("""
        IFS= read -r p < "$1"
        printf 'NETROOM_MQTT_PASSWORD=%s\\n' "$(env_value "$p")" > "$2"
        """), "bash", str(tmp_path / "pw"), str(env_file)], capture_output=True, text=True,
        check=False, cwd=tmp_path)
    assert w.returncode == 0, w.stderr
    r = subprocess.run(["sh", "-c", reader + 'load_env "$1"; printf %s "$NETROOM_MQTT_PASSWORD"',
                        "sh", str(env_file)], capture_output=True, text=True, check=False,
                       cwd=tmp_path, env={"PATH": os.environ["PATH"]})
    assert r.returncode == 0, r.stderr
    assert r.stdout == password
    assert sorted(p.name for p in tmp_path.iterdir()) == ["agent.env", "pw"]  # no MARK*


def render_init(root: Path) -> Path:
    """deploy/linux/netroom-agent.init with install.sh's substitutions under ``root``."""
    text = (LINUX / "netroom-agent.init").read_text()
    for old, new in {"/opt/netroom": root / "prefix", "/etc/netroom": root / "conf",
                     "/var/lib/netroom": root / "state", "@RUN_DIR@": root / "run",
                     "@LOG_DIR@": root / "log"}.items():
        text = text.replace(old, str(new))
    path = root / "initd" / "netroom-agent"
    path.parent.mkdir(parents=True)
    path.write_text(text)
    path.chmod(0o755)
    return path


def test_init_script_reads_agent_env_as_data(tmp_path: Path) -> None:
    """The real SysV script starts the real agent with a hostile agent.env: the
    password reaches the broker byte for byte (it refuses any other) and none
    of the $(...) or `...` in the file runs, as root would have run them."""
    root = tmp_path / "root"
    marks = root / "marks"
    marks.mkdir(parents=True)
    hostile_file = HOSTILE.replace("MARK", str(marks / "mark"))
    broker = ProductionMosquitto(workdir=tmp_path / "broker", pcs=[("sq-1", "pc-01")])
    broker.set_password("sq-1/pc-01", hostile_file)
    broker.start()
    (root / "conf").mkdir(parents=True)
    bin_dir = root / "prefix" / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    script = bin_dir / "netroom-agent"  # what pip's console script does, for this checkout
    script.write_text(f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {str(REPO)!r})\n"
                      "from agent.__main__ import main\nsys.exit(main())\n")
    script.chmod(0o755)
    shutil.copy(LINUX / "netroom-agent-launch", root / "prefix")  # as install.sh puts it
    (root / "conf" / "config.yaml").write_text(json.dumps({
        "mqtt": {"host": broker.host, "port": broker.port, "username": "sq-1/pc-01"},
        "agent": {"site": "sq-1", "host": "pc-01", "network": "gov", "role": "room",
                  "interval": 1, "state_dir": str(root / "state")}}))
    (root / "conf" / "agent.env").write_text(textwrap.dedent(f"""\
        # hand-edited, as found on a PC
        NETROOM_MQTT_PASSWORD={hostile_file}
        NETROOM_IGNORED='$(touch {marks}/mark3)'
        $(touch {marks}/mark4)
        PATH=/nonexistent
        LD_PRELOAD=/nonexistent/evil.so
        """))
    initd = render_init(root)
    env = {k: v for k, v in os.environ.items() if not k.startswith("NETROOM_")}
    collector = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    collector.username_pw_set("netroom-collector", broker.passwords["netroom-collector"])
    got: list[str] = []
    collector.on_message = lambda c, u, m: got.append(m.topic)
    collector.connect(broker.host, broker.port)
    collector.subscribe("netroom/v1/#", qos=1)
    collector.loop_start()
    try:
        start = subprocess.run(["sh", str(initd), "start"], env=env, capture_output=True,
                               text=True, timeout=60, check=False)
        assert start.returncode == 0, start.stderr
        log = root / "log" / "netroom-agent.log"
        assert wait_until(lambda: "netroom/v1/sq-1/pc-01/metrics" in got, 60), \
            log.read_text() if log.exists() else "no log"
        status = subprocess.run(["sh", str(initd), "status"], env=env, capture_output=True,
                                text=True, check=False)
        assert status.returncode == 0, status.stdout
    finally:
        stop = subprocess.run(["sh", str(initd), "stop"], env=env, capture_output=True,
                              text=True, timeout=60, check=False)
        collector.disconnect()
        collector.loop_stop()
        broker.kill()
    assert stop.returncode == 0, stop.stderr
    assert list(marks.iterdir()) == []
    assert hostile_file not in (root / "log" / "netroom-agent.log").read_text()


def subscriber(mosq: Mosquitto, topic: str) -> tuple[mqtt.Client, list[mqtt.MQTTMessage]]:
    got: list[mqtt.MQTTMessage] = []
    c = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    c.on_message = lambda cl, u, m: got.append(m)
    c.connect(mosq.host, mosq.port)
    c.subscribe(topic, qos=1)
    c.loop_start()
    return c, got


@pytest.mark.skipif(os.environ.get("NETROOM_TEST_BUNDLE") != "1",
                    reason="building the bundle downloads wheels from the package index; "
                           "set NETROOM_TEST_BUNDLE=1 to run it")
def test_bundle_build_install_publish_upgrade_uninstall(tmp_path: Path,
                                                        mosquitto: Mosquitto) -> None:
    build = subprocess.run(["bash", str(LINUX / "build-bundle.sh"), "--current-only",
                            "--python", sys.executable, "--out", str(tmp_path / "dist")],
                           capture_output=True, text=True, timeout=600, check=False)
    assert build.returncode == 0, build.stderr[-3000:]
    (tarball,) = (tmp_path / "dist").glob("netroom-agent-*-linux.tar.gz")
    with tarfile.open(tarball) as tar:
        tar.extractall(tmp_path / "x", filter="data")
    (bundle,) = (tmp_path / "x").iterdir()
    wheels = sorted(p.name.split("-")[0].lower() for p in (bundle / "wheels").glob("*.whl"))
    assert wheels == ["ecdsa", "netroom", "paho_mqtt", "pip", "psutil", "pyyaml", "six",
                      "speedtest_cli"]

    root = tmp_path / "root"
    first = install(bundle / "install.sh", root, *GOOD, "--port", str(mosquitto.port),
                    "--host", "pc-01", "--init", "sysv")
    assert first.returncode == 0, first.stderr
    venv = root / "prefix" / "venv"
    config = root / "conf_dir" / "config.yaml"
    assert load(config).state_dir == str(root / "state_dir")

    # A printed round: JSON lines for this site and host, nothing sent.
    printed = subprocess.run([str(venv / "bin" / "netroom-agent"), "--config", str(config),
                              "--once", "--print"], capture_output=True, text=True,
                             timeout=120, check=False)
    assert printed.returncode == 0, printed.stderr
    lines = [json.loads(line) for line in printed.stdout.splitlines()]
    kinds = {line["topic"].split("/")[-1] for line in lines}
    assert {"inventory", "metrics"} <= kinds
    assert all(line["topic"].startswith("netroom/v1/sq-1/pc-01/") for line in lines)
    assert all(line["payload"]["site"] == "sq-1" for line in lines)

    # install.sh started the agent through the SysV script: it reaches the broker.
    client, got = subscriber(mosquitto, "netroom/v1/sq-1/pc-01/#")
    initd = root / "initd_dir" / "netroom-agent"
    try:
        assert wait_until(lambda: any(m.topic.endswith("/metrics") for m in got), 60), \
            (root / "log_dir" / "netroom-agent.log").read_text()
        status = subprocess.run([str(initd), "status"], capture_output=True, text=True,
                                check=False)
        assert status.returncode == 0, status.stdout
        # Upgrade: no arguments keeps the config and switches the venv.
        before = os.readlink(venv)
        again = install(bundle / "install.sh", root)
        assert again.returncode == 0, again.stderr
        assert "kept" in again.stdout
        assert os.readlink(venv) != before and Path(before).is_dir()  # rollback kept
        assert load(config).host == "pc-01"
    finally:
        stopped = subprocess.run([str(initd), "stop"], capture_output=True, check=False,
                                 timeout=60)

        def states() -> list[str]:
            return [json.loads(m.payload)["state"] for m in got if m.topic.endswith("/status")]

        # The stop published "offline" (retained) before the agent exited.
        assert wait_until(lambda: states()[-1:] == ["offline"], 20)
        client.disconnect()
        client.loop_stop()
    assert stopped.returncode == 0
    assert states()[-1] == "offline", states()
    gone = install(bundle / "install.sh", root, "--uninstall", "--purge")
    assert gone.returncode == 0, gone.stderr
    assert not (root / "prefix").exists() and not (root / "conf_dir").exists()
    assert not initd.exists()


def offline_bundle(tmp_path: Path, version: str = "",
                   edit: Callable[[Path], None] | None = None) -> Path:
    """A bundle holding only netroom's wheel and pip's, made without the index
    (which tests must not contact): netroom's wheel built from a copy of the
    tree with the installed setuptools, pip's the one ensurepip carries. The
    other files are build-bundle.sh's list. ``version``: build the tree as
    that version (tests/test_update_e2e.py); ``edit(src)``: change the copy
    first (a broken build)."""
    src = tmp_path / f"src{version}"
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(
        ".git", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", "demo-data", "tests"))
    if version:
        init = src / "netroom" / "__init__.py"
        init.write_text(init.read_text().replace('__version__ = "',
                                                 f'__version__ = "{version}"  # '))
    if edit is not None:
        edit(src)
    bundle = tmp_path / (f"netroom-agent-{version}-linux" if version else "bundle")
    wheels = bundle / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--no-build-isolation", "--no-index", "-w", str(wheels), str(src)],
                   check=True, capture_output=True, timeout=300)
    (pip_wheel,) = (Path(ensurepip.__file__).parent / "_bundled").glob("pip-*.whl")
    shutil.copy(pip_wheel, wheels)
    for f in (LINUX / "install.sh", LINUX / "netroom-agent.init",
              LINUX / "netroom-agent-launch", TEMPLATE,
              REPO / "deploy" / "systemd" / "netroom-agent.service",
              REPO / "docs" / "operations.md"):
        shutil.copy(f, bundle)
    shutil.copy(REPO / "config.yaml", bundle / "config.example.yaml")
    (bundle / "VERSION").write_text(
        subprocess.run([sys.executable, "-c", "import netroom; print(netroom.__version__)"],
                       cwd=src, capture_output=True, text=True, check=True).stdout)
    shutil.rmtree(src)
    return bundle


def test_system_packages_install_uses_the_distributions_psutil_and_yaml(
        tmp_path: Path) -> None:
    """LoongArch and MIPS PCs have no psutil or PyYAML wheels: --system-packages
    builds the venv on the system's packages and takes only what they lack from
    the bundle. Here the test's own Python stands for the distribution's (it
    has psutil, PyYAML, paho-mqtt and speedtest-cli; the bundle has none)."""
    bundle = offline_bundle(tmp_path)
    root = tmp_path / "root"
    quiet = ["--init", "none", "--no-start", "--python", sys.executable]
    # Without the option, pip finds no psutil wheel and says what would do.
    plain = install(bundle / "install.sh", root, *GOOD, "--host", "pc-01", *quiet)
    assert plain.returncode == 1
    assert "--system-packages" in plain.stderr and "python3-psutil" in plain.stderr
    first = install(bundle / "install.sh", root, *GOOD, "--host", "pc-01", *quiet,
                    "--system-packages")
    assert first.returncode == 0, first.stderr
    venv = root / "prefix" / "venv"
    where = subprocess.run([str(venv / "bin" / "python"), "-c",
                            "import psutil, yaml; print(psutil.__file__); print(yaml.__file__)"],
                           capture_output=True, text=True, check=True).stdout.split()
    assert all(not p.startswith(str(root)) for p in where), where  # the system's own
    printed = subprocess.run([str(venv / "bin" / "netroom-agent"), "--config",
                              str(root / "conf_dir" / "config.yaml"), "--once", "--print"],
                             capture_output=True, text=True, timeout=120, check=False)
    assert printed.returncode == 0, printed.stderr
    assert {"inventory", "metrics"} <= {json.loads(line)["topic"].rsplit("/", 1)[1]
                                        for line in printed.stdout.splitlines()}
    # An upgrade without options keeps the mode (it would fail without it).
    again = install(bundle / "install.sh", root, *quiet)
    assert again.returncode == 0, again.stderr
    assert "system's psutil" in again.stdout


def test_system_packages_install_names_the_missing_package(tmp_path: Path) -> None:
    """A Python without psutil or PyYAML: one line naming the packages to install,
    before anything is installed."""
    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    bundle = offline_bundle(tmp_path)
    root = tmp_path / "root"
    p = install(bundle / "install.sh", root, *GOOD, "--host", "pc-01", "--init", "none",
                "--no-start", "--python", str(bare / "bin" / "python"), "--system-packages")
    assert p.returncode == 1
    lines = p.stderr.splitlines()
    assert len(lines) == 1 and "python3-psutil python3-yaml" in lines[0], p.stderr
    assert not (root / "prefix" / "venv").exists()
