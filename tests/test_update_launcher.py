"""deploy/linux/netroom-agent-launch: the trial of a new version and its rollback.

The launcher is the real script, run by dash (Debian's /bin/sh, as strict a
POSIX shell as Kylin's and UOS's). The agents it starts are stand-ins: small
shell scripts in two fake venvs that do what a good, a crashing or a silent
build would do, so each ending of a trial is exercised in seconds. The real
agent's side (writing trial.ok once its metrics are accepted) and two real
builds are in tests/test_update_e2e.py.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
from harness import REPO
from servers import wait_until

from agent.update import files

LAUNCHER = REPO / "deploy" / "linux" / "netroom-agent-launch"

# A stand-in agent: records who it is, then does what $dir/mode says.
FAKE = """#!/bin/sh
dir=$(cd "$(dirname "$0")/.." && pwd -P)
me=$(basename "$dir")
trial=${NETROOM_UPDATE_TRIAL:-}
echo "$me pid=$$ prefix=$NETROOM_AGENT_PREFIX trial=$trial args=$*" >> "$dir/../ran"
trap 'echo "$me got TERM" >> "$dir/../ran"; exit 0' TERM
case $(cat "$dir/mode") in
    good) sleep 0.3; [ -z "$trial" ] || echo "version=$(cat "$dir/version")" > "$trial.ok" ;;
    crash) exit 3 ;;
    silent) ;;
esac
while :; do sleep 0.1; done
"""


def venv(prefix: Path, name: str, version: str, mode: str) -> Path:
    d = prefix / name
    (d / "bin").mkdir(parents=True)
    agent = d / "bin" / "netroom-agent"
    agent.write_text(FAKE)
    agent.chmod(0o755)
    (d / "mode").write_text(mode)
    (d / "version").write_text(version)
    return d


def setup(tmp_path: Path, new_mode: str, deadline_s: int = 600, starts: int = 0,
          previous: str = "venv-a") -> Path:
    """A prefix where version 2 (venv-b, behaving as ``new_mode``) was just
    staged over version 1 (venv-a, good)."""
    prefix = tmp_path / "prefix"
    a = venv(prefix, "venv-a", "1", "good")
    b = venv(prefix, "venv-b", "2", new_mode)
    (prefix / "venv").symlink_to(b)
    shutil.copy(LAUNCHER, prefix / "netroom-agent-launch")
    upd = prefix / files.DIR
    upd.mkdir()
    prev = a if previous == "venv-a" else prefix / previous
    (upd / files.TRIAL).write_text(f"version=2\nprevious={prev}\nprevious_version=1\n"
                                   f"deadline_s={deadline_s}\nstarts={starts}\n")
    return prefix


def launch(prefix: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NETROOM_")}
    return subprocess.Popen(["dash", str(prefix / "netroom-agent-launch"), "--config", "c.yaml"],
                            env=env, text=True, stderr=subprocess.PIPE)


def ran(prefix: Path) -> list[str]:
    p = prefix / "ran"
    return p.read_text().splitlines() if p.exists() else []


def starts(prefix: Path) -> int:
    return len([r for r in ran(prefix) if "pid=" in r])


def result(prefix: Path) -> dict[str, str]:
    return files.read_kv(str(prefix / files.DIR / files.RESULT))


def stop(p: subprocess.Popen[str]) -> tuple[int, str]:
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=30)
    return p.returncode, err


def test_without_a_trial_the_launcher_becomes_the_agent(tmp_path: Path) -> None:
    prefix = setup(tmp_path, "good")
    (prefix / files.DIR / files.TRIAL).unlink()
    p = launch(prefix)
    try:
        assert wait_until(lambda: len(ran(prefix)) == 1, 10)
        # exec: the same process, so systemd and the SysV pid file follow it.
        assert ran(prefix)[0] == f"venv-b pid={p.pid} prefix={prefix} trial= args=--config c.yaml"
    finally:
        code, _ = stop(p)
    assert code == 0


def test_a_version_that_reports_is_kept(tmp_path: Path) -> None:
    prefix = setup(tmp_path, "good")
    p = launch(prefix)
    try:
        trial = prefix / files.DIR / files.TRIAL
        assert wait_until(lambda: result(prefix).get("state") == "current"
                          and not trial.exists(), 10), ran(prefix)
        assert result(prefix)["version"] == "2"
        assert os.readlink(prefix / "venv") == str(prefix / "venv-b")
        assert ran(prefix) == [f"venv-b pid={ran(prefix)[0].split('pid=')[1].split()[0]} "
                               f"prefix={prefix} trial={trial} args=--config c.yaml"]
    finally:
        code, err = stop(p)
    # The launcher passed the SIGTERM on and left with the agent's status.
    assert code == 0 and ran(prefix)[-1] == "venv-b got TERM", err
    assert "version 2 reports: kept" in err


def test_a_version_that_crashes_is_rolled_back(tmp_path: Path) -> None:
    prefix = setup(tmp_path, "crash")
    p = launch(prefix)
    try:
        assert wait_until(lambda: any(r.startswith("venv-a") for r in ran(prefix)), 10)
        assert os.readlink(prefix / "venv") == str(prefix / "venv-a")
        assert result(prefix) | {"at": ""} == {
            "state": "rolled_back", "version": "2", "at": "",
            "reason": "exited with status 3 before reporting"}
        assert not (prefix / files.DIR / files.TRIAL).exists()
        # The old version runs in the launcher's own process, no trial.
        assert ran(prefix)[-1].startswith(f"venv-a pid={p.pid} ")
        assert "trial= " in ran(prefix)[-1]
    finally:
        code, err = stop(p)
    assert code == 0
    assert "version 2 rolled back to 1: exited with status 3 before reporting" in err


def test_a_version_that_does_not_report_is_stopped_at_the_deadline(tmp_path: Path) -> None:
    prefix = setup(tmp_path, "silent", deadline_s=2)
    p = launch(prefix)
    try:
        assert wait_until(lambda: any(r.startswith("venv-a") for r in ran(prefix)), 20)
        assert ran(prefix)[1] == "venv-b got TERM"  # stopped gently first
        assert result(prefix)["reason"] == "did not report within 2 s"
        assert os.readlink(prefix / "venv") == str(prefix / "venv-a")
    finally:
        stop(p)


def test_a_version_stopped_on_trial_goes_on_with_its_trial(tmp_path: Path) -> None:
    """A service stop (or a reboot) during the trial is no verdict: the next
    start continues it, counting starts; the fourth start rolls back."""
    prefix = setup(tmp_path, "silent")
    trial = prefix / files.DIR / files.TRIAL
    for n in (1, 2, 3):
        p = launch(prefix)
        assert wait_until(lambda: starts(prefix) == n, 10)  # noqa: B023 - waited for here
        code, _ = stop(p)
        assert code == 0
        kv = files.read_kv(str(trial))
        assert kv["starts"] == str(n) and kv["version"] == "2"
    assert os.readlink(prefix / "venv") == str(prefix / "venv-b")
    p = launch(prefix)
    try:
        # The launcher writes the result, then becomes the old version.
        assert wait_until(lambda: ran(prefix)[-1].startswith("venv-a "), 10)
        assert result(prefix) | {"at": ""} == {
            "state": "rolled_back", "version": "2", "at": "",
            "reason": "started 3 times without reporting"}
    finally:
        stop(p)


@pytest.mark.parametrize("starts", [0])
def test_a_trial_with_nothing_to_go_back_to_keeps_the_new_version(tmp_path: Path,
                                                                   starts: int) -> None:
    prefix = setup(tmp_path, "silent", starts=starts, previous="venv-gone")
    p = launch(prefix)
    try:
        assert wait_until(lambda: bool(ran(prefix)), 10)
        assert ran(prefix)[0].startswith(f"venv-b pid={p.pid} ")
        assert not (prefix / files.DIR / files.TRIAL).exists()
    finally:
        _, err = stop(p)
    assert "no previous version to go back to" in err
