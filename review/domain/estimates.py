"""Selection-corrected estimates of what a threshold buys and costs.

Only some items get a human label: those below the threshold (inclusion probability 1)
and a random audit sample of those above it (probability = the audit rate). Accuracy
computed from labeled items alone says nothing about auto-approved ones, so every labeled
item is weighted by 1 / its inclusion probability (Horvitz-Thompson weights) and
precision is the weighted ratio (the Hajek estimator).

The 95% interval is a Wilson score interval computed on Kish's effective sample size,
n_eff = (sum w)^2 / sum w^2, which shrinks when a few heavily weighted audit items carry
the estimate. That keeps the interval honest when most evidence above a threshold comes
from a 2% audit.

`PrecisionCurve` precomputes cumulative sums over confidences so that any threshold is
answered with one binary search, whatever the number of labeled items.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import accumulate

Z_95 = 1.959963984540054


@dataclass(frozen=True)
class LabeledObservation:
    """One human-labeled item with an AI recommendation."""

    confidence: float
    correct: bool  # the AI's label equals the human's final label
    inclusion_probability: float

    @property
    def weight(self) -> float:
        return 1.0 / self.inclusion_probability


@dataclass(frozen=True)
class Interval:
    low: float
    high: float


def wilson_interval(p_hat: float, n: float, z: float = Z_95) -> Interval:
    """Wilson score interval for a proportion p_hat observed over n (possibly fractional) trials."""
    if n <= 0:
        return Interval(0.0, 1.0)
    p_hat = min(max(p_hat, 0.0), 1.0)
    z2 = z * z
    denominator = 1 + z2 / n
    center = (p_hat + z2 / (2 * n)) / denominator
    half = (z / denominator) * math.sqrt(p_hat * (1 - p_hat) / n + z2 / (4 * n * n))
    return Interval(max(0.0, center - half), min(1.0, center + half))


def kish_effective_n(sum_w: float, sum_w2: float) -> float:
    return (sum_w * sum_w) / sum_w2 if sum_w2 > 0 else 0.0


@dataclass(frozen=True)
class PrecisionEstimate:
    precision: float | None  # None when no labeled item lies above the threshold
    ci_low: float
    ci_high: float
    n_labeled: int
    effective_n: float


def estimate_precision(observations: Iterable[LabeledObservation]) -> PrecisionEstimate:
    """Weighted precision of a set of labeled items, with its Wilson/Kish 95% interval."""
    sum_w = sum_wy = sum_w2 = 0.0
    count = 0
    for obs in observations:
        if obs.inclusion_probability <= 0:
            raise ValueError("a labeled item cannot have inclusion probability 0")
        w = obs.weight
        sum_w += w
        sum_wy += w * obs.correct
        sum_w2 += w * w
        count += 1
    return _estimate(sum_w, sum_wy, sum_w2, count)


def _estimate(sum_w: float, sum_wy: float, sum_w2: float, count: int) -> PrecisionEstimate:
    if count == 0 or sum_w <= 0:
        return PrecisionEstimate(None, 0.0, 1.0, 0, 0.0)
    p_hat = sum_wy / sum_w
    n_eff = kish_effective_n(sum_w, sum_w2)
    interval = wilson_interval(p_hat, n_eff)
    return PrecisionEstimate(p_hat, interval.low, interval.high, count, n_eff)


class PrecisionCurve:
    """Precision above any threshold for one label, from precomputed cumulative sums."""

    def __init__(self, observations: Iterable[LabeledObservation]) -> None:
        bins: list[tuple[float, WeightedSums]] = []
        for obs in observations:
            if obs.inclusion_probability <= 0:
                raise ValueError("a labeled item cannot have inclusion probability 0")
            w = obs.weight
            bins.append((obs.confidence, WeightedSums(w, w * obs.correct, w * w, 1)))
        self._set_bins(bins)

    @classmethod
    def from_bins(cls, bins: Iterable[tuple[float, WeightedSums]]) -> PrecisionCurve:
        """A curve from pre-aggregated bins: (confidence, sums of the items in the bin).

        A threshold t then counts a bin when its confidence is at least t, so bins keyed
        by their lower edge answer exactly for thresholds on the bin grid.
        """
        curve = cls([])
        curve._set_bins(list(bins))
        return curve

    def _set_bins(self, bins: list[tuple[float, WeightedSums]]) -> None:
        bins.sort(key=lambda b: b[0])
        self._confidences = [c for c, _ in bins]
        # Suffix sums: entry i covers bins i..end (confidence >= confidences[i]).
        self._sum_w = _suffix_sums([b.sum_w for _, b in bins])
        self._sum_wy = _suffix_sums([b.sum_wy for _, b in bins])
        self._sum_w2 = _suffix_sums([b.sum_w2 for _, b in bins])
        self._count = _suffix_sums([float(b.count) for _, b in bins])

    def __len__(self) -> int:
        return int(self._count[0])

    def at(self, threshold: float) -> PrecisionEstimate:
        """Estimate for the items whose confidence is at least `threshold`."""
        return estimate_from_sums(self.sums_at(threshold))

    def sums_at(self, threshold: float) -> WeightedSums:
        """The weighted sums behind `at(threshold)`, for combining curves (e.g. all labels)."""
        start = bisect_left(self._confidences, threshold)
        return WeightedSums(
            self._sum_w[start], self._sum_wy[start], self._sum_w2[start], int(self._count[start])
        )


@dataclass(frozen=True)
class WeightedSums:
    """Sum of weights, of weights of correct items, of squared weights; and the item count."""

    sum_w: float
    sum_wy: float
    sum_w2: float
    count: int

    def __add__(self, other: WeightedSums) -> WeightedSums:
        return WeightedSums(
            self.sum_w + other.sum_w,
            self.sum_wy + other.sum_wy,
            self.sum_w2 + other.sum_w2,
            self.count + other.count,
        )


def estimate_from_sums(sums: WeightedSums) -> PrecisionEstimate:
    """The Hajek precision and its Wilson/Kish interval from pooled weighted sums.

    Pooling the sums of several labels' curves, each at its own threshold, estimates the
    precision of everything a whole policy auto-approves.
    """
    return _estimate(sums.sum_w, sums.sum_wy, sums.sum_w2, sums.count)


def _suffix_sums(values: Sequence[float]) -> list[float]:
    """sums[i] = sum(values[i:]), with a trailing 0 so sums[len(values)] is defined."""
    return list(accumulate(reversed(values), initial=0.0))[::-1]


class ConfidenceCounts:
    """How many recommended items lie at or above any threshold (no labels needed)."""

    def __init__(self, confidences: Iterable[float]) -> None:
        counts: dict[float, int] = {}
        for confidence in confidences:
            counts[confidence] = counts.get(confidence, 0) + 1
        self._set_bins(list(counts.items()))

    @classmethod
    def from_bins(cls, bins: Iterable[tuple[float, int]]) -> ConfidenceCounts:
        """Counts from pre-aggregated (confidence, number of items) bins."""
        counts = cls([])
        counts._set_bins(list(bins))
        return counts

    def _set_bins(self, bins: list[tuple[float, int]]) -> None:
        bins.sort()
        self._values = [c for c, _ in bins]
        self._suffix = list(accumulate(reversed([n for _, n in bins]), initial=0))[::-1]

    def __len__(self) -> int:
        return self._suffix[0]

    def at_or_above(self, threshold: float) -> int:
        return self._suffix[bisect_left(self._values, threshold)]


@dataclass(frozen=True)
class WhatIf:
    threshold: float
    automation_rate: float  # share of all recommended items this label's threshold auto-approves
    precision: float | None
    ci_low: float
    ci_high: float
    n_labeled: int
    effective_n: float
    expected_errors_per_day: float | None


def what_if(
    threshold: float,
    label_confidences: ConfidenceCounts,
    curve: PrecisionCurve,
    total_items: int,
    items_per_day: float,
) -> WhatIf:
    """What auto-approving this label at `threshold` would buy (automation) and cost (errors).

    `total_items` is the number of recommended items in the window (all labels), and
    `items_per_day` the recent daily volume of the queue.
    """
    above = label_confidences.at_or_above(threshold)
    automation = above / total_items if total_items else 0.0
    estimate = curve.at(threshold)
    errors = (
        (1 - estimate.precision) * automation * items_per_day
        if estimate.precision is not None
        else None
    )
    return WhatIf(
        threshold=threshold,
        automation_rate=automation,
        precision=estimate.precision,
        ci_low=estimate.ci_low,
        ci_high=estimate.ci_high,
        n_labeled=estimate.n_labeled,
        effective_n=estimate.effective_n,
        expected_errors_per_day=errors,
    )


@dataclass(frozen=True)
class ThresholdProposal:
    threshold: float | None
    estimate: PrecisionEstimate | None
    reason: str


def propose_threshold(
    curve: PrecisionCurve,
    target_precision: float,
    candidates: Sequence[float] | None = None,
) -> ThresholdProposal:
    """The lowest candidate threshold whose interval's lower bound meets the target.

    Candidates default to 0.00, 0.01, ..., 1.00. When none qualifies the proposal is None
    with the reason (no labeled evidence at all, or not enough to meet the target).
    """
    if not 0 < target_precision <= 1:
        raise ValueError("target precision must be in (0, 1]")
    if len(curve) == 0:
        return ThresholdProposal(None, None, "no human-labeled items for this label yet")
    grid = candidates if candidates is not None else [i / 100 for i in range(101)]
    for threshold in sorted(grid):
        estimate = curve.at(threshold)
        if estimate.precision is not None and estimate.ci_low >= target_precision:
            return ThresholdProposal(
                threshold,
                estimate,
                f"lower bound {estimate.ci_low:.4f} >= target {target_precision:.4f}",
            )
    best = max(curve.at(t).ci_low for t in grid)
    return ThresholdProposal(
        None,
        None,
        f"not enough evidence: the best lower bound at any threshold is {best:.4f}, "
        f"below the target {target_precision:.4f}; review more items or audit more",
    )
