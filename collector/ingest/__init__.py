"""The write path: where a message enters and how it becomes durable.

``subscriber`` (MQTT in, manual acks) -> ``netroom.protocol.decode`` ->
``points`` (message -> points) -> ``writer`` (batches to InfluxDB) ->
``spool`` / ``diskqueue`` (SQLite on disk while InfluxDB cannot take them).
A message is acknowledged to the broker only once its batch is durable.
"""
