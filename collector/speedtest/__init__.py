"""The intranet speed-test server that gov PCs' testers measure against."""
