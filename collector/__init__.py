"""netroom collector: MQTT in, InfluxDB out, every site checked against the notice.

Layers, each importing only those above it in this list (tests/test_architecture.py):

- ``netroom`` (shared with the agent): wire protocol, names, MQTT, settings;
- ``compliance``: the org tree, site snapshots, rules, availability maths (pure);
- ``influx``: the InfluxDB v1 HTTP API: line protocol, writes, queries;
- ``speedtest``: the intranet speed-test server;
- ``ingest``: MQTT in -> validate -> points -> writer -> spool -> InfluxDB;
- ``store``: reads from InfluxDB into snapshots; write-backs of derived points;
- ``report``: formatting an evaluation (table, JSON, CSV, HTML; zh/en);
- wiring: ``config``, ``service``, ``workers``, ``__main__`` (netroom-collector);
- ``cli``: ``netroom`` sub-commands: argument parsing and exit codes only.
"""
