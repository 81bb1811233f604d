"""MQTT transport: the agent's publisher, on netroom.mqtt's client.

Every message first goes to a disk outbox and leaves it only when the broker
acknowledged it (PUBACK), so a broker outage or an agent restart loses
nothing; resends may duplicate, which InfluxDB absorbs (same series and
timestamp overwrite).
"""
from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any, Callable

import paho.mqtt.client as mqtt

from agent.outbox import Outbox
from netroom.mqtt import QOS, IdleLoop, MqttConfig, connect_args, make_client
from netroom.ratelimit import RateLimitedLog

log = logging.getLogger(__name__)
# Messages handed to paho at once; the rest wait in the outbox, so a long
# outage costs disk, not memory.
WINDOW = 100


class Publisher:
    """Publishes through a disk outbox; call start(), send(), close()."""

    def __init__(self, cfg: MqttConfig, client_id: str, outbox_path: str,
                 will: tuple[str, bytes] | None = None, outbox_max: int = 0,
                 birth: Callable[[], tuple[str, bytes]] | None = None) -> None:
        self.cfg = cfg
        self.outbox = Outbox(outbox_path, max_items=outbox_max)
        self._client = make_client(cfg, client_id)
        # Not loop_start(): its thread wakes every second, which costs an idle
        # agent more CPU than its collection (see IdleLoop).
        self._loop = IdleLoop(self._client, on_connect_fail=self._on_connect_fail)
        self._lock = threading.Lock()
        self._inflight: dict[int, int] = {}  # paho mid -> outbox id
        self._cursor = 0  # highest outbox id handed to paho
        self._early_acks: dict[int, bool] = {}  # acks that beat _pump to _inflight
        self._pumping = False
        self._again = False
        self._fresh: dict[int, bytes] = {}  # sent this run, not yet handed to paho
        self._fails = RateLimitedLog(log, 300)  # a long outage: one line per 5 min
        self._connected = threading.Event()
        self.last_error = ""
        # Sent (retained) on every connect: a Last Will fired during an outage
        # must not leave the host marked offline once it is back.
        self._birth = birth
        if will is not None:
            self._client.will_set(will[0], will[1], qos=QOS, retain=True)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish

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
        """Messages not yet acknowledged by the broker."""
        return len(self.outbox)

    def wait_acked(self, timeout_s: float) -> bool:
        """Block until the outbox is empty or the timeout (s) passes."""
        deadline = time.monotonic() + timeout_s
        while self.pending() and time.monotonic() < deadline:
            time.sleep(0.02)
        return not self.pending()

    def connected(self, timeout_s: float = 0) -> bool:
        return self._connected.wait(timeout_s)

    def close(self, last: tuple[str, bytes] | None = None, timeout_s: float = 5.0) -> None:
        """Optionally send ``last`` (retained), wait for acks, disconnect."""
        if last is not None and self._connected.is_set():
            self.send(last[0], last[1], retain=True)
        if self._connected.is_set():
            self.wait_acked(timeout_s)
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
                    batch = self._next_batch(room) if room > 0 else []
                    if batch:
                        self._cursor = batch[-1][0]
                for oid, item in batch:
                    topic, payload, retain = unpack(item)
                    info = self._client.publish(topic, payload, qos=QOS, retain=retain)
                    with self._lock:
                        if self._early_acks.pop(info.mid, False):
                            done = True  # acked before we noted the mid
                        else:
                            self._inflight[info.mid] = oid
                            done = False
                    if done:
                        self.outbox.delete([oid])
                with self._lock:
                    if not batch and not self._again:
                        return
        finally:
            with self._lock:
                self._pumping = False
                self._early_acks.clear()  # only a running pump can own them

    def _next_batch(self, room: int) -> list[tuple[int, bytes]]:
        """Up to ``room`` items after the cursor: from memory when this run
        stored them, else from disk (earlier runs, or after a reconnect)."""
        fresh = [(oid, item) for oid, item in self._fresh.items() if oid > self._cursor]
        if fresh and fresh[0][0] == self.outbox.first_after(self._cursor):
            batch = fresh[:room]
        else:
            batch = self.outbox.peek(room, after=self._cursor)
        for oid, _ in batch:
            self._fresh.pop(oid, None)
        return batch

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any,
                    reason: Any, props: Any) -> None:
        if reason.is_failure:
            self.last_error = f"broker refused connection: {reason}"
            log.error("%s:%s: %s", self.cfg.host, self.cfg.port, self.last_error)
            return
        log.info("connected to %s:%s", self.cfg.host, self.cfg.port)
        with self._lock:
            # Clean session: the broker forgot our in-flight messages; paho
            # would resend its own, but restarting from the outbox is simpler
            # and covers messages stored before this process started.
            self._inflight.clear()
            self._early_acks.clear()
            self._cursor = 0
        self.last_error = ""
        self._connected.set()
        if self._birth is not None:
            topic, payload = self._birth()
            self.send(topic, payload, retain=True)
        self._pump()

    def _on_connect_fail(self, exc: OSError) -> None:
        self.last_error = "cannot connect"
        self._fails.log(logging.WARNING, "connect", "%s:%s: cannot connect, retrying: %s",
                        self.cfg.host, self.cfg.port, exc)

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any,
                       reason: Any, props: Any) -> None:
        self._connected.clear()
        if reason.is_failure or reason.value != 0:
            self.last_error = f"disconnected: {reason}"
            log.warning("%s:%s: %s", self.cfg.host, self.cfg.port, self.last_error)

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int,
                    reason: Any, props: Any) -> None:
        with self._lock:
            oid = self._inflight.pop(mid, None)
            if oid is None and self._pumping:
                self._early_acks[mid] = True
        if oid is not None:
            if reason.is_failure:
                log.warning("broker rejected message %d: %s", oid, reason)
            self.outbox.delete([oid])
        self._pump()


def pack(topic: str, payload: bytes, retain: bool) -> bytes:
    """One outbox item: ``<retain 0|1> <topic>\n<payload>`` (topics have no newline)."""
    return f"{int(retain)} {topic}\n".encode() + payload


def unpack(item: bytes) -> tuple[str, bytes, bool]:
    head, _, payload = item.partition(b"\n")
    retain, _, topic = head.decode().partition(" ")
    return topic, payload, retain == "1"


def outbox_path(state_dir: str) -> str:
    return os.path.join(state_dir, "outbox")
