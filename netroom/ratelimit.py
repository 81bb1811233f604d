"""Rate-limited logging: a flood of one error costs one line per period."""
from __future__ import annotations

import logging
import time
from typing import Any, Callable


class RateLimitedLog:
    """Logs a given key at most once per ``period_s``, counting what it held back."""

    def __init__(self, logger: logging.Logger, period_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.logger = logger
        self.period_s = period_s
        self.clock = clock
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def log(self, level: int, key: str, msg: str, *args: Any) -> bool:
        """Log unless ``key`` was logged within the period; True if logged."""
        now = self.clock()
        last = self._last.get(key)
        if last is not None and now - last < self.period_s:
            self._held[key] = self._held.get(key, 0) + 1
            return False
        held = self._held.pop(key, 0)
        if held:
            msg += " (%d more like this held back)"
            args = (*args, held)
        self._last[key] = now
        self.logger.log(level, msg, *args)
        return True
