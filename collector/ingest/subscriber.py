"""MQTT in: subscribe, validate with netroom.protocol, hand on lines + ack handle.

Messages are acknowledged (PUBACK) only by the writer, once their points are
durable; invalid ones travel the same queue with no lines so that acks keep
the order the broker sent the messages in.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import paho.mqtt.client as mqtt

from collector.influx.line import LineEncoder
from collector.ingest.points import to_points
from netroom import protocol
from netroom.mqtt import QOS, MqttConfig, connect_args, make_client
from netroom.ratelimit import RateLimitedLog

log = logging.getLogger(__name__)


@dataclass
class Entry:
    """One received message on its way to durability."""

    mid: int
    qos: int
    lines: list[str]
    invalid: str = ""  # ProtocolError code when dropped


@dataclass
class Counters:
    """The collector's own counters, cumulative since start."""

    received: int = 0
    invalid: dict[str, int] = field(default_factory=dict)
    written: int = 0  # lines InfluxDB accepted directly
    spooled: int = 0  # lines put in the spool
    rejected: int = 0  # lines InfluxDB refused for good
    write_errors: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass(frozen=True)
class SubscriberConfig:
    """Where the collector reads: broker, its own client id, topic filter,
    and how many unacknowledged messages the broker may send (MQTT 5)."""

    mqtt: MqttConfig
    client_id: str
    subscription: str
    receive_maximum: int


class Ingest:
    def __init__(self, cfg: SubscriberConfig, handle: Callable[[Entry], None],
                 counters: Counters,
                 tags_for: Callable[[str], Mapping[str, str]] = lambda site: {},
                 on_valid: Callable[[protocol.Message], None] | None = None,
                 on_fatal: Callable[[str], None] | None = None) -> None:
        """``on_fatal(reason)``: ingest cannot go on (a bug met a message); the
        caller ends the process so the service manager restarts it."""
        self.cfg = cfg
        self.on_fatal = on_fatal
        self.failed = False
        self.handle = handle
        self.counters = counters
        self.tags_for = tags_for
        self.on_valid = on_valid
        self.encoder = LineEncoder()
        self.subscribed = threading.Event()
        self._bad = RateLimitedLog(log, 60)
        self.client = make_client(cfg.mqtt, cfg.client_id, persistent=True, manual_ack=True)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.client.on_disconnect = self._on_disconnect

    def start(self) -> None:
        args = connect_args(self.cfg.mqtt, persistent=True,
                            receive_max=self.cfg.receive_maximum)
        self.client.connect_async(**args)
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def ack(self, mid: int, qos: int) -> None:
        if qos:
            self.client.ack(mid, qos)

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any,
                    reason: Any, props: Any) -> None:
        if reason.is_failure:
            log.error("broker %s:%s refused: %s", self.cfg.mqtt.host, self.cfg.mqtt.port, reason)
            return
        log.info("connected to %s:%s (session present: %s)", self.cfg.mqtt.host,
                 self.cfg.mqtt.port, flags.session_present)
        client.subscribe(self.cfg.subscription, qos=QOS)

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int,
                      reasons: Any, props: Any) -> None:
        self.subscribed.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any,
                       reason: Any, props: Any) -> None:
        self.subscribed.clear()
        if reason.value != 0:
            log.warning("lost the broker (%s); reconnecting", reason)

    def _on_message(self, client: mqtt.Client, userdata: Any, m: mqtt.MQTTMessage) -> None:
        if self.failed:
            return  # left unacknowledged: the broker redelivers it after the restart
        with self.counters.lock:
            self.counters.received += 1
        try:
            msg = protocol.decode(m.topic, m.payload)
            time_ms = None
            if msg.kind == "status" and msg.fields.get("will"):
                # A Last Will's ts is when the agent connected; the broker
                # sends it when the agent vanished, which is about now.
                time_ms = int(time.time() * 1000)
            points = to_points(msg, self.tags_for(msg.site), time_ms)
            lines = self.encoder.lines(points)
        except protocol.ProtocolError as exc:
            self._drop(m, exc.code, str(exc))
            return
        except Exception as exc:  # the paho thread must not die quietly
            # A valid message met a bug of ours: dropping it would lose data
            # and hide the bug. It stays unacknowledged and the process ends.
            self.failed = True
            log.critical("cannot process message on %r: %s: %s", m.topic[:200],
                         type(exc).__name__, exc, exc_info=True)
            if self.on_fatal is not None:
                self.on_fatal(f"ingest: {type(exc).__name__}: {exc}")
            return
        if self.on_valid is not None:
            self.on_valid(msg)
        self.handle(Entry(m.mid, m.qos, lines))

    def _drop(self, m: mqtt.MQTTMessage, code: str, reason: str) -> None:
        with self.counters.lock:
            self.counters.invalid[code] = self.counters.invalid.get(code, 0) + 1
        self._bad.log(logging.WARNING, code, "dropped invalid message on %r: %s",
                      m.topic[:200], reason)
        self.handle(Entry(m.mid, m.qos, [], invalid=code))
