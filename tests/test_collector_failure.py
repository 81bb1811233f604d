"""A bug of the collector meeting a valid message: the message is not
acknowledged (so not lost), ingest stops taking messages and the collector
asks to end (the entry point then exits 1 for the service manager to restart
it). A fresh collector on the same session receives the message again."""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

from harness import T0, Publisher, message, series, wait_count, write_config
from servers import Influxd, Mosquitto

from collector.config import load
from collector.service import Collector


def test_a_bug_meeting_a_valid_message_ends_the_collector_and_loses_nothing(
        tmp_path: Path, mosquitto: Mosquitto, influxd: Influxd) -> None:
    cfg = load(write_config(tmp_path, mosquitto, influxd, db="bug"))

    def tags_for(site: str) -> Mapping[str, str]:
        # Stands for a bug in the collector that only this site's data meets.
        if site == "sq-bug":
            raise KeyError(site)
        return {}

    svc = Collector(cfg, tags_for=tags_for)
    svc.start()
    try:
        assert svc.ingest.subscribed.wait(10)
        pub = Publisher(mosquitto)
        pub.publish(*message("metrics", {"cpu_percent": 1.0}, ts=T0))
        pub.publish(*message("metrics", {"cpu_percent": 2.0}, site="sq-bug", ts=1764000001))
        pub.publish(*message("metrics", {"cpu_percent": 3.0}, ts=1764000002))
        pub.close()
        assert svc.failed.wait(10), "the collector did not notice its own failure"
        assert "KeyError" in svc.failure
    finally:
        svc.stop()
    # The message before the failure landed; the failing one and the one after
    # it were not acknowledged, so the broker still holds them for our session.
    assert wait_count(influxd, "bug", "metrics", "cpu_percent", 1) == 1

    fixed = Collector(cfg)
    fixed.start()
    try:
        assert fixed.ingest.subscribed.wait(10)
        assert wait_count(influxd, "bug", "metrics", "cpu_percent", 3) == 3
        assert not fixed.failed.is_set()
    finally:
        fixed.stop()
    rows = sorted((r["site"], r["cpu_percent"]) for r in series(influxd.query(
        'SELECT "cpu_percent", "site" FROM "metrics"', "bug")))
    assert rows == [("sq-1", 1.0), ("sq-1", 3.0), ("sq-bug", 2.0)]
