"""One site id rule everywhere: the installers accept exactly the site ids the
collector's sites tree and the protocol accept (netroom.protocol.SITE_ID_RE).

install.sh runs for real (it validates before touching anything); the
PowerShell and Ansible patterns cannot run here and are read from the files
and checked against the same pattern, as their documented contract.
"""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from netroom import protocol

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
SITE = protocol.SITE_ID_RE.pattern.removesuffix(r"\Z")


def test_powershell_and_ansible_use_the_protocol_site_pattern() -> None:
    ps1 = (DEPLOY / "windows/install.ps1").read_text(encoding="utf-8")
    assert f"$SiteRe = '^{SITE}$'" in ps1
    assert "-cnotmatch $SiteRe" in ps1  # case-sensitive: Sq_1 is refused
    tasks = (DEPLOY / "ansible/roles/netroom_agent/tasks/main.yml").read_text()
    assert f"netroom_site is match('^{SITE}$')" in tasks
    assert f"SITE_RE='^{SITE}$'" in (DEPLOY / "linux/install.sh").read_text()


@pytest.mark.parametrize("site,ok", [("sq-1", True), ("Sq_1", False), ("sq.1", False),
                                     ("-sq", False), ("a" * 64, True), ("a" * 65, False)])
def test_install_sh_accepts_the_site_ids_the_collector_accepts(site: str, ok: bool) -> None:
    assert bool(protocol.SITE_ID_RE.fullmatch(site)) is ok
    # --network is wrong on purpose: validation (which comes before anything is
    # touched) always stops the script, at the site or right after it.
    r = subprocess.run(["bash", str(DEPLOY / "linux/install.sh"), "--site", site, "--host",
                        "pc-1", "--network", "lan", "--role", "room", "--broker", "127.0.0.1"],
                       capture_output=True, text=True, check=False, timeout=30)
    assert r.returncode != 0
    said = "--site: must be" if not ok else "--network: must be gov or internet"
    assert re.search(re.escape(said), r.stderr), r.stderr
