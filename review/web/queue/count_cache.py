"""Queue counts shared for a moment by everyone polling them.

Every open queue page polls its counts, and counting walks up to COUNT_CAP index entries
per figure (review/services/counting.py): sixteen reviewers on one queue asked PostgreSQL
for the same four numbers several times a second, which took CPU from the decisions they
were waiting on. Each process keeps a queue's counts for COUNTS_CACHE_SECONDS (2 s by
default; 0 turns this off), so the figures a page shows are never older than that, far
less than the page's own polling interval. Under gunicorn each worker process keeps its
own entries, so a queue is counted up to once a window per worker and set of filters;
the views key the entries by the filters without the sort, which changes no count.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar, cast

from flask import Flask

Value = TypeVar("Value")
# Beyond this many keys (queues x filter combinations), expired entries are dropped.
MAX_ENTRIES = 1_000


class TtlCache(Generic[Value]):
    """Values computed on a miss and kept `seconds`; safe to share between threads."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self.clock = clock
        self._entries: dict[Hashable, tuple[float, Value]] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, compute: Callable[[], Value]) -> Value:
        if self.seconds <= 0:
            return compute()
        now = self.clock()
        with self._lock:
            entry = self._entries.get(key)
        if entry is not None and entry[0] > now:
            return entry[1]
        # Computed outside the lock: two threads missing at once both count, which is
        # cheaper than making every other key wait behind one slow count.
        value = compute()
        with self._lock:
            if len(self._entries) >= MAX_ENTRIES:
                self._entries = {k: e for k, e in self._entries.items() if e[0] > now}
            self._entries[key] = (now + self.seconds, value)
        return value


def counts_cache(app: Flask) -> TtlCache[object]:
    """The app's cache of queue counts (one per process)."""
    cache = app.extensions.get("queue_counts_cache")
    if cache is None:
        cache = app.extensions.setdefault(
            "queue_counts_cache", TtlCache(float(app.config.get("COUNTS_CACHE_SECONDS", 2.0)))
        )
    # app.extensions holds Any; this key only ever holds the cache set above.
    return cast("TtlCache[object]", cache)
