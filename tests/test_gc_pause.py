"""The collector pause around an export's row loop must never outlive the loop: a worker
left without cyclic collection would keep every reference cycle it makes afterwards."""

from __future__ import annotations

import gc

import pytest

from review.gc_pause import garbage_collection_paused


@pytest.fixture(autouse=True)
def _collector_restored():
    was_enabled = gc.isenabled()
    yield
    if was_enabled:
        gc.enable()
    else:
        gc.disable()


def test_the_collector_is_off_inside_and_back_on_after():
    gc.enable()
    with garbage_collection_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_the_collector_is_back_on_after_an_error_in_the_block():
    gc.enable()
    with pytest.raises(RuntimeError), garbage_collection_paused():
        raise RuntimeError("the export failed")
    assert gc.isenabled()


def test_a_collector_switched_off_before_stays_off():
    gc.disable()
    with garbage_collection_paused():
        pass
    assert not gc.isenabled()
