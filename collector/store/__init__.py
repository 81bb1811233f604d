"""Reads from InfluxDB for the rules, and the points derived from them.

``snapshot`` builds every site's Snapshot with one loader per fact
(``loaders/``); ``heartbeats`` reads room PCs' heartbeats; ``rows`` is what
loaders exchange; ``writeback`` turns an evaluation into ``compliance``,
``availability`` and ``room_state`` points.
"""
