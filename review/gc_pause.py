"""Pausing Python's cyclic garbage collector around work that makes many short-lived
containers and no reference cycles.

The collector runs after every 700 new containers (tuples, lists, dicts). An export fetches
rows in batches of thousands of tuples, all alive until the batch is written, so every
collection walked the batch's rows (23 values each), found nothing to free and moved them to
an older generation, to be walked again there: 1.0 to 2.0 s per million rows (timed with
gc.callbacks; the more, the slower the machine), on the thread that sets the export's pace.
Reference counting frees the rows all the same; only cycles wait for the collector, and the
paused work makes none of size.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def garbage_collection_paused() -> Iterator[None]:
    """No cyclic collection inside the block (for every thread of the process); the
    collector is switched back on when the block ends, as it was, also on an error."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
