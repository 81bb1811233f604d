"""The update's files under ``<prefix>/update/``, shared with shell scripts.

``trial`` (written by ``install.sh --update``, then by the launcher): the
new version on probation; ``trial.ok`` (written by that new version once the
broker accepted its first metrics): it reports; ``result`` (written by the
launcher): how the last update ended. All are ``key=value`` lines, so that a
POSIX shell reads and writes them without a JSON parser.
"""
from __future__ import annotations

import os
from typing import NamedTuple

DIR = "update"
TRIAL = "trial"
TRIAL_OK = "trial.ok"
RESULT = "result"
WORK = "work"  # downloads and the unpacked bundle; emptied before each try
# Set by the launcher for the agent it starts: the install's prefix, and
# during a trial the trial file's path.
PREFIX_ENV = "NETROOM_AGENT_PREFIX"
TRIAL_ENV = "NETROOM_UPDATE_TRIAL"


class Result(NamedTuple):
    """``result``: ``state`` "current" (the update took) or "rolled_back"."""

    state: str
    version: str
    reason: str


def update_dir(prefix: str) -> str:
    return os.path.join(prefix, DIR)


def read_kv(path: str) -> dict[str, str]:
    """A key=value file; {} when missing or unreadable."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return {}
    return dict(line.split("=", 1) for line in lines if "=" in line)


def read_result(prefix: str) -> Result | None:
    kv = read_kv(os.path.join(update_dir(prefix), RESULT))
    if kv.get("state") not in ("current", "rolled_back") or not kv.get("version"):
        return None
    return Result(kv["state"], kv["version"], kv.get("reason", ""))


def confirm(trial_path: str, version: str) -> bool:
    """Tell the launcher that ``version`` reports (True), if ``trial_path``
    is the trial of that version."""
    if read_kv(trial_path).get("version") != version:
        return False
    with open(trial_path + ".ok.tmp", "w", encoding="utf-8") as f:
        f.write(f"version={version}\n")
    os.replace(trial_path + ".ok.tmp", trial_path + ".ok")
    return True
