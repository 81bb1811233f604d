"""systemd's notify protocol: READY at start, WATCHDOG while ingestion turns.

With ``Type=notify`` and ``WatchdogSec=`` (deploy/systemd), systemd kills and
restarts the collector when the keep-alive stops: the collector sends it only
while its writer and drainer threads keep turning, so a thread stuck for good
(not merely waiting for InfluxDB or disk space, which it handles itself)
restarts the process. Without ``NOTIFY_SOCKET`` (not under systemd) this is
a no-op. The protocol is one datagram per state (sd_notify(3)); no library
needed.
"""
from __future__ import annotations

import logging
import os
import socket
from typing import Mapping

log = logging.getLogger(__name__)


class Notifier:
    def __init__(self, env: Mapping[str, str] = os.environ) -> None:
        addr = env.get("NOTIFY_SOCKET", "")
        # An abstract socket is written "@name" and addressed with a NUL byte.
        self.address = "\0" + addr[1:] if addr.startswith("@") else addr
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        mine = not pid or pid == str(os.getpid())
        # Seconds within which systemd wants a keep-alive; 0: no watchdog.
        self.watchdog_s = int(usec) / 1e6 if usec.isdigit() and mine else 0.0

    @property
    def enabled(self) -> bool:
        return bool(self.address)

    def notify(self, *states: str) -> None:
        """Send ``KEY=value`` states; a failure is logged, never raised."""
        if not self.address:
            return
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
                s.sendto("\n".join(states).encode(), self.address)
        except OSError as exc:
            log.warning("cannot notify systemd at %r: %s", self.address, exc)
