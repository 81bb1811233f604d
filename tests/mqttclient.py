"""A paho MQTT 5 test client that records what the broker answers.

Used by the broker tests (tests/test_broker_identity.py,
tests/test_deploy_mosquitto.py) against the real mosquitto; never reconnects.
"""
from __future__ import annotations

import threading
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from servers import Mosquitto, wait_until


class Client:
    """Logged in as ``user`` (None: anonymous), recording CONNACK, PUBACK,
    SUBACK, disconnects and messages."""

    def __init__(self, broker: Mosquitto, user: str | None, password: str, client_id: str,
                 persistent: bool = False, will: str | None = None) -> None:
        self.broker = broker
        self.persistent = persistent
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5,
                             client_id=client_id, reconnect_on_failure=False)
        if user is not None:
            self.c.username_pw_set(user, password)
        if will is not None:
            self.c.will_set(will, b'{"state": "offline"}', qos=1, retain=True)
        self.connack: Any = None
        self.session_present: bool | None = None
        self.disconnects: list[Any] = []
        self.acks: dict[int, int] = {}
        self.suback: list[int] = []
        self.messages: list[mqtt.MQTTMessage] = []
        self.lock = threading.Lock()
        self.c.on_connect = self._on_connect
        self.c.on_disconnect = lambda c, u, f, rc, p: self.disconnects.append(rc)
        self.c.on_publish = self._on_publish
        self.c.on_subscribe = lambda c, u, mid, rcs, p: self.suback.extend(r.value for r in rcs)
        self.c.on_message = self._on_message

    def _on_connect(self, c: Any, u: Any, flags: Any, rc: Any, p: Any) -> None:
        self.session_present = bool(flags.session_present)
        self.connack = rc

    def _on_publish(self, c: Any, u: Any, mid: int, rc: Any, p: Any) -> None:
        with self.lock:
            self.acks[mid] = rc.value

    def _on_message(self, c: Any, u: Any, m: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.messages.append(m)

    def connect(self) -> Any:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        if self.persistent:
            props.SessionExpiryInterval = 3600
        self.c.connect(self.broker.host, self.broker.port, clean_start=not self.persistent,
                       properties=props)
        self.c.loop_start()
        assert wait_until(lambda: self.connack is not None, 10), "no CONNACK"
        return self.connack

    def publish(self, topic: str, payload: bytes = b"{}", retain: bool = False) -> int:
        """Publish at QoS 1 and return the PUBACK reason code."""
        info = self.c.publish(topic, payload, qos=1, retain=retain)
        assert wait_until(lambda: info.mid in self.acks, 10), f"no PUBACK for {topic}"
        return self.acks[info.mid]

    def subscribe(self, topic: str) -> int:
        self.suback.clear()
        self.c.subscribe(topic, qos=1)
        assert wait_until(lambda: bool(self.suback), 10), "no SUBACK"
        return self.suback[0]

    def topics(self) -> list[str]:
        with self.lock:
            return [m.topic for m in self.messages]

    def payloads(self) -> list[bytes]:
        with self.lock:
            return [bytes(m.payload) for m in self.messages]

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()
