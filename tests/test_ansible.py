"""deploy/ansible: the real ansible-playbook (ansible-core, a dev extra) runs
the role against this machine (connection local) with every location in a
temp prefix.

`--check --diff` with a change pending used to fail ("dest
'/var/tmp/netroom-bundle' must be an existing dir"): the folder the bundle
goes to is not made in check mode, so nothing that writes into it can be
simulated. Now check mode says what it would do, as a change, and touches
nothing.

The bundle is a stand-in: a real one needs the package index to build
(tests/test_deploy_bundle.py, NETROOM_TEST_BUNDLE=1). Its install.sh records
the arguments and the password file it was given, and makes what the role
checks afterwards (the conf dir, an init script answering `status`), so the
role's own work is what is tested: the decision, unpacking, the password
file, the stamp, the clean-up.
"""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from harness import REPO

ANSIBLE = REPO / "deploy" / "ansible"
# ansible-playbook of this interpreter's ansible-core, wherever pip put its scripts.
PLAYBOOK = [sys.executable, "-m", "ansible.cli.playbook"]
VERSION = "9.9.9"
INSTALL_SH = """#!/bin/bash
set -eu
printf '%s\\n' "$@" > "$NETROOM_TEST_RECORD"
while [ $# -gt 0 ]; do
    if [ "$1" = --password-file ]; then cp "$2" "$NETROOM_TEST_RECORD.password"; fi
    shift
done
mkdir -p "$NETROOM_CONF_DIR" "$NETROOM_INITD_DIR"
printf '#!/bin/sh\\nexit 0\\n' > "$NETROOM_INITD_DIR/netroom-agent"
chmod 755 "$NETROOM_INITD_DIR/netroom-agent"
"""


def bundle(tmp: Path) -> Path:
    top = tmp / "src" / f"netroom-agent-{VERSION}-linux"
    top.mkdir(parents=True)
    (top / "install.sh").write_text(INSTALL_SH)
    path = tmp / f"netroom-agent-{VERSION}-linux.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        tar.add(top, arcname=top.name)
    return path


def playbook(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    if importlib.util.find_spec("ansible") is None:
        pytest.fail("ansible-core is missing: pip install -e '.[dev]'", pytrace=False)
    root = tmp / "root"
    inventory = tmp / "inventory.ini"
    inventory.write_text(
        "[netroom_linux]\n"
        f"localhost ansible_connection=local ansible_python_interpreter={sys.executable} "
        "netroom_role=room netroom_host=pc-01\n"
        "[netroom_linux:vars]\nnetroom_site=sq-1\nnetroom_network=gov\n"
        "netroom_broker=127.0.0.1\n")
    extra = {
        "netroom_bundle": str(tmp / f"netroom-agent-{VERSION}-linux.tar.gz"),
        "netroom_mqtt_password": "pc01-secret",
        "netroom_remote_dir": str(root / "bundle"),
        "netroom_conf_dir": str(root / "etc"),
        "netroom_install_env": {"NETROOM_CONF_DIR": str(root / "etc"),
                                "NETROOM_INITD_DIR": str(root / "init.d"),
                                "NETROOM_TEST_RECORD": str(tmp / "install.args")},
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(HOME=str(tmp / "home"), ANSIBLE_NOCOLOR="1", ANSIBLE_LOCAL_TEMP=str(tmp / "lt"),
               ANSIBLE_REMOTE_TEMP=str(tmp / "rt"), ANSIBLE_RETRY_FILES_ENABLED="0",
               ANSIBLE_GATHERING="explicit")
    return subprocess.run([*PLAYBOOK, "-i", str(inventory), str(ANSIBLE / "agent.yml"),
                           "-e", json.dumps(extra), *args], cwd=ANSIBLE, env=env, text=True,
                          capture_output=True, timeout=300, check=False)


def recap(r: subprocess.CompletedProcess[str]) -> str:
    return next(ln for ln in r.stdout.splitlines() if ln.startswith("localhost ")
                and "changed=" in ln)


def test_check_mode_with_a_change_pending_says_so_and_touches_nothing(tmp_path: Path) -> None:
    bundle(tmp_path)
    r = playbook(tmp_path, "--check", "--diff")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "must be an existing dir" not in r.stdout
    assert f"check mode: would copy netroom-agent-{VERSION}-linux.tar.gz and run its " \
        "install.sh" in r.stdout
    assert "changed=1" in recap(r) and "failed=0" in recap(r)
    assert not (tmp_path / "root").exists()  # no bundle folder, no stamp
    assert not (tmp_path / "install.args").exists()


def test_install_then_check_mode_sees_nothing_pending_until_a_setting_changes(
        tmp_path: Path) -> None:
    bundle(tmp_path)
    r = playbook(tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    args = (tmp_path / "install.args").read_text().splitlines()
    assert args[args.index("--site") + 1] == "sq-1" and args[args.index("--role") + 1] == "room"
    assert args[args.index("--username") + 1] == "sq-1/pc-01"
    assert (tmp_path / "install.args.password").read_text() == "pc01-secret\n"
    assert (tmp_path / "root" / "etc" / "ansible.stamp").read_text().startswith(VERSION)
    assert not (tmp_path / "root" / "bundle").exists()  # the unpacked bundle is removed
    assert "pc01-secret" not in r.stdout

    r = playbook(tmp_path, "--check", "--diff")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "changed=0" in recap(r), r.stdout

    r = playbook(tmp_path, "--check", "--diff", "-e", "netroom_role=cadre")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "changed=1" in recap(r) and "cadre" in r.stdout
