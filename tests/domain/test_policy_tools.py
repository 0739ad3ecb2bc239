"""Audit sampling, drift tests, recalibration and policy diffs, against hand-computed values."""

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from review.domain.drift import drift_alarm, two_proportion_test
from review.domain.estimates import (
    LabeledObservation,
    PrecisionCurve,
    WeightedSums,
    estimate_from_sums,
    estimate_precision,
)
from review.domain.policy import RouteDecision
from review.domain.policy_diff import Change, PolicyRules, diff_policies
from review.domain.recalibration import (
    NEVER,
    Platt,
    fit,
    fit_isotonic,
    fit_platt,
    from_dict,
)
from review.domain.sampling import apply_audit, check_audit_rate

AUTO = RouteDecision("auto_approve", 0.9, "confident")
REVIEW = RouteDecision("review", 0.9, "not confident")


class TestAuditSampling:
    def test_review_items_have_probability_one_whatever_the_draw(self):
        assert apply_audit(REVIEW, 0.5, 0.0) == apply_audit(REVIEW, 0.0, 0.99)
        assert apply_audit(REVIEW, 0.5, 0.0).inclusion_probability == 1.0

    def test_a_draw_under_the_rate_sends_an_auto_approval_to_review(self):
        sampled = apply_audit(AUTO, 0.02, 0.019)
        assert (sampled.route, sampled.inclusion_probability, sampled.audit) == (
            "review",
            0.02,
            True,
        )

    def test_other_auto_approvals_have_probability_zero(self):
        assert apply_audit(AUTO, 0.02, 0.02).inclusion_probability == 0.0
        assert apply_audit(AUTO, 0.0, 0.0).route == "auto_approve"

    def test_the_audited_share_matches_the_rate(self):
        rng = random.Random(5)
        audited = sum(apply_audit(AUTO, 0.1, rng.random()).audit for _ in range(20000))
        assert audited / 20000 == pytest.approx(0.1, abs=0.006)

    @pytest.mark.parametrize("bad", [-0.1, 1.01, math.nan, "0.1", True, None])
    def test_bad_rates(self, bad):
        with pytest.raises(ValueError):
            check_audit_rate(bad)


class TestTwoProportion:
    def test_known_value(self):
        # 50/100 against 30/100: pooled 0.4, se = sqrt(0.24 * 0.02), z = -0.2 / se.
        test = two_proportion_test(50, 100, 30, 100)
        assert test.z == pytest.approx(-2.886751, abs=1e-6)
        assert test.p_value == pytest.approx(0.003892, abs=1e-6)

    def test_identical_windows(self):
        assert two_proportion_test(10, 10, 20, 20).p_value == 1.0
        assert two_proportion_test(0, 10, 0, 20).z == 0.0

    def test_alarm_needs_enough_data_and_a_real_move(self):
        assert drift_alarm("x", (50, 100), (30, 100)).alarm
        assert not drift_alarm("x", (50, 100), (47, 100)).alarm
        small = drift_alarm("x", (5, 10), (0, 10))
        assert not small.alarm and "too little data" in small.reason
        assert two_proportion_test(1, 0, 1, 2) is None


class TestRecalibration:
    def test_isotonic_pools_adjacent_violators(self):
        # Accuracy 1, 0, 1, 1 at confidences .1 .2 .3 .4: the first two pool to 0.5.
        result = fit_isotonic([(0.1, True, 1), (0.2, False, 1), (0.3, True, 1), (0.4, True, 1)])
        assert result.xs == pytest.approx((0.15, 0.35))
        assert result.ys == pytest.approx((0.5, 1.0))

    def test_isotonic_uses_weights(self):
        result = fit_isotonic([(0.1, True, 1), (0.2, False, 3)])
        assert result.ys == pytest.approx((0.25,))
        assert result.xs == pytest.approx((0.175,))

    def test_platt_recovers_a_known_map(self):
        rng = random.Random(2)
        truth = Platt(2.0, -1.0)
        data = []
        for _ in range(20000):
            c = rng.uniform(0.02, 0.98)
            data.append((c, rng.random() < truth.apply(c), 1.0))
        fitted = fit_platt(data)
        assert fitted.a == pytest.approx(2.0, abs=0.1)
        assert fitted.b == pytest.approx(-1.0, abs=0.1)

    @settings(max_examples=200, deadline=None)
    @given(st.floats(0.2, 5), st.floats(-3, 3), st.floats(0.0, 1.0))
    def test_platt_raw_threshold_is_the_exact_cut(self, a, b, t):
        m = Platt(a, b)
        raw = m.raw_threshold(t)
        if raw == NEVER:
            assert m.apply(1.0) < t
        else:
            assert m.apply(raw) >= t
            # Nothing clearly below the cut reaches the threshold (up to float rounding).
            assert raw == 0.0 or m.apply(max(raw - 1e-6, 0.0)) <= t

    @settings(max_examples=200, deadline=None)
    @given(
        st.lists(st.tuples(st.floats(0, 1), st.booleans()), min_size=1, max_size=40),
        st.floats(0, 1),
    )
    def test_isotonic_raw_threshold_agrees_with_apply(self, points, t):
        m = fit_isotonic([(c, y, 1.0) for c, y in points])
        raw = m.raw_threshold(t)
        if raw == NEVER:
            assert m.apply(1.0) < t
        else:
            assert m.apply(raw) >= t - 1e-12
            below = max(raw - 1e-6, 0.0)
            assert raw == 0.0 or m.apply(below) <= t

    def test_fit_skips_labels_without_enough_evidence(self):
        data = {"a": [(0.9, True, 1.0)] * 40 + [(0.5, False, 1.0)] * 10, "b": [(0.9, True, 1.0)]}
        result = fit("platt", data)
        assert set(result.by_label) == {"a"} and "need 30" in result.skipped["b"]
        one_sided = fit("isotonic", {"c": [(0.9, True, 1.0)] * 40})
        assert "always right" in one_sided.skipped["c"]
        assert result.apply("b", 0.7) == 0.7  # unfitted labels keep raw confidences

    def test_round_trip_and_validation(self):
        original = fit("isotonic", {"a": [(0.9, True, 1.0)] * 40 + [(0.5, False, 1.0)] * 10})
        restored = from_dict(original.to_dict())
        assert restored.apply("a", 0.7) == original.apply("a", 0.7)
        for bad in (
            {"method": "magic", "labels": {}},
            {"method": "platt", "labels": {"a": {"a": -1, "b": 0}}},
            {"method": "isotonic", "labels": {"a": {"x": [0.5, 0.4], "y": [0.1, 0.2]}}},
            {"method": "isotonic", "labels": {"a": {"x": [0.5], "y": [2]}}},
            {"method": "platt", "labels": ["a"]},
        ):
            with pytest.raises((ValueError, TypeError, KeyError)):
                from_dict(bad)


def test_pooled_sums_estimate_a_whole_policy():
    a = PrecisionCurve([LabeledObservation(0.95, True, 0.1), LabeledObservation(0.5, False, 1)])
    b = PrecisionCurve([LabeledObservation(0.8, False, 1), LabeledObservation(0.99, True, 1)])
    pooled = estimate_from_sums(a.sums_at(0.9) + b.sums_at(0.7))
    direct = estimate_precision(
        [
            LabeledObservation(0.95, True, 0.1),
            LabeledObservation(0.8, False, 1),
            LabeledObservation(0.99, True, 1),
        ]
    )
    assert pooled == direct
    assert pooled.precision == pytest.approx(11 / 12)
    assert estimate_from_sums(WeightedSums(0, 0, 0, 0)).precision is None


def test_policy_diff_compares_thresholds_as_applied():
    old = PolicyRules({"spam": 0.9}, 0.95, 0.0, None)
    new = PolicyRules(
        {"spam": 0.9, "refund": 0.95}, 0.9, 0.02, {"method": "platt", "labels": {"spam": {}}}
    )
    changes = diff_policies(old, new, ["spam", "refund", "bug"])
    assert changes == [
        Change("threshold:bug", 0.95, 0.9),  # followed the default down
        Change("default_threshold", 0.95, 0.9),
        Change("audit_rate", 0.0, 0.02),
        Change("recalibration", "none", "platt (spam)"),
    ]
    assert diff_policies(old, old, ["spam"]) == []
