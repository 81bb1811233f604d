"""The agent's side of an update: compare, stage in a child, restart, confirm.

The settings name the version a PC should run (``agent.update``, from the
centre: per unit, site or host, so one site can go first). While it is not
the running one, the ``update`` job runs every ``check_interval`` (plus
jitter) and stages it in a child process (``python -m agent.update``). When
that succeeds the agent stops as on SIGTERM and re-executes the launcher,
which starts the new version on trial (deploy/linux/netroom-agent-launch):
it must get a metrics message accepted by the broker within
``deadline`` seconds (``confirm``), or the launcher goes back to this one
and writes why in ``<prefix>/update/result``. A version rolled back is not
tried again until the settings name another.

What the PC reports, in every ``online`` status while a version is named:
``update_state`` (netroom.protocol), ``update_version``, ``update_error``.
"""
from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from typing import Any, Callable, Mapping

import netroom
from agent.collectors.base import Job
from agent.config import AgentConfig
from agent.update import files
from netroom import protocol

log = logging.getLogger(__name__)

LAUNCHER = "netroom-agent-launch"  # in the prefix: deploy/linux/install.sh puts it there
CHILD_TIMEOUT_S = 1800.0
MAX_BACKOFF_S = 86400.0


class Updater:
    """Collector of the ``status`` kind for the ``update`` job.

    ``body()``: the online status to send after a try; ``env``: the process
    environment (the launcher's variables). ``staged`` turns True once a
    new version waits for the restart.
    """

    kind = "status"

    def __init__(self, cfg: AgentConfig, config_path: str, body: Callable[[], dict[str, Any]],
                 env: Mapping[str, str] = os.environ) -> None:
        self.cfg = cfg
        self.config_path = os.path.abspath(config_path)
        self.body = body
        self.prefix = env.get(files.PREFIX_ENV, "")
        self.trial = env.get(files.TRIAL_ENV, "")
        self.result = files.read_result(self.prefix) if self.prefix else None
        self.staged = False
        self.error = ""
        self._failures = 0
        self._next_try = 0.0
        self._lock = threading.Lock()

    def use(self, cfg: AgentConfig) -> None:
        """New settings: a new version named starts afresh."""
        with self._lock:
            if cfg.update.version != self.cfg.update.version:
                self.error, self._failures, self._next_try = "", 0, 0.0
            self.cfg = cfg

    @property
    def target(self) -> str:
        return self.cfg.update.version

    def unsupported(self) -> str:
        """Why this install cannot update itself, "" if it can."""
        if sys.platform != "linux":
            return "self-update runs on Linux installs; update this PC with its installer"
        if not self.prefix:
            return ("not started by the launcher of an install.sh install "
                    f"({files.PREFIX_ENV} unset)")
        if not os.path.isfile(os.path.join(self.prefix, LAUNCHER)):
            return f"{self.prefix}: no {LAUNCHER}: reinstall with install.sh"
        if not self.cfg.update_keys:
            return "no agent.update_keys in this PC's config: it trusts no release"
        if not os.access(self.prefix, os.W_OK):
            return f"{self.prefix} is read-only for the agent (ReadWritePaths= in its unit)"
        return ""

    def rolled_back(self) -> bool:
        r = self.result
        return r is not None and r.state == "rolled_back" and r.version == self.target

    def wanted(self) -> bool:
        """A version is named, is not this one, and can be tried."""
        return bool(self.target) and self.target != netroom.__version__ \
            and not self.rolled_back() and not self.unsupported()

    def status_fields(self) -> dict[str, Any]:
        """The update's fields of an ``online`` status ({} with no version named)."""
        target = self.target
        if not target:
            return {}
        state, error = protocol.UPDATING, ""
        why = self.unsupported()
        if target == netroom.__version__:
            state = protocol.UP_TO_DATE
        elif self.rolled_back():
            assert self.result is not None
            state, error = protocol.ROLLED_BACK, self.result.reason
        elif why:
            state, error = protocol.UNSUPPORTED, why
        elif self.error:
            state, error = protocol.UPDATE_FAILED, self.error
        out = {"update_state": state, "update_version": target}
        if error:
            out["update_error"] = error
        return out

    def jobs(self) -> list[Job]:
        """The ``update`` job while there is something to do, else none."""
        if not self.wanted():
            return []
        u = self.cfg.update
        # Keyed by the version: a newly named one is a new job, due within its
        # jitter, not at the previous one's next check.
        return [Job(self, u.check_interval_s, u.jitter_s, CHILD_TIMEOUT_S + 60,
                    name=f"update:{self.target}", hold_s=self.hold_s)]

    def hold_s(self) -> float:
        """Back off after failures: a broken release is not fetched by a whole
        fleet every few minutes."""
        return max(0.0, self._next_try - time.monotonic())

    def collect(self) -> dict[str, Any]:
        if self.wanted() and not self.staged:
            self.try_update()
        return self.body()

    def try_update(self) -> None:
        u, target = self.cfg.update, self.target
        cmd = [sys.executable, "-m", "agent.update", "--prefix", self.prefix, "--url", u.url,
               "--version", target, "--config", self.config_path,
               "--deadline", f"{u.deadline_s:g}"]
        for key in self.cfg.update_keys:
            cmd += ["--key", key]
        log.info("updating to %s from %s", target, u.url)
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S,
                               check=False)
            ok, line = p.returncode == 0, (p.stdout if p.returncode == 0 else p.stderr)
        except subprocess.TimeoutExpired:
            ok, line = False, f"update to {target}: took more than {CHILD_TIMEOUT_S:g} s"
        except OSError as exc:
            ok, line = False, f"update to {target}: {exc}"
        line = (line.strip().splitlines() or ["no output"])[-1]
        with self._lock:
            if target != self.target:  # the settings changed meanwhile
                return
            if ok:
                self.staged, self.error = True, ""
                log.info("%s; restarting into it", line)
                return
            self._failures += 1
            self.error = line
            wait = min(u.check_interval_s * 2 ** (self._failures - 1), MAX_BACKOFF_S)
            self._next_try = time.monotonic() + wait
        log.error("%s; next try in %.0f s", line, wait)

    def launcher(self) -> str:
        return os.path.join(self.prefix, LAUNCHER)

    def confirm(self, topic: str) -> None:
        """``accepted(topic)`` of the publisher: the first metrics of this
        process accepted while on trial confirm this version (not those an
        earlier version left in the outbox; the network thread)."""
        if not self.trial or not topic.endswith("/metrics"):
            return
        trial, self.trial = self.trial, ""
        try:
            if files.confirm(trial, netroom.__version__):
                log.info("version %s reports: trial confirmed", netroom.__version__)
        except OSError as exc:
            log.error("cannot confirm the trial of %s (%s): the launcher will roll it back",
                      netroom.__version__, exc)
