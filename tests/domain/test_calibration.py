"""Reliability bins and expected calibration error, against hand-computed values."""

import random

import pytest

from review.domain.calibration import bin_index, reliability


def test_bin_edges():
    assert bin_index(0.0, 10) == 0
    assert bin_index(0.0999, 10) == 0
    assert bin_index(0.1, 10) == 1
    assert bin_index(1.0, 10) == 9


def test_hand_computed_ece():
    # Bin [0.8, 0.9): two items at 0.85, one right -> gap |0.5 - 0.85| = 0.35, weight 2
    # Bin [0.9, 1.0]: two items at 0.95, both right -> gap 0.05, weight 2
    result = reliability([(0.85, True, 1), (0.85, False, 1), (0.95, True, 1), (0.95, True, 1)])
    assert result.expected_calibration_error == pytest.approx((2 * 0.35 + 2 * 0.05) / 4)
    high = result.bins[9]
    assert (high.count, high.accuracy, high.mean_confidence) == (2, 1.0, pytest.approx(0.95))
    assert result.bins[0].accuracy is None and result.bins[0].count == 0


def test_weights_count_audited_items_for_the_items_they_stand_for():
    # One audited item (weight 50) that was wrong dominates the bin.
    result = reliability([(0.95, False, 50), (0.95, True, 1)])
    assert result.bins[9].accuracy == pytest.approx(1 / 51)
    assert result.bins[9].count == 2


def test_a_calibrated_source_has_small_ece():
    rng = random.Random(3)
    data = []
    for _ in range(20000):
        confidence = rng.random()
        data.append((confidence, rng.random() < confidence, 1.0))
    assert reliability(data).expected_calibration_error < 0.02


def test_an_overconfident_source_has_large_ece():
    rng = random.Random(3)
    data = [(0.95, rng.random() < 0.6, 1.0) for _ in range(5000)]
    assert reliability(data).expected_calibration_error == pytest.approx(0.35, abs=0.02)


def test_empty_and_bad_input():
    assert reliability([]).expected_calibration_error is None
    with pytest.raises(ValueError):
        reliability([(1.2, True, 1.0)])
    with pytest.raises(ValueError):
        reliability([(0.5, True, 0.0)])
    with pytest.raises(ValueError):
        reliability([], n_bins=0)
