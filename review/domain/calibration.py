"""Calibration: does a confidence of 0.9 mean the AI is right 9 times in 10?

Confidences are grouped into equal-width bins; each bin compares the mean confidence with
the observed accuracy. Observations carry weights (1 / inclusion probability, see
estimates.py) so bins above the threshold, known only from audits, count for the items
they stand for. The expected calibration error (ECE) is the weighted mean gap.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class ReliabilityBin:
    low: float
    high: float
    count: int
    weight: float
    mean_confidence: float | None
    accuracy: float | None


@dataclass(frozen=True)
class Reliability:
    bins: list[ReliabilityBin]
    expected_calibration_error: float | None  # None without observations


def bin_index(confidence: float, n_bins: int) -> int:
    """Bins are [0, 1/n), [1/n, 2/n), ..., [(n-1)/n, 1]; a confidence of 1 falls in the last."""
    return min(int(confidence * n_bins), n_bins - 1)


def reliability(observations: Iterable[tuple[float, bool, float]], n_bins: int = 10) -> Reliability:
    """Reliability diagram and ECE from (confidence, correct, weight) triples."""
    if n_bins < 1:
        raise ValueError("n_bins must be at least 1")
    counts = [0] * n_bins
    weights = [0.0] * n_bins
    weighted_conf = [0.0] * n_bins
    weighted_correct = [0.0] * n_bins
    for confidence, correct, weight in observations:
        if not 0.0 <= confidence <= 1.0:
            raise ValueError(f"confidence {confidence} is outside [0, 1]")
        if weight <= 0:
            raise ValueError("weights must be positive")
        b = bin_index(confidence, n_bins)
        counts[b] += 1
        weights[b] += weight
        weighted_conf[b] += weight * confidence
        weighted_correct[b] += weight * correct
    bins = [
        ReliabilityBin(
            low=b / n_bins,
            high=(b + 1) / n_bins,
            count=counts[b],
            weight=weights[b],
            mean_confidence=weighted_conf[b] / weights[b] if weights[b] else None,
            accuracy=weighted_correct[b] / weights[b] if weights[b] else None,
        )
        for b in range(n_bins)
    ]
    total = sum(weights)
    if total == 0:
        return Reliability(bins, None)
    ece = sum(abs(weighted_correct[b] - weighted_conf[b]) for b in range(n_bins)) / total
    return Reliability(bins, ece)
