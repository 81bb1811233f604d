"""netroom agent: collects facts about one PC and publishes them over MQTT."""
