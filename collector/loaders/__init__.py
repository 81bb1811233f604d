"""Snapshot loaders, one module each; registered in collector.snapshot.loaders()."""
