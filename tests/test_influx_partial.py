"""InfluxDB's answers cut short by [http] max-row-limit are refused, not used.

A limit makes influxd end a long answer early, drop the series after the cut
and say only "partial": read as complete, the PCs left out would count as
missing (a shortfall, a purchase). Real influxd with max-row-limit = 2.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Iterator

import fleets
import pytest
from harness import run_cli, write_config
from servers import Influxd, Mosquitto

from collector.influx.client import InfluxSink, SinkError
from collector.influx.settings import InfluxConfig

DB = "partial"


@pytest.fixture()
def limited(tmp_path: Path) -> Iterator[Influxd]:
    with Influxd(tmp_path / "influxd", http_config=["max-row-limit = 2"]) as d:
        d.query(f"CREATE DATABASE {DB}", "")
        yield d


def test_an_answer_cut_short_is_an_error_naming_the_setting(limited: Influxd) -> None:
    sink = InfluxSink(InfluxConfig(url=limited.url, database=DB))
    now = int(time.time() * 1000)
    sink.write([f"inventory,site=sq-1,host=pc-{i} host_id=\"id-{i}\" {now - i}"
                for i in range(5)])
    # Within the limit: one row per series, two series.
    assert len(sink.query('SELECT last("host_id") FROM "inventory" WHERE "host" = \'pc-0\' '
                          'OR "host" = \'pc-1\' GROUP BY "host"')) == 2
    with pytest.raises(SinkError, match=r"cut its answer short .*max-row-limit = 0"):
        sink.query('SELECT "host_id" FROM "inventory" GROUP BY "host"')


def test_report_from_a_limited_influxdb_fails_with_one_line(
        tmp_path: Path, mosquitto: Mosquitto, limited: Influxd) -> None:
    sink = InfluxSink(InfluxConfig(url=limited.url, database=DB))
    now = int(time.time() * 1000)  # within the loaders' window
    sink.write([f"inventory,site=sq-pass,host=pc-{i},network=gov,role=room "
                f"host_id=\"id-{i}\",hostname=\"pc-{i}\" {now - i}" for i in range(5)])
    cfg = write_config(tmp_path, mosquitto, sites=fleets.TREE,
                       influxdb={"url": limited.url, "database": DB})
    r = run_cli("collector.cli.main", "report", "--config", str(cfg), "--source", "influxdb")
    assert r.returncode == 1, r.stdout
    assert r.stderr.startswith("netroom report: error: cannot read InfluxDB at ")
    assert "max-row-limit" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
