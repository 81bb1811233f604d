"""Helpers for tests that run the real pipeline: config files, a collector
(in-process or as a subprocess), agent-shaped messages, InfluxQL read-back.

Everything talks to the real servers started by the fixtures in conftest.py.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import paho.mqtt.client as mqtt
import yaml
from paho.mqtt.enums import CallbackAPIVersion
from servers import Influxd, Mosquitto, wait_until

from netroom import protocol

REPO = Path(__file__).resolve().parent.parent
# A fixed message time for a test run, an hour ago: inside the collector's
# clock bounds (collector.clock_behind), so it is stored as sent.
T0 = int(time.time()) - 3600


def write_config(tmp: Path, mosq: Mosquitto, influxd: Influxd | None = None, db: str = "netroom",
                 **sections: Any) -> Path:
    """A config.yaml pointing at the test servers; ``sections`` merge over it."""
    cfg: dict[str, Any] = {
        "mqtt": {"host": mosq.host, "port": mosq.port},
        "agent": {"site": "sq-1", "network": "gov", "role": "room", "interval": 1,
                  "state_dir": str(tmp / "agent-state")},
        "collector": {"spool_dir": str(tmp / "spool"), "batch_size": 500,
                      "flush_interval": 0.2, "stats_interval": 1},
    }
    if influxd is not None:
        cfg["influxdb"] = {"url": influxd.url, "database": db}
    for name, values in sections.items():
        if isinstance(values, dict) and isinstance(cfg.get(name), dict):
            cfg[name] = {**cfg[name], **values}
        else:
            cfg[name] = values
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return path


def run_cli(module: str, *args: str, timeout: float = 60,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m <module> args`` (agent, collector, collector.cli.main)."""
    return subprocess.run(
        [sys.executable, "-m", module, *args], capture_output=True, text=True,
        timeout=timeout, cwd=REPO, env={**os.environ, **(env or {})}, check=False,
    )


def start_collector(config: Path, log: Path) -> subprocess.Popen[bytes]:
    """The real collector as a subprocess (so tests can SIGKILL it)."""
    fh = open(log, "ab")  # noqa: SIM115 - the child owns it
    return subprocess.Popen([sys.executable, "-m", "collector", "--config", str(config)],
                            stdout=fh, stderr=subprocess.STDOUT, cwd=REPO)


def stop_process(p: subprocess.Popen[bytes], timeout: float = 20) -> int:
    if p.poll() is None:
        p.terminate()
    return p.wait(timeout)


def message(kind: str, body: dict[str, Any], *, site: str = "sq-1", host: str = "pc-1",
            network: str = "gov", role: str = "room", ts: float | None = None
            ) -> tuple[str, bytes]:
    """A topic and payload exactly as an agent would send them."""
    payload = protocol.envelope(site, host, network, role, time.time() if ts is None else ts)
    if kind == "metrics":
        payload["collect_ms"] = 1.0  # required: the agent always measures it
    payload.update(body)
    return protocol.topic(site, host, kind), protocol.encode(payload)


class Publisher:
    """A plain MQTT 5 publisher for tests; publish() waits for PUBACK."""

    def __init__(self, mosq: Mosquitto, client_id: str = "test-publisher") -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=mqtt.MQTTv5)
        self.client.connect(mosq.host, mosq.port)
        self.client.loop_start()

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(10)
        assert info.is_published(), f"broker did not acknowledge {topic}"

    def publish_many(self, msgs: list[tuple[str, bytes]]) -> None:
        infos = [self.client.publish(t, p, qos=1) for t, p in msgs]
        for info in infos:
            info.wait_for_publish(30)
            assert info.is_published()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def series(result: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Rows of an InfluxQL JSON answer as dicts (with the series' tags)."""
    for res in result.get("results", []):
        if "error" in res:
            raise AssertionError(res["error"])
        for s in res.get("series", []):
            for values in s["values"]:
                row = dict(zip(s["columns"], values))
                row.update(s.get("tags") or {})
                yield row


def count(influxd: Influxd, db: str, measurement: str, field: str,
          where: str = "") -> int:
    q = f'SELECT count("{field}") FROM "{measurement}"' + (f" WHERE {where}" if where else "")
    rows = list(series(influxd.query(q, db)))
    return int(rows[0][next(k for k in rows[0] if k.startswith("count"))]) if rows else 0


def wait_count(influxd: Influxd, db: str, measurement: str, field: str, n: int,
               where: str = "", timeout: float = 20) -> int:
    """Poll until ``count(field) >= n``; return the count. At the timeout (s)
    an AssertionError: a test that waits for points must not go on without them
    (it would compare nothing with nothing)."""
    if not wait_until(lambda: count(influxd, db, measurement, field, where) >= n, timeout, 0.1):
        got = count(influxd, db, measurement, field, where)
        raise AssertionError(f"{measurement}.{field}: {got} of {n} points after {timeout:g} s")
    return count(influxd, db, measurement, field, where)


def dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, sort_keys=True)
