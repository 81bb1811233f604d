"""MQTT in: subscribe, validate with netroom.protocol, hand on lines + ack handle.

Validation is ``protocol.decode``'s, at less than half its cost
(collector/ingest/decode.py: the same messages and the same refusals).

Messages are acknowledged (PUBACK) only by the writer, once their points are
durable; invalid or unencodable ones travel the same queue, marked to be set
aside (dead-lettered), so that acks keep the order the broker sent them in.

The MQTT thread does not hand each message to the writer on its own (a
lock and a wake-up each): it collects them and hands them on in order,
HANDOFF_MAX at a time, or within HANDOFF_S of the first one (a small thread
of ours hands on what waits longer). A hand-off blocks while the writer's
queue is full (queue_max_bytes, one entry over at most), and then the MQTT
thread stops reading once HANDOFF_MAX more wait here: backpressure holds.

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
from collector.ingest.decode import Decoder
from collector.ingest.entry import Counters, Entry, add
from collector.ingest.points import MessageEncoder, to_points
from netroom import protocol, schema
from netroom.mqtt import (
    QOS,
    IdleLoop,
    MqttConfig,
    connack_cause,
    connect_args,
    connect_cause,
    make_client,
)
from netroom.ratelimit import RateLimitedLog
from netroom.settings import ConfigError, Section

log = logging.getLogger(__name__)

# collector.mqtt_protocol when not set: "" speaks mqtt.protocol, like the agents.
DEFAULT_PROTOCOL = ""
HANDOFF_MAX = 256  # messages the MQTT thread collects before handing them on
HANDOFF_S = 0.05  # the longest a message waits to be handed on


@dataclass(frozen=True)
class SubscriberConfig:
    """Where the collector reads: broker, its own client id, topic filter,
    how many unacknowledged messages the broker may send (MQTT 5); how
    messages are stored: clock bounds, sections kept one point per item."""

    mqtt: MqttConfig
    client_id: str
    subscription: str
    receive_maximum: int
    clock_ahead_s: float = schema.CLOCK_AHEAD_MS / 1000  # ts later than receive + this: skewed
    clock_behind_s: float = schema.CLOCK_BEHIND_MS / 1000  # ... or earlier than receive - this
    item_series: tuple[str, ...] = ()  # collector.item_series (schema.ITEM_SERIES_SECTIONS)


def read_item_series(s: Section) -> tuple[str, ...]:
    """``collector.item_series``: metrics sections also stored one point per item."""
    allowed = schema.ITEM_SERIES_SECTIONS
    out: list[str] = []
    for value in s.seq("item_series"):
        if value not in allowed:
            raise ConfigError(f"{s.key('item_series')}: must list some of "
                              f"{', '.join(allowed)}, got {value!r}")
        if value not in out:
            out.append(value)
    return tuple(out)


def stored_at(msg: protocol.Message, received_ms: int, bounds: SubscriberConfig
              ) -> tuple[int, int | None]:
    """(epoch ms the message's points are stored at, its clock skew in ms or
    None if its time was within bounds).

    Out of bounds (``bounds.clock_ahead_s``/``clock_behind_s`` from
    ``received_ms``): stored at ``received_ms``, every point with ``clock_skew_s``.
    """
    if msg.kind == schema.STATUS and msg.fields.get("will"):
        # A Last Will's ts is when the agent connected; the broker sends it
        # when the agent vanished, which is about when it was received.
        return received_ms, None
    t = round(msg.ts * 1000)
    skew_ms = t - received_ms
    if -bounds.clock_behind_s * 1000 <= skew_ms <= bounds.clock_ahead_s * 1000:
        return t, None
    return received_ms, skew_ms


def encode_message(msg: protocol.Message, encoder: LineEncoder | MessageEncoder,
                   tags: Mapping[str, str], received_ms: int, bounds: SubscriberConfig
                   ) -> tuple[list[str], int | None]:
    """A message's lines, and its clock skew (ms) if its time was out of bounds
    (then stored at ``received_ms``, every point with ``clock_skew_s``).

    A LineEncoder takes the general way (``to_points``, with
    ``bounds.item_series``); a MessageEncoder the ingest's (its own item_series):
    the same lines.
    """
    t, skew_ms = stored_at(msg, received_ms, bounds)
    skew_s = None if skew_ms is None else skew_ms / 1000
    if isinstance(encoder, MessageEncoder):
        return encoder.lines(msg, tags, t, skew_s), skew_ms
    points = to_points(msg, tags, t, bounds.item_series)
    if skew_s is not None:
        points = [p._replace(fields={**p.fields, schema.CLOCK_SKEW: skew_s}) for p in points]
    return encoder.lines(points), skew_ms


class Ingest:
    def __init__(self, cfg: SubscriberConfig, handle: Callable[[Entry], bool],
                 counters: Counters,
                 tags_for: Callable[[str], Mapping[str, str]] = lambda site: {},
                 on_valid: Callable[[protocol.Message], None] | None = None,
                 on_fatal: Callable[[str], None] | None = None, *,
                 facts_of: Callable[[protocol.Message, int], Any] | None = None,
                 handle_many: Callable[[list[Entry]], bool] | None = None) -> None:
        """``handle(entry)``: queue it (may block: backpressure); False if not taken.
        ``handle_many(entries)``: the same for several, in order (Writer.put_many);
        without it each is handed to ``handle``.
        ``on_fatal(reason)``: ingest cannot go on (a bug met a message); the
        caller ends the process so the service manager restarts it.
        ``facts_of(msg, stored_ms)``: what the writer's ``on_durable`` gets in
        ``entry.facts`` for each valid message; ``stored_ms`` is the epoch ms
        its points are stored at. Like ``tags_for``, it raising is a bug of
        ours: the message stays unacknowledged and ingest ends (``on_fatal``)."""
        self.cfg = cfg
        self.on_fatal = on_fatal
        self.failed = False
        self.handle = handle
        self.handle_many = handle_many
        self.counters = counters
        self.tags_for = tags_for
        self.on_valid = on_valid
        self.facts_of = facts_of
        self.decoder = Decoder()
        self.encoder = MessageEncoder(cfg.item_series)
        self.subscribed = threading.Event()
        # The last connection attempt's outcome, for the start-up check
        # (collector/__main__.py): set once an attempt connected, was refused
        # (``refused``: a login or subscription the broker will not take) or
        # failed (``unreachable``: the cause).
        self.answered = threading.Event()
        self.refused = ""
        self.unreachable = ""
        # Bumped on every disconnect: a packet id acked on a later connection
        # may name another message, so entries of an older one are not acked
        # (the broker sends them again; writing them twice stores them once).
        self.gen = 0
        self._bad = RateLimitedLog(log, 60)
        # Entries taken by the MQTT thread, not yet handed on (_hand_on).
        self._pending: list[Entry] = []
        self._pending_lock = threading.Lock()
        self._handing = threading.Lock()  # one hand-off at a time: broker order
        self._due = threading.Event()  # something is pending
        self._stopping = threading.Event()
        self._timer: threading.Thread | None = None
        # IdleLoop, not loop_start(): the acks of a batch go out in one turn
        # of its thread, without a wake-up per PUBACK (docs/benchmarks.md).
        self.client = make_client(cfg.mqtt, cfg.client_id, persistent=True, manual_ack=True)
        self.loop = IdleLoop(self.client, on_connect_fail=self._on_connect_fail)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.client.on_disconnect = self._on_disconnect

    def start(self) -> None:
        self._timer = threading.Thread(target=self._hand_on_late, name="ingest-handoff",
                                       daemon=True)
        self._timer.start()
        args = connect_args(self.cfg.mqtt, persistent=True,
                            receive_max=self.cfg.receive_maximum)
        self.loop.start(**args)

    def stop(self) -> None:
        """Disconnect. What was not handed on stays unacknowledged (sent again)."""
        self._stopping.set()
        self._due.set()
        self.loop.stop()
        if self._timer is not None:
            self._timer.join(5)

    def ack(self, entry: Entry) -> None:
        if entry.qos and entry.gen == self.gen:
            self.client.ack(entry.mid, entry.qos)

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any,
                    reason: Any, props: Any) -> None:
        if reason.is_failure:
            self.refused = connack_cause(reason, self.cfg.mqtt.username)
            self.answered.set()
            self._bad.log(logging.ERROR, "connack", "broker %s:%s: %s; retrying",
                          self.cfg.mqtt.host, self.cfg.mqtt.port, self.refused)
            return
        self.refused = self.unreachable = ""
        log.info("connected to %s:%s (MQTT %s, session present: %s)", self.cfg.mqtt.host,
                 self.cfg.mqtt.port, self.cfg.mqtt.protocol, flags.session_present)
        client.subscribe(self.cfg.subscription, qos=QOS)

    def _on_connect_fail(self, exc: Exception) -> None:
        m = self.cfg.mqtt
        self.unreachable = connect_cause(exc, m.host, m.tls is not None)
        self.answered.set()
        self._bad.log(logging.WARNING, "connect", "cannot reach the broker %s:%s: %s; "
                      "retrying (the agents' messages wait in the broker meanwhile)",
                      m.host, m.port, self.unreachable)

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int,
                      reasons: Any, props: Any) -> None:
        if reasons and reasons[0].is_failure:
            who = self.cfg.mqtt.username or "an anonymous login"
            self.refused = (f"{str(reasons[0]).lower()}: {who} may not subscribe to "
                            f"{self.cfg.subscription} (the collector's user must read "
                            "netroom/v1/#: deploy/mosquitto/README.md)")
            self._bad.log(logging.ERROR, "suback", "broker %s:%s refused the subscription: "
                          "%s", self.cfg.mqtt.host, self.cfg.mqtt.port, self.refused)
        else:
            log.info("subscribed to %s", self.cfg.subscription)
        self.answered.set()
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
            entry = self._take(Entry(m.mid, m.qos, [], m.topic, bytes(m.payload), gen=self.gen))
            with self._pending_lock:
                self._pending.append(entry)
                n = len(self._pending)
            if n == 1:
                self._due.set()
            elif n >= HANDOFF_MAX:
                self._hand_on()
        except Exception as exc:  # the paho thread must not die quietly
            # A bug of ours, not the message's (those are set aside): it stays
            # unacknowledged and the process ends so the service manager restarts it.
            self.failed = True  # no more messages from here
            try:
                topic = m.topic[:200]
            except UnicodeDecodeError:  # MQTT requires UTF-8; a broker should refuse it
                topic = "(not UTF-8)"
            log.critical("cannot process message on %r: %s: %s", topic,
                         type(exc).__name__, exc, exc_info=True)
            self._fail(f"ingest: {type(exc).__name__}: {exc}")

    def _fail(self, reason: str) -> None:
        """Take no more messages; hand on those taken before; ask to end."""
        self.failed = True
        try:
            self._hand_on()
        except Exception:  # already failing: they stay unacknowledged
            log.exception("cannot hand on the messages taken before the failure")
        if self.on_fatal is not None:
            self.on_fatal(reason)

    def _hand_on(self) -> None:
        """Hand what is pending to the writer, in order (blocks while its queue is full)."""
        with self._handing:
            with self._pending_lock:
                batch, self._pending = self._pending, []
            if not batch:
                return
            if self.handle_many is not None:
                self.handle_many(batch)
            else:
                for e in batch:
                    self.handle(e)

    def _hand_on_late(self) -> None:
        """Hands on what waits HANDOFF_S (the MQTT thread hands on full batches)."""
        while not self._stopping.is_set():
            self._due.wait()
            self._due.clear()
            if self._stopping.wait(HANDOFF_S):
                return
            try:
                self._hand_on()
            except Exception as exc:  # a bug of ours: end the process, as in _on_message
                log.critical("cannot hand messages on: %s: %s", type(exc).__name__, exc,
                             exc_info=True)
                self._fail(f"ingest: {type(exc).__name__}: {exc}")
                return

    def _take(self, entry: Entry) -> Entry:
        """The entry with its lines and facts, or marked to be set aside."""
        with self.counters.lock:
            self.counters.received += 1
        try:
            msg = self.decoder.decode(entry.topic, entry.payload)
        except protocol.ProtocolError as exc:
            return self._set_aside(entry, "invalid", exc.code, str(exc))
        tags = self.tags_for(msg.site)  # the collector's own config: a bug here is fatal
        received_ms = int(time.time() * 1000)
        try:
            t, skew_ms = stored_at(msg, received_ms, self.cfg)
            entry.lines = self.encoder.lines(msg, tags, t,
                                             None if skew_ms is None else skew_ms / 1000)
        except Exception as exc:  # noqa: BLE001 - one message must not stop ingest: set aside
            name = type(exc).__name__
            return self._set_aside(entry, "unencodable", name, f"{name}: {exc}")
        if skew_ms is not None:
            with self.counters.lock:
                self.counters.clock_skew += 1
            self._bad.log(logging.WARNING, "clock", "%s/%s: clock off by %+.0f s: stored at "
                          "receive time", msg.site, msg.host, skew_ms / 1000)
        if self.facts_of is not None:
            entry.facts = self.facts_of(msg, t)  # a bug of ours if it raises: fatal
        if self.on_valid is not None:
            self.on_valid(msg)
        return entry

    def _set_aside(self, entry: Entry, reason: str, code: str, detail: str) -> Entry:
        with self.counters.lock:
            if reason == "invalid":
                add(self.counters.invalid, code)
        self._bad.log(logging.WARNING, code, "setting aside %s message on %r: %s", reason,
                      entry.topic[:200], detail)
        entry.reason, entry.detail = reason, detail
        return entry
