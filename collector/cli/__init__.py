"""The ``netroom`` command: argument parsing, output and exit codes only.

``main`` (report, entry point), ``rooms`` (availability, isolation),
``dashboards`` (push to Grafana), ``speedserver``.
"""
