"""MQTT in: subscribe, validate with netroom.protocol, hand on lines + ack handle.

Messages are acknowledged (PUBACK) only by the writer, once their points are
durable; invalid or unencodable ones travel the same queue, marked to be set
aside (dead-lettered), so that acks keep the order the broker sent them in.

Message time is bounded against receive time: a PC whose clock is far off
would otherwise write points in 2099 (capturing every "latest" read) or in
1970. Such a message is stored at receive time, with ``clock_skew_s``.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import paho.mqtt.client as mqtt

from collector.influx.line import LineEncoder
from collector.ingest.entry import Counters, Entry, add
from collector.ingest.points import to_points
from netroom import protocol, schema
from netroom.mqtt import QOS, MqttConfig, connect_args, make_client
from netroom.ratelimit import RateLimitedLog

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SubscriberConfig:
    """Where the collector reads: broker, its own client id, topic filter,
    and how many unacknowledged messages the broker may send (MQTT 5)."""

    mqtt: MqttConfig
    client_id: str
    subscription: str
    receive_maximum: int
    clock_ahead_s: float = schema.CLOCK_AHEAD_MS / 1000  # ts later than receive + this: skewed
    clock_behind_s: float = schema.CLOCK_BEHIND_MS / 1000  # ... or earlier than receive - this


def encode_message(msg: protocol.Message, encoder: LineEncoder, tags: Mapping[str, str],
                   received_ms: int, bounds: SubscriberConfig) -> tuple[list[str], int | None]:
    """A message's lines, and its clock skew (ms) if its time was out of bounds.

    Out of bounds (``bounds.clock_ahead_s``/``clock_behind_s`` from
    ``received_ms``): stored at ``received_ms``, every point with ``clock_skew_s``.
    """
    if msg.kind == schema.STATUS and msg.fields.get("will"):
        # A Last Will's ts is when the agent connected; the broker sends it
        # when the agent vanished, which is about when it was received.
        return encoder.lines(to_points(msg, tags, received_ms)), None
    skew_ms = round(msg.ts * 1000) - received_ms
    if -bounds.clock_behind_s * 1000 <= skew_ms <= bounds.clock_ahead_s * 1000:
        return encoder.lines(to_points(msg, tags)), None
    points = [p._replace(fields={**p.fields, schema.CLOCK_SKEW: skew_ms / 1000})
              for p in to_points(msg, tags, received_ms)]
    return encoder.lines(points), skew_ms


class Ingest:
    def __init__(self, cfg: SubscriberConfig, handle: Callable[[Entry], bool],
                 counters: Counters,
                 tags_for: Callable[[str], Mapping[str, str]] = lambda site: {},
                 on_valid: Callable[[protocol.Message], None] | None = None,
                 on_fatal: Callable[[str], None] | None = None) -> None:
        """``handle(entry)``: queue it (may block: backpressure); False if not taken.
        ``on_fatal(reason)``: ingest cannot go on (a bug met a message); the
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
        # Bumped on every disconnect: a packet id acked on a later connection
        # may name another message, so entries of an older one are not acked
        # (the broker sends them again; writing them twice stores them once).
        self.gen = 0
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

    def ack(self, entry: Entry) -> None:
        if entry.qos and entry.gen == self.gen:
            self.client.ack(entry.mid, entry.qos)

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
        self.gen += 1
        if reason.value != 0:
            log.warning("lost the broker (%s); reconnecting", reason)

    def _on_message(self, client: mqtt.Client, userdata: Any, m: mqtt.MQTTMessage) -> None:
        if self.failed:
            return  # left unacknowledged: the broker redelivers it after the restart
        try:
            self._take(Entry(m.mid, m.qos, [], m.topic, bytes(m.payload), gen=self.gen))
        except Exception as exc:  # the paho thread must not die quietly
            # A bug of ours, not the message's (those are set aside): it stays
            # unacknowledged and the process ends so the service manager restarts it.
            self.failed = True
            try:
                topic = m.topic[:200]
            except UnicodeDecodeError:  # MQTT requires UTF-8; a broker should refuse it
                topic = "(not UTF-8)"
            log.critical("cannot process message on %r: %s: %s", topic,
                         type(exc).__name__, exc, exc_info=True)
            if self.on_fatal is not None:
                self.on_fatal(f"ingest: {type(exc).__name__}: {exc}")

    def _take(self, entry: Entry) -> None:
        with self.counters.lock:
            self.counters.received += 1
        try:
            msg = protocol.decode(entry.topic, entry.payload)
        except protocol.ProtocolError as exc:
            self._set_aside(entry, "invalid", exc.code, str(exc))
            return
        tags = self.tags_for(msg.site)  # the collector's own config: a bug here is fatal
        try:
            entry.lines = self._lines(msg, tags)
        except Exception as exc:  # noqa: BLE001 - one message must not stop ingest: set aside
            name = type(exc).__name__
            self._set_aside(entry, "unencodable", name, f"{name}: {exc}")
            return
        if self.on_valid is not None:
            self.on_valid(msg)
        self.handle(entry)

    def _lines(self, msg: protocol.Message, tags: Mapping[str, str]) -> list[str]:
        lines, skew_ms = encode_message(msg, self.encoder, tags, int(time.time() * 1000),
                                        self.cfg)
        if skew_ms is not None:
            with self.counters.lock:
                self.counters.clock_skew += 1
            self._bad.log(logging.WARNING, "clock", "%s/%s: clock off by %+.0f s: stored at "
                          "receive time", msg.site, msg.host, skew_ms / 1000)
        return lines

    def _set_aside(self, entry: Entry, reason: str, code: str, detail: str) -> None:
        with self.counters.lock:
            if reason == "invalid":
                add(self.counters.invalid, code)
        self._bad.log(logging.WARNING, code, "setting aside %s message on %r: %s", reason,
                      entry.topic[:200], detail)
        entry.reason, entry.detail = reason, detail
        self.handle(entry)
