"""One loader per kind of fact, registered in collector.store.snapshot."""
