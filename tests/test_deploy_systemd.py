"""deploy/systemd/: the unit files, checked by systemd's own tools.

systemd is not PID 1 here (and must not be), so the units are not started;
`systemd-analyze verify` and `systemd-analyze security --offline` read them
as systemd 252 would. They run against a temporary root holding the units,
this machine's stock unit directory (for sysinit.target and friends) and
stand-in executables at the ExecStart paths (verify insists they exist).
"""
from __future__ import annotations

import configparser
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from harness import REPO

UNITS = REPO / "deploy" / "systemd"
ANALYZE = shutil.which("systemd-analyze")
STOCK_UNITS = next((p for p in (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system"))
                    if (p / "sysinit.target").exists()), None)
pytestmark = pytest.mark.skipif(
    ANALYZE is None or STOCK_UNITS is None,
    reason="systemd-analyze not installed (Debian: apt-get install systemd; it need not run)")
NAMES = ("netroom-agent.service", "netroom-collector.service")


def exec_start(unit: str) -> list[str]:
    line = next(x for x in (UNITS / unit).read_text().splitlines() if x.startswith("ExecStart="))
    return line.split("=", 1)[1].split()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    assert STOCK_UNITS is not None
    shutil.copytree(STOCK_UNITS, tmp_path / "usr/lib/systemd/system", symlinks=True)
    (tmp_path / "etc/systemd/system").mkdir(parents=True)
    for name in NAMES:
        shutil.copy(UNITS / name, tmp_path / "etc/systemd/system" / name)
        exe = tmp_path / exec_start(name)[0].lstrip("/")
        exe.parent.mkdir(parents=True, exist_ok=True)
        exe.write_text("#!/bin/sh\n")
        exe.chmod(0o755)
    return tmp_path


@pytest.mark.parametrize("name", NAMES)
def test_verify_is_clean(root: Path, name: str) -> None:
    """No errors and no warnings (an unknown or misplaced key is a warning)."""
    assert ANALYZE is not None
    p = subprocess.run([ANALYZE, f"--root={root}", "verify",
                        str(root / "etc/systemd/system" / name)],
                       capture_output=True, text=True, timeout=60, check=False)
    assert p.returncode == 0, p.stderr
    assert p.stderr.strip() == "" and p.stdout.strip() == ""


@pytest.mark.parametrize("name", NAMES)
def test_hardening_exposure_is_low(name: str) -> None:
    """systemd's own score: 0 (locked down) to 10 (unprotected); stock units are ~9."""
    assert ANALYZE is not None
    p = subprocess.run([ANALYZE, "security", "--offline=true", str(UNITS / name)],
                       capture_output=True, text=True, timeout=60, check=False)
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", p.stdout)
    assert m, p.stdout[-2000:] + p.stderr
    assert float(m.group(1)) <= 3.0


def test_exec_start_runs_the_console_scripts_with_the_config() -> None:
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    scripts = {line.split("=")[0].strip()
               for line in cfg["options.entry_points"]["console_scripts"].splitlines()
               if line.strip()}
    for name in NAMES:
        argv = exec_start(name)
        program = name.removesuffix(".service")
        if program == "netroom-agent":
            # The agent starts through its launcher (self-update trials), which
            # runs the venv's console script of that name.
            assert argv[0] == "/opt/netroom/netroom-agent-launch"
            launcher = (REPO / "deploy" / "linux" / "netroom-agent-launch").read_text()
            assert '"$PREFIX/venv/bin/netroom-agent" "$@"' in launcher
        else:
            assert argv[0] == f"/opt/netroom/venv/bin/{program}"
        assert program in scripts
        assert argv[1:] == ["--config", "/etc/netroom/config.yaml"]


def test_state_directories_are_where_the_programs_write(monkeypatch: pytest.MonkeyPatch) -> None:
    """The agent (root) writes /var/lib/netroom by default; the collector, as user
    netroom, must be told spool_dir: /var/lib/netroom/spool, which the unit says."""
    from agent import config as agent_config

    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    agent_unit = (UNITS / "netroom-agent.service").read_text()
    assert "\nStateDirectory=netroom\n" in agent_unit
    assert agent_config.default_state_dir() == "/var/lib/netroom"
    collector_unit = (UNITS / "netroom-collector.service").read_text()
    assert "\nUser=netroom\n" in collector_unit
    assert "\nStateDirectory=netroom/spool\n" in collector_unit
    assert "spool_dir: /var/lib/netroom/spool" in collector_unit
