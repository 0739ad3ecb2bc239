"""How fast this machine runs Python right now, printed by the benchmarks beside their
figures.

The development machines differ from one session to the next, by a factor of up to four on
the same code, and one machine's speed drifts while it runs (10.3 to 17.1 µs within an hour
on one of them). A figure means something only next to the machine's speed when it was
measured, so the benchmarks print this before their runs and again after: a figure taken
while the two differ much was taken on a machine that changed under it.
"""

from __future__ import annotations

import timeit

LOOPS = 20_000


def sum_range_us() -> float:
    """Best of five of `python -m timeit "sum(range(1000))"`, in µs (lower is faster)."""
    timer = timeit.Timer("sum(range(1000))")
    return min(timer.repeat(repeat=5, number=LOOPS)) / LOOPS * 1e6


def report(moment: str) -> None:
    """Print the machine's speed now; `moment` says when ("before", "after")."""
    print(
        f"machine speed {moment}: timeit sum(range(1000)) = {sum_range_us():.1f} µs "
        "(lower is faster; compare figures only at like speeds)",
        flush=True,
    )
