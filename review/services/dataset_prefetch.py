"""Reading ahead: an iterator run in a thread of its own, a few items ahead of its reader.

The exporter reads rows from PostgreSQL and encodes them in Python. Read in turn, the
database waits while Python encodes and Python waits while the database finds the next
rows; read ahead, the two overlap (the database is another process, and the driver lets
go of the GIL while it waits for the network).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

T = TypeVar("T")

_DONE = object()  # put by the reader thread after the last item
_POLL_SECONDS = 0.1  # how often a blocked reader thread checks whether it should stop


@contextmanager
def prefetched(items: Iterator[T], ahead: int = 2) -> Iterator[Iterator[T]]:
    """`items` as read by a thread at most `ahead` items ahead (memory: that many items).

    An error in the thread is raised to the caller at the item it happened. On leaving
    the block, early or not, the thread is stopped and `items` closed before this returns,
    so whatever `items` reads from (a database connection) is free again."""
    handoff: queue.Queue[Any] = queue.Queue(maxsize=ahead)
    stop = threading.Event()
    thread = threading.Thread(
        target=_read_ahead, args=(items, handoff, stop), name="prefetch", daemon=True
    )
    thread.start()
    try:
        yield _received(handoff)
    finally:
        stop.set()
        thread.join()


def _received(handoff: queue.Queue[Any]) -> Iterator[Any]:
    while (item := handoff.get()) is not _DONE:
        if isinstance(item, _Failure):
            raise item.error
        yield item


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def _read_ahead(items: Iterator[Any], handoff: queue.Queue[Any], stop: threading.Event) -> None:
    """The thread: hand each item over, then _DONE (or the error); stop early when told."""
    try:
        for item in items:
            if not _put(handoff, item, stop):
                return
        _put(handoff, _DONE, stop)
    except BaseException as error:  # noqa: BLE001  handed to the reader, which raises it
        _put(handoff, _Failure(error), stop)
    finally:
        close = getattr(items, "close", None)
        if close is not None:
            close()  # a generator's cleanup (its cursor) runs here, in the thread that used it


def _put(handoff: queue.Queue[Any], item: Any, stop: threading.Event) -> bool:
    """Wait for room for `item`; False if the reader stopped meanwhile."""
    while not stop.is_set():
        try:
            handoff.put(item, timeout=_POLL_SECONDS)
            return True
        except queue.Full:
            continue
    return False
