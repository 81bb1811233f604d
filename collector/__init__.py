"""netroom collector: MQTT in, validated, into InfluxDB; compliance out."""
