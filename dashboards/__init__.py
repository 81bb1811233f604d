"""netroom's Grafana dashboards: a generator (build.py) and its output (generated/)."""
