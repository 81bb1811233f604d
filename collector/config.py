"""The collector's config: `mqtt`, `influxdb`, `collector`, `sites` and `rules`."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from collector.compliance.model import Org
from collector.compliance.orgconfig import read_org
from collector.influx.settings import InfluxConfig, read_influx
from collector.ingest.spool import default_spool_dir
from collector.ingest.subscriber import DEFAULT_PROTOCOL, SubscriberConfig, read_item_series
from collector.speedtest.server import SpeedServerConfig
from collector.speedtest.server import read_config as read_speedserver
from netroom import schema
from netroom.mqtt import PROTOCOLS, MqttConfig, read_mqtt
from netroom.settings import ConfigError, Section, load_yaml

__all__ = ["CollectorConfig", "ConfigError", "InfluxConfig", "default_spool_dir", "load",
           "read_influx"]


@dataclass(frozen=True)
class CollectorConfig:
    mqtt: MqttConfig
    influxdb: InfluxConfig
    client_id: str = "netroom-collector"
    batch_size: int = 5000  # messages per InfluxDB write
    flush_interval_s: float = 1.0
    spool_dir: str = "/var/lib/netroom/spool"
    stats_interval_s: float = 10.0
    receive_maximum: int = 65535
    workers: int = 1  # ingest processes sharing the subscription (collector/workers.py)
    queue_max_bytes: int = 256 * 2**20  # messages in memory, not yet durable (backpressure)
    max_body_bytes: int = 8 * 2**20  # the largest InfluxDB write request
    spool_max_bytes: int = 8 * 2**30  # the spool's bound (0: only the disk's)
    spool_min_free_bytes: int = 64 * 2**20  # free space the spool leaves on its disk
    deadletter_max_bytes: int = 2**30  # the dead-letter store's bound (oldest go first)
    clock_ahead_s: float = schema.CLOCK_AHEAD_MS / 1000  # message ts later than receive + this
    clock_behind_s: float = schema.CLOCK_BEHIND_MS / 1000  # ... or earlier than receive - this
    subscription: str = "netroom/v1/#"
    item_series: tuple[str, ...] = ()  # metrics sections also stored one point per item
    mqtt_protocol: str = ""  # the MQTT version ingest speaks ("": mqtt.protocol)
    # The state the rules need (collector/store/state/): one file all workers
    # share, in spool_dir (worker i spools in spool_dir/i).
    state_dir: str = ""
    primary: bool = True  # runs the site evaluation; False in extra worker processes
    org: Org = field(default_factory=Org)  # the `sites` tree and `rules`
    speedtest: SpeedServerConfig = field(default_factory=SpeedServerConfig)

    @property
    def subscriber(self) -> SubscriberConfig:
        mqtt = self.mqtt._replace(protocol=self.mqtt_protocol or self.mqtt.protocol)
        return SubscriberConfig(mqtt, self.client_id, self.subscription,
                                self.receive_maximum, self.clock_ahead_s, self.clock_behind_s,
                                self.item_series)


def load(path: str | Path) -> CollectorConfig:
    """Load and validate the collector's sections; raise ConfigError."""
    data = load_yaml(path)
    mqtt = read_mqtt(data.get("mqtt"))
    influx = read_influx(data.get("influxdb"))
    s = Section(data.get("collector"), "collector")
    cfg = CollectorConfig(
        mqtt=mqtt,
        influxdb=influx,
        client_id=s.text("client_id", "netroom-collector"),
        batch_size=s.integer("batch_size", 5000, 1, 100_000),
        flush_interval_s=s.number("flush_interval", 1.0, 0.01, 60),
        spool_dir=s.text("spool_dir", "") or default_spool_dir(),
        stats_interval_s=s.number("stats_interval", 10, 1, 3600),
        receive_maximum=s.integer("receive_maximum", 65535, 1, 65535),
        workers=s.integer("workers", 1, 1, 64),
        queue_max_bytes=s.size("queue_max_bytes", 256 * 2**20, 2**20),
        max_body_bytes=s.size("max_body_bytes", 8 * 2**20, 64 * 2**10, 2**30),
        spool_max_bytes=s.size("spool_max_bytes", 8 * 2**30),
        spool_min_free_bytes=s.size("spool_min_free_bytes", 64 * 2**20),
        deadletter_max_bytes=s.size("deadletter_max_bytes", 2**30),
        clock_ahead_s=s.number("clock_ahead", schema.CLOCK_AHEAD_MS / 1000, 10, 366 * 86400),
        clock_behind_s=s.number("clock_behind", schema.CLOCK_BEHIND_MS / 1000, 60,
                                3660 * 86400),
        item_series=read_item_series(s),
        mqtt_protocol=s.choice("mqtt_protocol", PROTOCOLS, DEFAULT_PROTOCOL or mqtt.protocol),
        org=read_org(data.get("sites"), data.get("rules")),
        speedtest=read_speedserver(s.raw("speedtest")),
    )
    s.done()
    return dataclasses.replace(cfg, state_dir=cfg.spool_dir)
