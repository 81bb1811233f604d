"""InfluxDB through its v1 HTTP API: ``settings`` (config), ``line`` (line
protocol), ``client`` (write and query). Works with 1.x, and 2.x/3.x via
their v1 compatibility endpoints."""
