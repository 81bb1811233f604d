"""Settings from the centre, on the agent: receive, check, keep, apply.

The collector publishes one document per site, retained, on
``netroom/settings/v1/<site>`` (netroom.central; docs/settings.md). The agent

- starts on the last-known-good copy, ``<state_dir>/settings.json``, when
  there is one for its site, under its own file (agent.config.with_central);
  with the broker down it keeps running on it;
- checks every document that arrives as the collector checked it
  (netroom.central.decode, which also recomputes the version from the
  content) and merges it under its own file. A document that fails either
  is refused: logged, its reason sent in the ``online`` status
  (``settings_error``) until a good one arrives, the running settings kept;
- writes a good one to ``settings.json`` atomically (a temporary file,
  fsync, rename: a power cut leaves the old copy or the new, never half of
  one), then calls ``on_change``, which rebuilds the jobs without a restart.

The same version again (the retained message comes on every reconnect)
changes nothing; an empty message (the retained document cleared) neither.
"""
from __future__ import annotations

import logging
import os
import threading
from typing import Any, Callable, Mapping

from agent.config import AgentConfig, ConfigError, local_keys, with_central
from netroom import central
from netroom.durable import write_atomic

log = logging.getLogger(__name__)

KEPT_FILE = "settings.json"


def kept_path(state_dir: str) -> str:
    return os.path.join(state_dir, KEPT_FILE)


class Central:
    """What this PC runs: its file's config, or that under the centre's settings.

    ``data``: the parsed config file; ``base``: its config alone (identity,
    broker and the file's own settings). ``cfg`` is what runs now,
    ``version`` the centre's version in it ("" for none), ``error`` why the
    latest document was refused ("" if it was not). ``on_change()`` is
    called (on the network thread) after a document was applied or refused.
    """

    def __init__(self, data: Mapping[str, Any], base: AgentConfig,
                 on_change: Callable[[], None] | None = None) -> None:
        self.data = data
        self.base = base
        self.on_change = on_change
        self.cfg = base
        self.version = ""
        self.error = ""
        self.local = ",".join(local_keys(data))
        self.path = kept_path(base.state_dir)
        self._lock = threading.Lock()

    @property
    def topic(self) -> str:
        return central.topic(self.base.site)

    def load_kept(self) -> None:
        """Run on the last-known-good copy, if there is a usable one."""
        try:
            with open(self.path, "rb") as f:
                payload = f.read()
        except FileNotFoundError:
            log.info("no settings from the centre kept yet: running this file's own")
            return
        except OSError as exc:
            self.error = f"cannot read the kept settings {self.path}: {exc.strerror or exc}"
            log.warning("%s; running this file's own", self.error)
            return
        try:
            doc = central.decode(payload, self.base.site)
            cfg = with_central(self.base, self.data, doc.settings)
        except (central.SettingsError, ConfigError) as exc:
            # Another site's (the PC was moved) or damaged: the broker's copy
            # replaces it as soon as it arrives.
            log.warning("not using the kept settings %s: %s; running this file's own",
                        self.path, exc)
            return
        self.cfg, self.version = cfg, doc.version
        log.info("running the kept settings %s from the centre (%s)", doc.version, self.path)

    def offer(self, payload: bytes) -> None:
        """A message on the settings topic (the network thread)."""
        if not payload:
            log.info("the broker holds no settings for site %s: keeping %s",
                     self.base.site, self.version or "this file's own")
            return
        try:
            doc = central.decode(payload, self.base.site)
        except central.SettingsError as exc:
            self._refuse(f"refused the settings on {self.topic}: {exc}")
            return
        if doc.version == self.version:
            if self.error:  # the good document is back
                self._set(self.cfg, doc.version, "")
            return
        try:
            cfg = with_central(self.base, self.data, doc.settings)
        except ConfigError as exc:
            self._refuse(f"refused settings {doc.version}: with this PC's own file: {exc}")
            return
        try:
            write_atomic(self.path, bytes(payload))
        except OSError as exc:  # run them anyway; the next start waits for the broker
            log.error("cannot keep settings %s in %s: %s", doc.version, self.path,
                      exc.strerror or exc)
        log.info("running settings %s from the centre (was %s)", doc.version,
                 self.version or "this file's own")
        self._set(cfg, doc.version, "")

    def not_subscribed(self, topic: str, cause: str) -> None:
        """The broker refused our subscription: nothing will arrive (the network thread)."""
        self._refuse(f"cannot receive settings: {cause}")

    def _refuse(self, reason: str) -> None:
        if reason != self.error:
            log.error("%s; still running %s", reason, self.version or "this file's own")
        self._set(self.cfg, self.version, reason)

    def _set(self, cfg: AgentConfig, version: str, error: str) -> None:
        with self._lock:
            self.cfg, self.version, self.error = cfg, version, error
        if self.on_change is not None:
            self.on_change()

    def status_fields(self) -> dict[str, Any]:
        """``settings_*`` for an ``online`` status: what runs, why the latest
        document was refused, which keys this PC's own file sets."""
        with self._lock:
            fields = {central.VERSION_FIELD: self.version, central.ERROR_FIELD: self.error,
                      central.LOCAL_FIELD: self.local}
        return {k: v for k, v in fields.items() if v}
