"""Publishes every site's agent settings (netroom.central): retained, QoS 1.

One document per site of the `sites` tree, on ``netroom/settings/v1/<site>``,
from its own MQTT connection, so ingest never waits for it: client id
``<collector.client_id>-settings`` and, with ``mqtt.username`` set, user
``<username>-settings`` with the collector's password (the production broker
makes a session's client id its user name, so this connection needs a user
of its own, or it would take the ingest session over: settings_login()). It connects in the
background and publishes every document on every (re)connect: a broker that
lost its retained messages gets them back, and agents ignore a version they
already run. What the broker refuses (an ACL without ``topic write
netroom/settings/v1/+`` for the collector's user) is logged with the fix,
never fatal: agents then keep their last-known-good settings.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt

from collector.compliance.model import Org
from netroom import central
from netroom.mqtt import QOS, MqttConfig, connect_args, make_client
from netroom.ratelimit import RateLimitedLog

log = logging.getLogger(__name__)


SUFFIX = "-settings"


def settings_login(cfg: MqttConfig, workers: int = 1) -> MqttConfig:
    """The settings connection's login: ``<username>-settings``, where the
    username is the collector's own (with ``collector.workers`` > 1 the main
    process logs in as ``<username>-0``, collector/workers.py)."""
    if not cfg.username:
        return cfg
    user = cfg.username
    if workers > 1 and user.endswith("-0"):
        user = user[:-2]
    return cfg._replace(username=user + SUFFIX)


class SettingsPublisher:
    """start(), then stop(); ``published`` is set once the broker has
    acknowledged every document since the last connect."""

    def __init__(self, cfg: MqttConfig, client_id: str, org: Org,
                 issued: float | None = None) -> None:
        when = time.time() if issued is None else issued
        self.cfg = cfg
        self.docs = {s.id: central.document(s.settings, when) for s in org.sites}
        self.published = threading.Event()
        self.refused: dict[str, str] = {}  # site -> why, from the last connect
        self._pending: dict[int, str] = {}  # mid -> site
        self._lock = threading.Lock()
        self._errors = RateLimitedLog(log, 600)
        self._client = make_client(cfg, client_id)
        self._client.on_connect = self._on_connect
        self._client.on_connect_fail = self._on_connect_fail
        self._client.on_publish = self._on_publish

    def versions(self) -> dict[str, str]:
        """The version published for each site."""
        return {site: doc.version for site, doc in self.docs.items()}

    def start(self) -> None:
        if not self.docs:
            return
        self._client.connect_async(**connect_args(self.cfg, persistent=False))
        self._client.loop_start()

    def stop(self) -> None:
        if not self.docs:
            return
        self._client.disconnect()
        self._client.loop_stop()

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                    props: Any) -> None:
        if reason.is_failure:
            self._errors.log(logging.ERROR, "connect", "settings: the broker refused the "
                             "connection: %s; agents keep their last-known settings", reason)
            return
        with self._lock:
            self.published.clear()
            self._pending.clear()
            self.refused.clear()
            for site, doc in self.docs.items():
                info = client.publish(central.topic(site), central.encode(doc), qos=QOS,
                                      retain=True)
                self._pending[info.mid] = site

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        self._errors.log(logging.WARNING, "connect", "settings: cannot reach the broker "
                         "%s:%s yet; retrying", self.cfg.host, self.cfg.port)

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: Any,
                    props: Any) -> None:
        with self._lock:
            site = self._pending.pop(mid, None)
            if site is None:
                return
            if reason.is_failure:
                self.refused[site] = str(reason)
            done = not self._pending
            refused = dict(self.refused)
        if site in refused:
            self._errors.log(logging.ERROR, f"refused:{site}",
                             "settings: the broker refused %s (%s): let the collector's "
                             "user write netroom/settings/v1/+ (deploy/mosquitto, "
                             "docs/settings.md)", central.topic(site), reason)
        if done:
            log.info("settings: published for %d site(s)%s", len(self.docs) - len(refused),
                     f", {len(refused)} refused" if refused else "")
            self.published.set()
