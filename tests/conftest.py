"""pytest fixtures that run real mosquitto and influxd servers on 127.0.0.1.

Each server lives in the test's tmp_path and is killed at teardown. Startup is
fast (mosquitto ~25 ms, influxd ~50 ms), so every fixture is function-scoped.
Missing binaries fail the test (never skip): run `bash scripts/setup.sh`.
"""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from servers import INFLUXD_BIN, INSTALL_HINT, MOSQUITTO_BIN, Influxd, Mosquitto, _Server

_S = TypeVar("_S", bound=_Server)


def _require(binary: str) -> None:
    if not os.access(binary, os.X_OK):
        pytest.fail(f"{binary} is missing: {INSTALL_HINT}", pytrace=False)


@pytest.fixture
def mosquitto_factory(tmp_path: Path) -> Iterator[Callable[..., Mosquitto]]:
    """Start extra brokers: `mosquitto_factory(extra_config=[...])` -> started Mosquitto.

    Keyword arguments go to `Mosquitto(...)`; all are stopped at teardown.
    """
    yield from _factory(Mosquitto, MOSQUITTO_BIN, tmp_path / "mosquitto")


@pytest.fixture
def influxd_factory(tmp_path: Path) -> Iterator[Callable[..., Influxd]]:
    """Start extra influxd: `influxd_factory(auth_enabled=True)` -> started Influxd."""
    yield from _factory(Influxd, INFLUXD_BIN, tmp_path / "influxd")


def _factory(cls: Callable[..., _S], binary: str, workdir: Path) -> Iterator[Callable[..., _S]]:
    _require(binary)
    made: list[_S] = []

    def make(**kwargs: Any) -> _S:
        kwargs.setdefault("workdir", Path(f"{workdir}{len(made)}"))
        server = cls(**kwargs)
        made.append(server)
        server.start()
        return server

    yield make
    for server in made:
        server.kill()


@pytest.fixture
def mosquitto(mosquitto_factory: Callable[..., Mosquitto]) -> Mosquitto:
    """A started, anonymous, persistent broker: use `.host`, `.port`, `.stop()`, `.start()`."""
    return mosquitto_factory()


@pytest.fixture
def influxd(influxd_factory: Callable[..., Influxd]) -> Influxd:
    """A started influxd without auth: use `.url`, `.query()`, `.post()`, `.write()`."""
    return influxd_factory()


@pytest.fixture
def influx_db(influxd: Influxd) -> str:
    """Name of a freshly created, uniquely named database on `influxd`."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    influxd.post(f'CREATE DATABASE "{name}"')
    return name


@pytest.fixture
def run_collector() -> Iterator[Callable[[Path], Any]]:
    """Start the real collector in this process: `run_collector(config_path)`.

    Returns the started collector.service.Collector once it is subscribed;
    all are stopped at teardown.
    """
    from collector.config import load
    from collector.service import Collector

    started: list[Collector] = []

    def start(config: Path) -> Collector:
        svc = Collector(load(config))
        svc.start()
        started.append(svc)
        assert svc.ingest.subscribed.wait(10), "collector did not subscribe"
        return svc

    yield start
    for svc in started:
        svc.stop()
