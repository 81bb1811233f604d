"""Cyclic garbage collection paused around a bounded burst of allocation.

An evaluation pass at bureau scale builds a few hundred thousand short-lived,
acyclic tuples; every few thousand of them CPython runs a collection, and
each full one walks the whole heap (the sites tree included). Measured at
1,000 sites x 40 PCs: 2.5 s of CPU per pass with the collector running, 1.5 s
without (bench/state_scale.py). Reference counting still frees everything
as usual; cycles made meanwhile wait for the next collection after the block.
"""
from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused() -> Iterator[None]:
    """No cyclic collection inside the block (restored as it was after it)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
