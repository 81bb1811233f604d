"""InfluxDB errors every layer may catch, without importing the HTTP client."""
from __future__ import annotations


class SinkError(Exception):
    """A write that may succeed later (server down, 5xx, auth): retry it."""
