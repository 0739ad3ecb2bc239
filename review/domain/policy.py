"""Threshold policies: which recommendations are safe to auto-approve.

A policy holds a threshold per label and a default for labels it does not name. A
recommendation whose confidence is at least the threshold for its label is auto-approved
with the AI's label as the final label; anything else, including no recommendation at all,
goes to a person.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

Route = Literal["auto_approve", "review"]


class PolicyError(ValueError):
    """A policy that cannot be applied. `field` names the offending input for error messages."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class ThresholdPolicy:
    thresholds: Mapping[str, float] = field(default_factory=dict)
    default_threshold: float = 1.0

    def threshold_for(self, label: str) -> float:
        return self.thresholds.get(label, self.default_threshold)


@dataclass(frozen=True)
class AiAdvice:
    """The part of a recommendation that routing looks at."""

    label: str
    confidence: float


@dataclass(frozen=True)
class RouteDecision:
    route: Route
    threshold: float | None
    reason: str

    @property
    def auto_approved(self) -> bool:
        return self.route == "auto_approve"


def _check_threshold(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PolicyError(name, "must be a number between 0 and 1")
    number = float(value)
    if math.isnan(number) or not 0.0 <= number <= 1.0:
        raise PolicyError(name, "must be between 0 and 1")
    return number


def build_policy(
    thresholds: object, default_threshold: object, labels: Iterable[str]
) -> ThresholdPolicy:
    """Validate raw input (e.g. from JSON) into a policy for a queue with these labels.

    Raises PolicyError naming the field when a threshold is not a number in [0, 1] or names
    a label the queue does not have.
    """
    known = set(labels)
    if not isinstance(thresholds, Mapping):
        raise PolicyError("thresholds", "must be an object mapping labels to numbers")
    checked: dict[str, float] = {}
    for label, value in thresholds.items():
        if label not in known:
            raise PolicyError(f"thresholds.{label}", f"unknown label {label!r}")
        checked[label] = _check_threshold(f"thresholds.{label}", value)
    default = _check_threshold("default_threshold", default_threshold)
    return ThresholdPolicy(thresholds=checked, default_threshold=default)


def route(policy: ThresholdPolicy, advice: AiAdvice | None) -> RouteDecision:
    """Decide where an item goes. Total: every input gets a route, never an exception."""
    if advice is None:
        return RouteDecision("review", None, "no AI recommendation")
    threshold = policy.threshold_for(advice.label)
    if math.isnan(advice.confidence):
        return RouteDecision("review", threshold, "confidence is not a number")
    if advice.confidence >= threshold:
        return RouteDecision(
            "auto_approve",
            threshold,
            f"confidence {advice.confidence:.3f} >= threshold {threshold:.3f} for {advice.label}",
        )
    return RouteDecision(
        "review",
        threshold,
        f"confidence {advice.confidence:.3f} < threshold {threshold:.3f} for {advice.label}",
    )
