"""netroom agent: collects facts about one PC and publishes them over MQTT."""

__version__ = "0.1.0"
