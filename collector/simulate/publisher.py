"""Many MQTT connections from one process: the simulated fleet's agents, on one thread.

One connection per PC by default, as the production broker wants (a user
``<site>/<host>`` per PC, bound to its client id, allowed only its own topics:
docs/security.md); or ``connections`` shared ones (PCs spread over them),
which only a broker without per-PC users and ACLs accepts.

Every client is a paho 2.x client made by netroom.mqtt.make_client, driven
through paho's external-loop API (loop_read/loop_write/loop_misc and the
on_socket_* callbacks) from one selector, so thousands of connections cost
one thread and one socket each. New connections are opened at most
``connect_rate`` a second. Messages go out with QoS 1; a message counts as
acked on its PUBACK (a PUBACK with a failure reason code, MQTT 5, counts as
failed), and every message still unacknowledged when the run ends counts as
failed too.

Runs: connect every client; publish ``backfill_s`` of history (never more
than ``max_pending`` unacknowledged at once, so memory stays flat); publish
each PC's messages at its interval for ``duration_s`` (0: until stop() or
a signal); each PC's retained status offline, as an agent's clean shutdown;
wait up to ``drain_s`` for the last acks; disconnect.
"""
from __future__ import annotations

import contextlib
import heapq
import logging
import resource
import selectors
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import paho.mqtt.client as mqtt

from collector.simulate import messages
from collector.simulate.fleet import PC, Fleet, SimSite
from netroom import mqtt as nmqtt
from netroom.settings import ConfigError

log = logging.getLogger(__name__)

# Descriptors besides the connections: stdio, the selector, logging, slack.
SPARE_FDS = 64
RECONNECT_MIN_S = 1.0
RECONNECT_MAX_S = 30.0


@dataclass
class Summary:
    """What a run did. ``failed``: refused (PUBACK reason code, a refused
    connection) or never acknowledged; ``pending`` is 0 after a run."""

    pcs: int = 0
    connections: int = 0
    connected: int = 0
    refused: dict[str, str] = field(default_factory=dict)  # client id -> reason
    sent: int = 0
    acked: int = 0
    failed: int = 0
    backfilled: int = 0
    elapsed_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.sent > 0 and self.acked == self.sent and not self.refused


def fd_limit(needed: int) -> tuple[int, int]:
    """Raise this process's open-file limit towards ``needed`` (up to the hard
    limit, which needs no privilege); return (soft, hard) as they now are."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        want = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
            soft = want
        except (ValueError, OSError):
            pass
    return soft, hard


def check_fds(connections: int) -> None:
    """ConfigError up front when this process cannot hold ``connections`` sockets."""
    needed = connections + SPARE_FDS
    soft, hard = fd_limit(needed)
    if soft != resource.RLIM_INFINITY and soft < needed:
        shown = "unlimited" if hard == resource.RLIM_INFINITY else str(hard)
        raise ConfigError(
            f"{connections} connections need about {needed} open files, but this process "
            f"may open {soft} (ulimit -n; hard limit {shown}). Raise the limit (as root: "
            f"ulimit -n {needed}), or share connections with --connections K (only "
            f"against a broker without per-PC users and ACLs)")


class _Conn:
    """One MQTT connection and the PCs that publish through it."""

    def __init__(self, client: mqtt.Client, client_id: str) -> None:
        self.client = client
        self.client_id = client_id
        self.pending: set[int] = set()
        self.connected = False
        self.refused = ""
        self.tried = False
        self.next_try = 0.0
        self.delay = RECONNECT_MIN_S
        self.sock: Any = None


class Publisher:
    """The fleet's agents on ``cfg``'s broker. ``passwords``: user -> password,
    for per-PC users (``<site>/<host>``); without, every connection logs in
    with ``cfg``'s user, if any. ``connections``: 0 for one per PC."""

    def __init__(self, cfg: nmqtt.MqttConfig, fleet: Fleet, *, connections: int = 0,
                 passwords: dict[str, str] | None = None, connect_rate: float = 50.0,
                 max_pending: int = 5000, drain_s: float = 15.0,
                 say: Callable[[str], None] | None = None) -> None:
        self.cfg = cfg
        self.fleet = fleet
        self.connect_rate = connect_rate
        self.max_pending = max_pending
        self.drain_s = drain_s
        self.say = say or (lambda line: None)
        self.summary = Summary(pcs=len(fleet.pcs))
        self._stop = False
        self._sel = selectors.DefaultSelector()
        self._conns: list[_Conn] = []
        self._of: dict[tuple[str, str], _Conn] = {}  # (site, host) -> its connection
        self._pending = 0
        pcs = fleet.pcs
        per_pc = connections <= 0
        n = len(pcs) if per_pc else min(connections, len(pcs))
        for i in range(n):
            if per_pc:
                pc = pcs[i]
                user = f"{pc.site}/{pc.host}"
                conn = self._client(user, user if passwords is not None else cfg.username,
                                    passwords.get(user) if passwords is not None
                                    else cfg.password)
                self._will(conn, pc)
            else:
                cid = f"netroom-simulate-{i}"
                conn = self._client(cid, cfg.username, cfg.password)
            self._conns.append(conn)
        for i, pc in enumerate(pcs):
            self._of[(pc.site, pc.host)] = self._conns[i % n]
        self.summary.connections = n

    # --- set-up ------------------------------------------------------------

    def _client(self, client_id: str, user: str | None, password: str | None) -> _Conn:
        client = nmqtt.make_client(self.cfg._replace(username=None), client_id)
        if user:
            client.username_pw_set(user, password)
        conn = _Conn(client, client_id)
        client.user_data_set(conn)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_socket_open = self._on_socket_open
        client.on_socket_close = self._on_socket_close
        client.on_socket_register_write = self._on_write_wanted
        client.on_socket_unregister_write = self._on_write_done
        return conn

    def _will(self, conn: _Conn, pc: PC) -> None:
        """The agent's Last Will: its retained status offline, ``will`` true."""
        out = messages.offline(self.fleet, pc, time.time(), will=True)
        conn.client.will_set(out.topic, out.payload, qos=nmqtt.QOS, retain=True)

    # --- paho's callbacks (all on our thread) -------------------------------

    def _on_connect(self, client: mqtt.Client, conn: _Conn, flags: Any, rc: Any,
                    props: Any) -> None:
        if rc.is_failure:
            conn.refused = str(rc)
            self.summary.refused[conn.client_id] = conn.refused
            return
        conn.connected = True
        conn.delay = RECONNECT_MIN_S

    def _on_disconnect(self, client: mqtt.Client, conn: _Conn, flags: Any, rc: Any,
                       props: Any) -> None:
        was = conn.connected
        conn.connected = False
        if not self._stop and not conn.refused:
            conn.next_try = time.monotonic() + conn.delay
            conn.delay = min(conn.delay * 2, RECONNECT_MAX_S)
            if was:
                log.warning("%s: disconnected (%s), reconnecting", conn.client_id, rc)

    def _on_publish(self, client: mqtt.Client, conn: _Conn, mid: int, rc: Any,
                    props: Any) -> None:
        if mid not in conn.pending:
            return
        conn.pending.discard(mid)
        self._pending -= 1
        if rc.is_failure:
            self.summary.failed += 1
        else:
            self.summary.acked += 1

    def _on_socket_open(self, client: mqtt.Client, conn: _Conn, sock: Any) -> None:
        conn.sock = sock
        self._sel.register(sock, selectors.EVENT_READ, conn)

    def _on_socket_close(self, client: mqtt.Client, conn: _Conn, sock: Any) -> None:
        if conn.sock is not None:
            with contextlib.suppress(KeyError, ValueError):
                self._sel.unregister(conn.sock)
            conn.sock = None

    def _on_write_wanted(self, client: mqtt.Client, conn: _Conn, sock: Any) -> None:
        if conn.sock is not None:
            self._sel.modify(conn.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, conn)

    def _on_write_done(self, client: mqtt.Client, conn: _Conn, sock: Any) -> None:
        if conn.sock is not None:
            self._sel.modify(conn.sock, selectors.EVENT_READ, conn)

    # --- the loop -------------------------------------------------------------

    def stop(self) -> None:
        """End the run at the next turn of the loop (a signal handler may call it)."""
        self._stop = True

    def _connect_due(self, now: float, budget: int) -> int:
        """(Re)connect clients that are due, at most ``budget``; return how many tried."""
        tried = 0
        for conn in self._conns:
            if tried >= budget:
                break
            if conn.connected or conn.refused or conn.sock is not None or now < conn.next_try:
                continue
            tried += 1
            try:
                if conn.tried:
                    conn.client.reconnect()
                else:
                    conn.tried = True
                    conn.client.connect(**nmqtt.connect_args(self.cfg, persistent=False))
            except (OSError, ValueError) as exc:
                if not any(c.connected for c in self._conns) and self.summary.connected == 0:
                    raise ConnectionError(f"cannot connect to the broker at "
                                          f"{self.cfg.host}:{self.cfg.port}: {exc}") from None
                conn.next_try = now + conn.delay
                conn.delay = min(conn.delay * 2, RECONNECT_MAX_S)
        return tried

    def _turn(self, timeout: float) -> None:
        """Wait up to ``timeout`` s for socket events and handle them."""
        for key, mask in self._sel.select(max(timeout, 0.0)):
            conn: _Conn = key.data
            if mask & selectors.EVENT_READ and conn.sock is key.fileobj:
                conn.client.loop_read()
            if mask & selectors.EVENT_WRITE and conn.sock is key.fileobj:
                conn.client.loop_write()

    def _misc(self) -> None:
        for conn in self._conns:
            if conn.sock is not None:
                conn.client.loop_misc()

    def _publish(self, out: messages.Out) -> None:
        conn = self._of[(out.site, out.host)]
        self.summary.sent += 1
        if conn.refused:
            self.summary.failed += 1
            return
        info = conn.client.publish(out.topic, out.payload, qos=nmqtt.QOS, retain=out.retain)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            self.summary.failed += 1  # e.g. paho's queue full
            return
        conn.pending.add(info.mid)  # NO_CONN: queued by paho, sent on reconnect
        self._pending += 1

    def run(self, duration_s: float, backfill_s: float = 0.0) -> Summary:
        """Connect, backfill, publish live for ``duration_s`` (0: until stop()),
        shut down cleanly; the summary."""
        started = time.monotonic()
        try:
            self._connect_all()
            if backfill_s > 0 and not self._stop:
                self._backfill(backfill_s)
            if not self._stop:
                self._live(duration_s)
            self._shutdown()
        finally:
            self.summary.elapsed_s = time.monotonic() - started
            self._sel.close()
        return self.summary

    def _connect_all(self) -> None:
        n = len(self._conns)
        self.say(f"connecting {n} clients to {self.cfg.host}:{self.cfg.port}, at most "
                 f"{self.connect_rate:g} a second")
        deadline = time.monotonic() + 15 + n / self.connect_rate
        next_slot = time.monotonic()
        last_misc = time.monotonic()
        while not self._stop:
            now = time.monotonic()
            if now >= next_slot:
                # A burst of up to a tenth of a second's worth, then wait for the next.
                burst = max(1, int(self.connect_rate / 10))
                if self._connect_due(now, burst):
                    next_slot = now + burst / self.connect_rate
            up = sum(1 for c in self._conns if c.connected)
            done = sum(1 for c in self._conns if c.connected or c.refused)
            if done == n:
                break
            if now > deadline:
                raise ConnectionError(f"only {up} of {n} clients connected to "
                                      f"{self.cfg.host}:{self.cfg.port} in time")
            if now - last_misc >= 1:
                self._misc()
                last_misc = now
            self._turn(min(0.05, max(next_slot - time.monotonic(), 0.0)))
        self.summary.connected = sum(1 for c in self._conns if c.connected)
        if self.summary.refused:
            shown = "; ".join(f"{cid}: {why}" for cid, why in
                              list(self.summary.refused.items())[:5])
            more = len(self.summary.refused) - 5
            self.say(f"{len(self.summary.refused)} connections refused ({shown}"
                     + (f"; and {more} more" if more > 0 else "") + ")")

    def _keep_up(self) -> None:
        """Reconnect what dropped (rate-limited) and keep connections alive."""
        self._connect_due(time.monotonic(), max(1, int(self.connect_rate)))

    def _backfill(self, backfill_s: float) -> None:
        end = time.time()
        self.say(f"backfilling {backfill_s / 3600:g} h of history")
        history: Iterator[messages.Out] = messages.history(self.fleet, end - backfill_s, end)
        last_misc = time.monotonic()
        for out in history:
            self._publish(out)
            self.summary.backfilled += 1
            while self._pending >= self.max_pending and not self._stop:
                self._turn(0.05)
                if time.monotonic() - last_misc >= 1:
                    self._misc()
                    self._keep_up()
                    last_misc = time.monotonic()
            if self._stop:
                return
            if self.summary.backfilled % 200 == 0:
                self._turn(0)

    def _live(self, duration_s: float) -> None:
        if duration_s == 0:
            self.say("publishing until Ctrl-C or SIGTERM")
        elif duration_s > 0:
            self.say(f"publishing for {duration_s:g} s")
        start = time.time()
        end = start + duration_s if duration_s > 0 else float("inf")
        sites: dict[str, SimSite] = {s.id: s for s in self.fleet.sites}
        # (due time, tie-breaker, tick number, pc): every PC starts now, then
        # ticks at its interval.
        queue: list[tuple[float, int, int, PC]] = [
            (start, i, 0, pc) for i, pc in enumerate(self.fleet.pcs)]
        heapq.heapify(queue)
        last_misc = time.monotonic()
        while not self._stop:
            now = time.time()
            if now >= end:
                break
            while queue and queue[0][0] <= now and self._pending < self.max_pending:
                t, i, n, pc = heapq.heappop(queue)
                for out in messages.due(self.fleet, sites[pc.site], pc, now, n):
                    self._publish(out)
                heapq.heappush(queue, (t + self.fleet.interval_s, i, n + 1, pc))
            if time.monotonic() - last_misc >= 1:
                self._misc()
                self._keep_up()
                last_misc = time.monotonic()
            if self._pending >= self.max_pending:
                wait = 0.05  # until acks make room
            else:
                wait = min(queue[0][0] - time.time() if queue else 1.0, end - time.time(), 0.2)
            self._turn(wait)

    def _shutdown(self) -> None:
        now = time.time()
        for site in self.fleet.sites:
            for pc in site.pcs:
                # A clean shutdown, from PCs that are on and have a connection.
                if (self._of[(pc.site, pc.host)].connected
                        and messages.up(self.fleet, site, pc, now)):
                    self._publish(messages.offline(self.fleet, pc, now))
        deadline = time.monotonic() + self.drain_s
        last_misc = time.monotonic()
        while self._pending > 0 and time.monotonic() < deadline:
            self._turn(0.1)
            if time.monotonic() - last_misc >= 1:
                self._misc()
                self._keep_up()
                last_misc = time.monotonic()
        self.summary.failed += self._pending
        self._pending = 0
        self._stop = True
        for conn in self._conns:
            if conn.sock is not None:
                conn.client.disconnect()
        deadline = time.monotonic() + 2
        while any(c.sock is not None for c in self._conns) and time.monotonic() < deadline:
            self._turn(0.05)
