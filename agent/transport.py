"""MQTT transport: the agent's publisher, on netroom.mqtt's client.

Every message first goes to a disk outbox and leaves it only when the broker
accepted it (a PUBACK with a success code), so a broker outage or an agent
restart loses nothing; resends may duplicate, which InfluxDB absorbs (same
series and timestamp overwrite).

A message the broker refuses (a PUBACK reason code >= 0x80, e.g. 0x87 Not
authorized when the ACL denies its topic) stays in the outbox too, and its
topic is *held*: nothing more is sent to it until a retry (RETRY_MIN_S,
doubling to RETRY_MAX_S; kept across reconnects) sends one held message of
the topic as a probe. The broker accepting the probe releases the topic's
held messages; refusing it doubles the wait. So a topic the broker will
never take costs one publish per RETRY_MAX_S, other topics are never held
up by it, and a single message refused for its own sake (it has its own
backoff) delays the others of its topic by at most one retry. A restarted
agent tries everything in its outbox again at once.
Refusals are counted (``refused``), logged with their cause (rate-limited,
one line per topic) and summed up by problem() for the next metrics
message's ``errors``. Only MQTT 5 says "refused": a 3.1.1 broker acknowledges
a denied message as if it had taken it, and drops it.

The agent also listens, on one connection: ``subscribe`` maps topics (its
site's settings from the centre, retained) to handlers, subscribed on every
(re)connect, so the broker hands over the retained message each time.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any, Callable, Mapping

import paho.mqtt.client as mqtt

from agent.outbox import Outbox
from netroom.mqtt import (
    NOT_AUTHORIZED,
    QOS,
    IdleLoop,
    MqttConfig,
    connack_cause,
    connect_args,
    connect_cause,
    make_client,
)
from netroom.ratelimit import RateLimitedLog

log = logging.getLogger(__name__)
# Messages handed to paho at once; the rest wait in the outbox, so a long
# outage costs disk, not memory.
WINDOW = 100
# A refused topic is tried again after RETRY_MIN_S, doubling up to RETRY_MAX_S.
RETRY_MIN_S = 10.0
RETRY_MAX_S = 600.0
# MQTT 5 reason codes named in the causes.


def backoff(attempts: int) -> float:
    """Seconds before the next try after ``attempts`` (>= 1) refusals in a row."""
    return min(RETRY_MIN_S * (1 << min(max(attempts - 1, 0), 16)), RETRY_MAX_S)


class _Held:
    """A message kept back: refused by the broker, or behind a refused topic."""

    __slots__ = ("attempts", "inflight", "next_at", "topic")

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.attempts = 0  # refusals of this message
        self.next_at = 0.0  # time.monotonic() before which it is not sent again
        self.inflight = False


class _Gate:
    """A topic the broker refused: closed until ``next_at``, then one probe goes."""

    __slots__ = ("cause", "failures", "next_at", "probe")

    def __init__(self, cause: str, now: float) -> None:
        self.cause = cause
        self.failures = 1  # refusals in a row
        self.next_at = now + backoff(1)
        self.probe: int | None = None  # outbox id in flight as the probe


class Publisher:
    """Publishes through a disk outbox; call start(), send(), close()."""

    def __init__(self, cfg: MqttConfig, client_id: str, outbox_path: str,
                 will: tuple[str, bytes] | None = None, outbox_max: int = 0,
                 birth: Callable[[], tuple[str, bytes]] | None = None,
                 subscribe: Mapping[str, Callable[[bytes], None]] | None = None,
                 sub_refused: Callable[[str, str], None] | None = None,
                 accepted: Callable[[str], None] | None = None) -> None:
        """``subscribe``: topic -> handler(payload), called on the network
        thread (keep it short; its exceptions are logged, never raised).
        ``sub_refused(topic, cause)``: the broker refused a subscription.
        ``accepted(topic)``: the broker accepted a message this process sent,
        not one left in the outbox by an earlier run (network thread)."""
        self.cfg = cfg
        self._accepted = accepted
        self._subscribe = dict(subscribe or {})
        self._sub_refused = sub_refused
        self._sub_mids: dict[int, str] = {}  # SUBSCRIBE mid -> topic
        self.outbox = Outbox(outbox_path, max_items=outbox_max)
        self._fresh_from = self.outbox.next_id  # ids from here on are this run's
        self._client = make_client(cfg, client_id)
        # Not loop_start(): its thread wakes every second, which costs an idle
        # agent more CPU than its collection (see IdleLoop).
        self._loop = IdleLoop(self._client, on_connect_fail=self._on_connect_fail)
        self._lock = threading.Lock()
        self._inflight: dict[int, tuple[int, str]] = {}  # paho mid -> outbox id, topic
        self._cursor = 0  # highest outbox id handed to paho (or held)
        self._early_acks: dict[int, Any] = {}  # acks that beat _pump to _inflight: reason
        self._pumping = False
        self._again = False
        self._fresh: dict[int, bytes] = {}  # sent this run, not yet handed to paho
        self._held: dict[int, _Held] = {}  # outbox id -> held message
        self._by_topic: dict[str, dict[int, None]] = {}  # topic -> its held ids, in order
        self._gates: dict[str, _Gate] = {}  # refused topics
        self._timer: threading.Timer | None = None  # wakes the pump for a retry
        self._timer_at = 0.0
        self._closed = False
        self.refused = 0  # PUBACKs with a failure reason code, since start
        self._fails = RateLimitedLog(log, 300)  # a long outage: one line per cause per 5 min
        self._refusals = RateLimitedLog(log, 300)  # one line per refused topic per 5 min
        self._connected = threading.Event()
        self._attempt = False  # a connection was opened and not yet reported lost
        self._connack = False  # the broker answered its CONNECT
        self.last_error = ""
        # Sent (retained) on every connect: a Last Will fired during an outage
        # must not leave the host marked offline once it is back.
        self._birth = birth
        if will is not None:
            self._client.will_set(will[0], will[1], qos=QOS, retain=True)
        self._client.on_pre_connect = self._on_pre_connect
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish
        self._client.on_message = self._on_message
        self._client.on_subscribe = self._on_subscribe

    def start(self) -> None:
        """Connect in the background; reconnects by itself until close()."""
        self._loop.start(**connect_args(self.cfg, persistent=False))

    def send(self, topic: str, payload: bytes, retain: bool = False) -> None:
        """Store durably, then publish as soon as the window allows."""
        item = pack(topic, payload, retain)
        oid = self.outbox.put([item])[0]
        with self._lock:
            # The pump publishes from here instead of reading the file back;
            # bounded, so a long outage costs disk, not memory.
            if len(self._fresh) < WINDOW:
                self._fresh[oid] = item
        self._pump()

    def pending(self) -> int:
        """Messages not yet accepted by the broker (refused ones included)."""
        return len(self.outbox)

    def held(self) -> int:
        """Messages kept back because the broker refused them or their topic."""
        with self._lock:
            return len(self._held)

    def refusals(self) -> tuple[int, list[str]]:
        """Messages in the outbox the broker refused, and the causes (one per topic)."""
        with self._lock:
            n = sum(1 for h in self._held.values() if h.attempts)
            return n, [g.cause for g in self._gates.values()]

    def problem(self) -> str:
        """One line for the metrics ``errors`` field while topics are refused, else ''."""
        with self._lock:
            if not self._gates:
                return ""
            return (f"mqtt: {len(self._held)} message(s) kept in the outbox: "
                    + "; ".join(g.cause for g in self._gates.values()))

    def wait_acked(self, timeout_s: float) -> bool:
        """Block until the outbox is empty or the timeout (s) passes."""
        deadline = time.monotonic() + timeout_s
        while self.pending() and time.monotonic() < deadline:
            time.sleep(0.02)
        return not self.pending()

    def wait_settled(self, timeout_s: float) -> bool:
        """Block until every message was accepted, or each one left was tried
        and waits for a retry (refused), or the timeout (s) passes.

        True if the outbox is empty.
        """
        deadline = time.monotonic() + timeout_s
        while self.pending() and not self.settled() and time.monotonic() < deadline:
            time.sleep(0.02)
        return not self.pending()

    def settled(self) -> bool:
        """Connected, nothing in flight and nothing to send before a retry."""
        with self._lock:
            if not self._connected.is_set() or self._inflight or self._pumping:
                return False
            if self.outbox.first_after(self._cursor, skip=self._held) is not None:
                return False
            due = self._next_due()
            return due is None or due > time.monotonic()

    def connected(self, timeout_s: float = 0) -> bool:
        return self._connected.wait(timeout_s)

    def close(self, last: tuple[str, bytes] | None = None, timeout_s: float = 5.0) -> None:
        """Optionally send ``last`` (retained), wait for acks, disconnect."""
        if last is not None and self._connected.is_set():
            self.send(last[0], last[1], retain=True)
        if self._connected.is_set():
            self.wait_settled(timeout_s)
        with self._lock:
            self._closed = True
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        self._loop.stop()  # sends DISCONNECT if connected
        self.outbox.close()

    def _pump(self) -> None:
        """Hand outbox items to paho, up to WINDOW unacknowledged.

        Never calls paho while holding our lock: paho calls _on_publish with
        its own locks held, and that takes ours (lock-order deadlock). One
        thread pumps at a time; a call meanwhile asks it to go round again.
        """
        with self._lock:
            if self._pumping:
                self._again = True
                return
            self._pumping = True
        try:
            while self._connected.is_set():
                with self._lock:
                    self._again = False
                    room = WINDOW - len(self._inflight)
                    batch, moved = self._next_batch(room) if room > 0 else ([], False)
                for oid, topic, payload, retain in batch:
                    info = self._client.publish(topic, payload, qos=QOS, retain=retain)
                    with self._lock:
                        early = self._early_acks.pop(info.mid, None)
                        if early is None:
                            self._inflight[info.mid] = (oid, topic)
                    if early is not None:  # answered before we noted the mid
                        self._settle(oid, topic, early)
                with self._lock:
                    if not batch and not moved and not self._again:
                        self._arm_timer()
                        return
        finally:
            with self._lock:
                self._pumping = False
                self._early_acks.clear()  # only a running pump can own them

    def _next_batch(self, room: int) -> tuple[list[tuple[int, str, bytes, bool]], bool]:
        """Up to ``room`` messages to publish now (with our lock held): new
        ones after the cursor (those for a refused topic are held instead),
        then held ones whose retry is due. New ones first: a broker that
        drops the connection after a refusal still takes them. Also says
        if anything moved without being sent."""
        out: list[tuple[int, str, bytes, bool]] = []
        # From memory when this run stored them, else from disk (earlier
        # runs, or after a reconnect).
        fresh = [(oid, item) for oid, item in self._fresh.items() if oid > self._cursor]
        if fresh and fresh[0][0] == self.outbox.first_after(self._cursor, skip=self._held):
            batch = fresh[:room]
        else:
            batch = self.outbox.peek(room, after=self._cursor, skip=self._held)
        for oid, item in batch:
            self._fresh.pop(oid, None)
            topic, payload, retain = unpack(item)
            if topic in self._gates:
                self._hold(oid, topic)  # its turn comes with the topic's probe
            else:
                out.append((oid, topic, payload, retain))
        if batch:
            self._cursor = batch[-1][0]
        moved = bool(batch)
        for oid in self._due(time.monotonic(), room - len(out)):
            kept = self.outbox.get(oid)
            if kept is None:  # dropped meanwhile (outbox full): pick another
                gate = self._gates.get(self._held[oid].topic)
                if gate is not None and gate.probe == oid:
                    gate.probe = None
                self._release(oid)
                moved = True
                continue
            self._held[oid].inflight = True
            topic, payload, retain = unpack(kept)
            out.append((oid, topic, payload, retain))
        return out, moved

    def _due(self, now: float, room: int) -> list[int]:
        """Held ids to send now: one probe per refused topic whose wait is
        over, every due one of a released topic (our lock held)."""
        out: list[int] = []
        for topic, oids in self._by_topic.items():
            if len(out) >= room:
                break
            gate = self._gates.get(topic)
            if gate is not None:
                if gate.probe is None and gate.next_at <= now:
                    ready = [o for o in oids if self._ready(o, now)]
                    if ready:  # the least refused, then the oldest: none starves
                        gate.probe = min(ready, key=lambda o: (self._held[o].attempts, o))
                        out.append(gate.probe)
                continue
            for oid in oids:
                if len(out) >= room:
                    break
                if self._ready(oid, now):
                    out.append(oid)
        return out

    def _ready(self, oid: int, now: float) -> bool:
        h = self._held[oid]
        return not h.inflight and h.next_at <= now

    def _next_due(self) -> float | None:
        """When a held message is next due (time.monotonic()), or None (our lock held)."""
        now = time.monotonic()
        times: list[float] = []
        for topic, oids in self._by_topic.items():
            gate = self._gates.get(topic)
            if gate is not None and gate.probe is not None:
                continue  # the probe's answer decides
            floor = now if gate is None else gate.next_at
            best: float | None = None
            for oid in oids:
                h = self._held[oid]
                if h.inflight:
                    continue
                if h.next_at <= floor:  # the usual case: found at once
                    best = floor
                    break
                best = h.next_at if best is None else min(best, h.next_at)
            if best is not None:
                times.append(best)
        return min(times, default=None)

    def _arm_timer(self) -> None:
        """Wake the pump when the next held message is due (our lock held).

        Something already due was left for want of room in the window: the
        next PUBACK pumps, no timer (it would spin while the window is full).
        """
        due = self._next_due()
        now = time.monotonic()
        if due is None or due <= now or self._closed:
            return
        if self._timer is not None and now < self._timer_at <= due:
            return  # the pending timer comes first
        if self._timer is not None:
            self._timer.cancel()  # too late, or running this very pump: harmless
        self._timer_at = due
        self._timer = threading.Timer(due - now + 0.01, self._pump)
        self._timer.daemon = True
        self._timer.start()

    def _hold(self, oid: int, topic: str) -> _Held:
        h = self._held.get(oid)
        if h is None:
            h = self._held[oid] = _Held(topic)
            self._by_topic.setdefault(topic, {})[oid] = None
        return h

    def _release(self, oid: int) -> None:
        h = self._held.pop(oid, None)
        if h is None:
            return
        oids = self._by_topic.get(h.topic)
        if oids is not None:
            oids.pop(oid, None)
            if not oids:
                del self._by_topic[h.topic]

    def _settle(self, oid: int, topic: str, reason: Any) -> None:
        """The broker's answer to one message: delete it, or keep it for a retry."""
        if not reason.is_failure:
            with self._lock:
                self._release(oid)
                gate = self._gates.get(topic)
                opened = gate is not None and gate.probe == oid
                if opened:
                    del self._gates[topic]
                waiting = len(self._by_topic.get(topic, ()))
            self.outbox.delete([oid])
            if self._accepted is not None and oid >= self._fresh_from:
                self._accepted(topic)
            if opened:
                log.info("the broker accepts %s again: sending the %d message(s) kept for it",
                         topic, waiting)
            return
        cause = refusal_cause(reason, topic, self.cfg.username)
        now = time.monotonic()
        with self._lock:
            self.refused += 1
            h = self._hold(oid, topic)
            h.inflight = False
            h.attempts += 1
            h.next_at = now + backoff(h.attempts)
            gate = self._gates.get(topic)
            if gate is None:
                gate = self._gates[topic] = _Gate(cause, now)
            elif gate.probe == oid:
                gate.failures += 1
                gate.next_at = now + backoff(gate.failures)
                gate.probe = None
            gate.cause = cause
            kept = len(self._by_topic[topic])
            wait_s = max(gate.next_at - now, 0.0)
        self.last_error = cause
        self._refusals.log(logging.ERROR, topic,
                           "%s:%s refused a message: %s; %d message(s) for it kept in the "
                           "outbox, next try in %.0f s", self.cfg.host, self.cfg.port, cause,
                           kept, wait_s)

    def _on_pre_connect(self, client: mqtt.Client, userdata: Any) -> None:
        self._attempt, self._connack = True, False

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any,
                    reason: Any, props: Any) -> None:
        self._connack = True
        if reason.is_failure:
            self._fail(logging.ERROR, connack_cause(reason, self.cfg.username))
            return
        log.info("connected to %s:%s", self.cfg.host, self.cfg.port)
        with self._lock:
            # Clean session: the broker forgot our in-flight messages; paho
            # would resend its own, but restarting from the outbox is simpler
            # and covers messages stored before this process started.
            self._inflight.clear()
            self._early_acks.clear()
            self._cursor = 0
            # Held messages keep their backoff across reconnects: some brokers
            # drop the connection after refusing a message, and a retry on
            # every reconnect would make that a loop.
            for h in self._held.values():
                h.inflight = False
            for gate in self._gates.values():
                gate.probe = None
        self.last_error = ""
        self._connected.set()
        for topic in self._subscribe:
            _, mid = client.subscribe(topic, qos=QOS)
            if mid is not None:
                self._sub_mids[mid] = topic
        if self._birth is not None:
            topic, payload = self._birth()
            self.send(topic, payload, retain=True)
        self._pump()

    def _on_connect_fail(self, exc: Exception) -> None:
        self._fail(logging.WARNING, connect_cause(exc, self.cfg.host, self.cfg.tls is not None))

    def _fail(self, level: int, cause: str) -> None:
        """A connection failed: keep its cause for --once, log it (rate-limited)."""
        self.last_error = cause
        self._fails.log(level, cause, "%s:%s: %s; retrying", self.cfg.host, self.cfg.port, cause)

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any,
                       reason: Any, props: Any) -> None:
        was_connected = self._connected.is_set()
        attempt, self._attempt = self._attempt, False
        self._connected.clear()
        if self._closed or not attempt:
            return  # closing, or paho telling twice about one connection
        if was_connected:
            if reason.is_failure or reason.value != 0:
                self._fail(logging.WARNING, f"disconnected: {reason}")
        elif not self._connack:  # the broker closed before its CONNACK
            hint = "a client id it refuses?" if self.cfg.tls is not None else \
                "a TLS port, without mqtt.tls?"
            self._fail(logging.WARNING, f"the broker closed the connection before accepting "
                       f"it ({hint})")
        # else: a refused CONNACK, whose cause is already said

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reasons: Any,
                      props: Any) -> None:
        topic = self._sub_mids.pop(mid, None)
        if topic is None or not reasons or not reasons[0].is_failure:
            return
        who = f"user {self.cfg.username!r}" if self.cfg.username else "an anonymous client"
        cause = f"{str(reasons[0]).lower()}: {who} may not subscribe to {topic}"
        self._refusals.log(logging.ERROR, "subscribe:" + topic, "%s:%s refused a "
                           "subscription: %s", self.cfg.host, self.cfg.port, cause)
        if self._sub_refused is not None:
            self._sub_refused(topic, cause)

    def _on_message(self, client: mqtt.Client, userdata: Any, m: mqtt.MQTTMessage) -> None:
        handler = self._subscribe.get(m.topic)
        if handler is None:
            return
        try:
            handler(bytes(m.payload))
        except Exception:  # the network loop must go on
            log.exception("handling a message on %s", m.topic)

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int,
                    reason: Any, props: Any) -> None:
        with self._lock:
            entry = self._inflight.pop(mid, None)
            if entry is None and self._pumping:
                self._early_acks[mid] = reason
        if entry is not None:
            self._settle(entry[0], entry[1], reason)
        self._pump()


def refusal_cause(reason: Any, topic: str, username: str | None) -> str:
    """One line on why the broker refused a message to ``topic`` (a PUBACK code >= 0x80)."""
    if reason.value == NOT_AUTHORIZED:
        who = f"user {username!r}" if username else "an anonymous client"
        return f"not authorized: {who} may not publish to {topic}"
    return f"{str(reason).lower()} (0x{reason.value:02X}): the broker refused a message to {topic}"


def pack(topic: str, payload: bytes, retain: bool) -> bytes:
    """One outbox item: ``<retain 0|1> <topic>\n<payload>`` (topics have no newline)."""
    return f"{int(retain)} {topic}\n".encode() + payload


def unpack(item: bytes) -> tuple[str, bytes, bool]:
    head, _, payload = item.partition(b"\n")
    retain, _, topic = head.decode().partition(" ")
    return topic, payload, retain == "1"


def outbox_path(state_dir: str) -> str:
    return os.path.join(state_dir, "outbox")
