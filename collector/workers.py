"""Several ingest processes sharing one MQTT subscription.

One Python process decodes, validates and encodes a few thousand messages a
second (docs/benchmarks.md); `collector.workers: N` runs N of them on N cores.
They share the subscription (`$share/<group>/netroom/v1/#`), so the broker
hands each message to one worker; each has its own persistent session and
spool (`<spool_dir>/<i>`), so nothing is lost when one dies: the broker keeps
its unacknowledged messages for its return. The first worker runs in the
main process, which also evaluates the sites; the others are child processes
it restarts when they die.

Broker identities (deploy/mosquitto/netroom.conf, docs/security.md): the
production broker makes every session's client id its user name
(use_username_as_clientid), so workers that logged in as one user would
share one session and take it from each other. With `mqtt.username` set,
worker i therefore logs in as `<username>-<i>` (same password; the broker's
users come from deploy/mosquitto/netroom_credentials.py --workers N), and the
shared group is named after the username, the one group the broker lets
that user join. Without a username (a test broker), worker i uses client id
`<client_id>-<i>` and the group `<client_id>`, as before.

MQTT 5 does not send retained messages to shared subscriptions: with
workers > 1 a brand-new collector sees an agent's inventory at the agent's
next start or daily report, not from the broker's retained copy.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import signal
import subprocess
import sys
import time

from collector.config import CollectorConfig

log = logging.getLogger(__name__)


def worker_config(cfg: CollectorConfig, index: int) -> CollectorConfig:
    """The config of worker ``index`` (0 = the main process)."""
    if cfg.workers == 1:
        return cfg
    mqtt = cfg.mqtt
    group = cfg.client_id
    if mqtt.username:
        group = mqtt.username
        mqtt = mqtt._replace(username=f"{mqtt.username}-{index}")
    return dataclasses.replace(
        cfg,
        mqtt=mqtt,
        client_id=f"{cfg.client_id}-{index}",
        spool_dir=os.path.join(cfg.spool_dir, str(index)),
        subscription=f"$share/{group}/{cfg.subscription}",
        primary=index == 0,
    )


class Supervisor:
    """Runs workers 1..N-1 as child processes and restarts any that exit."""

    def __init__(self, config_path: str, workers: int, log_level: str) -> None:
        self.config_path = config_path
        self.log_level = log_level
        self.children: dict[int, subprocess.Popen[bytes]] = {}
        self._next_start: dict[int, float] = dict.fromkeys(range(1, workers), 0.0)
        self._backoff: dict[int, float] = dict.fromkeys(range(1, workers), 1.0)

    def poll(self) -> None:
        """Start workers that are not running (with backoff after a crash)."""
        now = time.monotonic()
        for i, due in self._next_start.items():
            child = self.children.get(i)
            if child is not None and child.poll() is None:
                continue
            if child is not None:
                log.error("worker %d exited with %s; restarting in %.0f s", i,
                          child.returncode, self._backoff[i])
                self.children.pop(i)
                self._next_start[i] = now + self._backoff[i]
                self._backoff[i] = min(self._backoff[i] * 2, 60.0)
                continue
            if now >= due:
                self.children[i] = subprocess.Popen([
                    sys.executable, "-m", "collector", "--config", self.config_path,
                    "--worker", str(i), "--log-level", self.log_level])

    def stop(self, timeout_s: float = 30.0) -> None:
        """SIGTERM every worker (each flushes and acks), then wait for them."""
        for child in self.children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for child in self.children.values():
            try:
                child.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
