"""Threshold routing: every path through review/domain/policy.py."""

import math

import pytest

from review.domain.policy import (
    AiAdvice,
    PolicyError,
    ThresholdPolicy,
    build_policy,
    route,
)

LABELS = ["approve", "reject", "escalate"]


def policy(**thresholds: float) -> ThresholdPolicy:
    return ThresholdPolicy(thresholds=thresholds, default_threshold=0.9)


class TestRoute:
    def test_no_recommendation_goes_to_review(self):
        decision = route(policy(), None)
        assert decision.route == "review"
        assert decision.threshold is None
        assert decision.reason == "no AI recommendation"

    def test_confidence_at_threshold_is_auto_approved(self):
        decision = route(policy(), AiAdvice("approve", 0.9))
        assert decision.auto_approved
        assert decision.threshold == 0.9

    def test_confidence_just_below_threshold_goes_to_review(self):
        decision = route(policy(), AiAdvice("approve", 0.8999))
        assert decision.route == "review"
        assert "< threshold 0.900" in decision.reason

    def test_label_threshold_overrides_the_default(self):
        strict = policy(reject=0.99)
        assert route(strict, AiAdvice("reject", 0.95)).route == "review"
        assert route(strict, AiAdvice("approve", 0.95)).route == "auto_approve"

    def test_label_threshold_can_be_looser_than_the_default(self):
        loose = policy(escalate=0.5)
        decision = route(loose, AiAdvice("escalate", 0.6))
        assert decision.auto_approved and decision.threshold == 0.5

    def test_threshold_one_only_passes_certainty(self):
        never = ThresholdPolicy({}, 1.0)
        assert route(never, AiAdvice("approve", 0.9999)).route == "review"
        assert route(never, AiAdvice("approve", 1.0)).route == "auto_approve"

    def test_threshold_zero_approves_everything_recommended(self):
        always = ThresholdPolicy({}, 0.0)
        assert route(always, AiAdvice("reject", 0.0)).auto_approved
        assert route(always, None).route == "review"

    def test_nan_confidence_is_never_auto_approved(self):
        decision = route(ThresholdPolicy({}, 0.0), AiAdvice("approve", math.nan))
        assert decision.route == "review"
        assert "not a number" in decision.reason

    @pytest.mark.parametrize("confidence", [0.0, 0.25, 0.5, 0.75, 0.95, 1.0])
    @pytest.mark.parametrize("threshold", [0.0, 0.5, 0.9, 1.0])
    def test_route_is_exactly_confidence_at_least_threshold(self, confidence, threshold):
        decision = route(ThresholdPolicy({}, threshold), AiAdvice("approve", confidence))
        assert decision.auto_approved is (confidence >= threshold)


class TestBuildPolicy:
    def test_valid_input(self):
        built = build_policy({"approve": 0.8, "reject": 1}, 0.95, LABELS)
        assert built.thresholds == {"approve": 0.8, "reject": 1.0}
        assert built.default_threshold == 0.95
        assert built.threshold_for("escalate") == 0.95

    def test_unknown_label_names_the_field(self):
        with pytest.raises(PolicyError) as error:
            build_policy({"maybe": 0.5}, 0.9, LABELS)
        assert error.value.field == "thresholds.maybe"

    @pytest.mark.parametrize("bad", [-0.01, 1.01, math.nan, math.inf, "0.9", None, True, [0.5]])
    def test_bad_threshold_values(self, bad):
        with pytest.raises(PolicyError) as error:
            build_policy({"approve": bad}, 0.9, LABELS)
        assert error.value.field == "thresholds.approve"

    @pytest.mark.parametrize("bad", [-1, 2, "high", None, False])
    def test_bad_default(self, bad):
        with pytest.raises(PolicyError) as error:
            build_policy({}, bad, LABELS)
        assert error.value.field == "default_threshold"

    def test_thresholds_must_be_a_mapping(self):
        with pytest.raises(PolicyError) as error:
            build_policy([0.5], 0.9, LABELS)
        assert error.value.field == "thresholds"
