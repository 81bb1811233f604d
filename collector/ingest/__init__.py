"""The write path: where a message enters and how it becomes durable.

``subscriber`` (MQTT in, manual acks) -> ``netroom.protocol.decode`` ->
``points`` (message -> points) -> ``writer`` (batches to InfluxDB) ->
``delivery`` (requests under the body limit; refused ones split down to the
bad line) -> InfluxDB, or ``spool`` (fsync'd files while InfluxDB cannot take
them; ``drainer`` replays them), and ``deadletter`` (messages set aside:
invalid, unencodable, refused). A message is acknowledged to the broker only
once it is durable in one of them.
"""
