"""The heap tuning around an export's row loop: memory freed inside is kept for reuse, and
given back when the loop ends, so a worker does not carry an export's peak for the rest of
its life."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from review.heap_reuse import freed_memory_reused, glibc_malloc

pytestmark = pytest.mark.skipif(
    glibc_malloc() is None or not Path("/proc/self/statm").exists(),
    reason="tunes glibc's malloc, measured in /proc",
)

MIB = 1024 * 1024
BLOCKS = 64  # 1 MiB each: above glibc's starting mmap threshold, under the block's


def resident_mib() -> float:
    resident_pages = int(Path("/proc/self/statm").read_text().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / MIB


def make_and_free_blocks() -> bytes:
    """Make and free BLOCKS MiB; returns a block made after them, still alive, as a worker
    keeps objects made during a job: the heap cannot shrink past it, so only a trim gives
    back the free memory beneath it."""
    blocks = [b"\1" * MIB for _ in range(BLOCKS)]  # written, so resident
    survivor = b"\2" * (256 * 1024)
    del blocks
    return survivor


def test_memory_freed_inside_the_block_is_kept_for_reuse():
    before = resident_mib()
    with freed_memory_reused():
        survivor = make_and_free_blocks()
        kept = resident_mib() - before
    del survivor
    # Without the tuning each freed block is unmapped at once and nothing stays resident.
    assert kept > BLOCKS * 0.75, f"only {kept:.0f} MiB kept"


def test_the_kept_memory_goes_back_when_the_block_ends():
    before = resident_mib()
    with freed_memory_reused():
        survivor = make_and_free_blocks()
    left = resident_mib() - before
    del survivor
    assert left < BLOCKS * 0.25, f"{left:.0f} MiB still resident"


def test_the_kept_memory_goes_back_after_an_error_too():
    before = resident_mib()
    survivor = b""
    with pytest.raises(RuntimeError), freed_memory_reused():
        survivor = make_and_free_blocks()
        raise RuntimeError("the export failed")
    left = resident_mib() - before
    del survivor
    assert left < BLOCKS * 0.25, f"{left:.0f} MiB still resident"
