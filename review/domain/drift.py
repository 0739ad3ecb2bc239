"""Drift: has a rate in a recent window moved significantly away from its baseline?

The pooled two-proportion z-test compares x1/n1 (baseline) with x2/n2 (recent). Counts
may be fractional (Kish effective sizes of weighted samples), which the test tolerates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Below this many observations in either window the normal approximation is poor, and an
# alarm would be noise.
MIN_PER_WINDOW = 20


@dataclass(frozen=True)
class TwoProportionTest:
    baseline_rate: float
    recent_rate: float
    z: float
    p_value: float  # two-sided


def normal_sf(z: float) -> float:
    """P(Z > z) for a standard normal Z."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def two_proportion_test(x1: float, n1: float, x2: float, n2: float) -> TwoProportionTest | None:
    """Pooled two-proportion z-test; None when either window is empty."""
    if n1 <= 0 or n2 <= 0:
        return None
    if not (0 <= x1 <= n1 and 0 <= x2 <= n2):
        raise ValueError("successes must lie between 0 and the number of trials")
    p1, p2 = x1 / n1, x2 / n2
    pooled = (x1 + x2) / (n1 + n2)
    variance = pooled * (1 - pooled) * (1 / n1 + 1 / n2)
    if variance == 0:
        # Both windows all-success or all-failure: identical, nothing moved.
        return TwoProportionTest(p1, p2, 0.0, 1.0)
    z = (p2 - p1) / math.sqrt(variance)
    return TwoProportionTest(p1, p2, z, 2 * normal_sf(abs(z)))


@dataclass(frozen=True)
class DriftAlarm:
    metric: str
    test: TwoProportionTest | None
    alarm: bool
    reason: str


def drift_alarm(
    metric: str,
    baseline: tuple[float, float],
    recent: tuple[float, float],
    alpha: float = 0.01,
    min_n: float = MIN_PER_WINDOW,
) -> DriftAlarm:
    """Alarm when the recent (successes, trials) differ from the baseline at level `alpha`.

    Windows with fewer than `min_n` trials never alarm; the reason says so.
    """
    (x1, n1), (x2, n2) = baseline, recent
    if n1 < min_n or n2 < min_n:
        return DriftAlarm(
            metric,
            two_proportion_test(x1, n1, x2, n2),
            False,
            f"too little data to test (baseline n={n1:.0f}, recent n={n2:.0f}; "
            f"need {min_n:.0f} each)",
        )
    test = two_proportion_test(x1, n1, x2, n2)
    assert test is not None
    moved = test.p_value < alpha
    verdict = "moved significantly" if moved else "no significant change"
    return DriftAlarm(
        metric,
        test,
        moved,
        f"{verdict}: {test.baseline_rate:.1%} -> {test.recent_rate:.1%} "
        f"(z={test.z:.2f}, p={test.p_value:.3g})",
    )
