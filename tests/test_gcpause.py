"""collector.gcpause: cyclic collection off inside the block, as it was after it."""
from __future__ import annotations

import gc

import pytest

from collector import gcpause


def test_paused_inside_and_restored_after_even_on_error() -> None:
    assert gc.isenabled()
    with gcpause.paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(KeyError), gcpause.paused():
        raise KeyError("x")
    assert gc.isenabled()


def test_left_off_when_it_was_off() -> None:
    gc.disable()
    try:
        with gcpause.paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
