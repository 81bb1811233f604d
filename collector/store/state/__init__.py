"""The state the rules need, kept at ingest: records, the SQLite store, snapshots, rebuild."""
