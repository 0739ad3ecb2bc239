"""Selection-corrected precision estimates, checked against independently computed values."""

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from review.domain.estimates import (
    ConfidenceCounts,
    LabeledObservation,
    PrecisionCurve,
    estimate_precision,
    kish_effective_n,
    propose_threshold,
    what_if,
    wilson_interval,
)


def obs(confidence, correct, pi=1.0):
    return LabeledObservation(confidence, correct, pi)


class TestWilson:
    def test_eight_of_ten(self):
        # Published value for 8/10 at 95%: 0.4902 to 0.9433 (Newcombe 1998, method 3).
        interval = wilson_interval(0.8, 10)
        assert interval.low == pytest.approx(0.4902, abs=1e-4)
        assert interval.high == pytest.approx(0.9433, abs=1e-4)

    def test_zero_of_ten(self):
        interval = wilson_interval(0.0, 10)
        assert interval.low == 0.0
        assert interval.high == pytest.approx(0.2775, abs=1e-4)

    def test_all_of_hundred_never_reaches_one(self):
        interval = wilson_interval(1.0, 100)
        assert interval.high == 1.0
        assert interval.low == pytest.approx(0.9630, abs=1e-4)

    def test_no_evidence_is_the_whole_range(self):
        interval = wilson_interval(0.5, 0)
        assert (interval.low, interval.high) == (0.0, 1.0)


def test_kish_effective_n_shrinks_with_unequal_weights():
    assert kish_effective_n(4.0, 4.0) == 4.0  # four weights of 1
    assert kish_effective_n(102.0, 5002.0) == pytest.approx(2.0799, abs=1e-4)


def test_weighted_precision_counts_audit_items_for_the_unsampled():
    # Two reviewed items (pi=1), one wrong; one audited item (pi=0.1), right.
    estimate = estimate_precision([obs(0.5, True), obs(0.6, False), obs(0.95, True, 0.1)])
    # Hajek: (1 + 0 + 10) / (1 + 1 + 10) = 11/12
    assert estimate.precision == pytest.approx(11 / 12)
    assert estimate.effective_n == pytest.approx(144 / 102)
    assert estimate.n_labeled == 3


def test_empty_estimate_says_nothing():
    estimate = estimate_precision([])
    assert estimate.precision is None and (estimate.ci_low, estimate.ci_high) == (0.0, 1.0)


def test_zero_inclusion_probability_is_refused():
    with pytest.raises(ValueError):
        estimate_precision([obs(0.9, True, 0.0)])
    with pytest.raises(ValueError):
        PrecisionCurve([obs(0.9, True, 0.0)])


observation = st.builds(
    LabeledObservation,
    st.floats(0, 1),
    st.booleans(),
    st.sampled_from([1.0, 0.5, 0.1, 0.02]),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(observation, max_size=60), st.floats(0, 1))
def test_curve_agrees_with_direct_computation(observations, threshold):
    direct = estimate_precision(o for o in observations if o.confidence >= threshold)
    fast = PrecisionCurve(observations).at(threshold)
    assert fast.n_labeled == direct.n_labeled
    if direct.precision is None:
        assert fast.precision is None
    else:
        assert fast.precision == pytest.approx(direct.precision)
        assert fast.ci_low == pytest.approx(direct.ci_low)
        assert fast.ci_high == pytest.approx(direct.ci_high)


def simulate(rng, n=4000, review_below=0.8, audit_rate=0.1):
    """A population where P(AI correct) = confidence; label what the policy would send to people."""
    population, labeled = [], []
    for _ in range(n):
        confidence = rng.random()
        correct = rng.random() < confidence
        population.append((confidence, correct))
        if confidence < review_below:
            labeled.append(obs(confidence, correct, 1.0))
        elif rng.random() < audit_rate:
            labeled.append(obs(confidence, correct, audit_rate))
    return population, labeled


def test_weighted_estimate_is_unbiased_where_the_naive_one_is_not():
    """Across many simulated queues, the weighted mean matches the true precision."""
    rng = random.Random(7)
    weighted, naive, truth = [], [], []
    threshold = 0.6  # straddles the review/audit boundary at 0.8
    for _ in range(300):
        population, labeled = simulate(rng)
        above = [correct for confidence, correct in population if confidence >= threshold]
        truth.append(sum(above) / len(above))
        weighted.append(PrecisionCurve(labeled).at(threshold).precision)
        kept = [o for o in labeled if o.confidence >= threshold]
        naive.append(sum(o.correct for o in kept) / len(kept))
    mean_truth = sum(truth) / len(truth)
    assert sum(weighted) / len(weighted) == pytest.approx(mean_truth, abs=0.003)
    # Ignoring the weights over-counts the reviewed (less accurate) band: biased low.
    assert sum(naive) / len(naive) < mean_truth - 0.02


def test_interval_covers_the_truth_about_95_percent_of_the_time():
    rng = random.Random(11)
    covered = 0
    runs = 400
    for _ in range(runs):
        population, labeled = simulate(rng, n=2000)
        above = [correct for confidence, correct in population if confidence >= 0.85]
        truth = sum(above) / len(above)
        estimate = PrecisionCurve(labeled).at(0.85)
        covered += estimate.ci_low <= truth <= estimate.ci_high
    assert 0.90 <= covered / runs <= 0.995


def test_what_if_combines_automation_precision_and_daily_errors():
    confidences = ConfidenceCounts([0.2, 0.5, 0.9, 0.95, 0.99])
    curve = PrecisionCurve([obs(0.9, True), obs(0.95, False), obs(0.99, True), obs(0.2, False)])
    result = what_if(0.9, confidences, curve, total_items=10, items_per_day=1000)
    assert result.automation_rate == pytest.approx(0.3)
    assert result.precision == pytest.approx(2 / 3)
    assert result.expected_errors_per_day == pytest.approx((1 / 3) * 0.3 * 1000)
    assert result.n_labeled == 3


def test_what_if_above_all_evidence_has_no_precision():
    result = what_if(0.999, ConfidenceCounts([0.5]), PrecisionCurve([obs(0.5, True)]), 1, 10)
    assert result.precision is None and result.expected_errors_per_day is None
    assert result.automation_rate == 0.0


class TestProposeThreshold:
    def curve(self):
        # Below 0.7 the AI is often wrong; above it, right 200 times out of 200.
        wrong_band = [obs(0.5 + i / 500, i % 2 == 0) for i in range(100)]
        right_band = [obs(0.7 + i / 1000, True) for i in range(200)]
        return PrecisionCurve(wrong_band + right_band)

    def test_proposes_the_lowest_threshold_meeting_the_target(self):
        proposal = propose_threshold(self.curve(), 0.98)
        assert proposal.threshold == pytest.approx(0.7)
        assert proposal.estimate.ci_low >= 0.98
        # The next lower candidate would not have met the target.
        assert self.curve().at(0.69).ci_low < 0.98

    def test_says_why_when_the_target_cannot_be_met(self):
        proposal = propose_threshold(self.curve(), 0.999)
        assert proposal.threshold is None
        assert "not enough evidence" in proposal.reason

    def test_no_labels_at_all(self):
        proposal = propose_threshold(PrecisionCurve([]), 0.9)
        assert proposal.threshold is None and "no human-labeled" in proposal.reason

    @pytest.mark.parametrize("bad", [0, -0.1, 1.5, math.nan])
    def test_bad_target(self, bad):
        with pytest.raises(ValueError):
            propose_threshold(self.curve(), bad)
