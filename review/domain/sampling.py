"""Audit sampling: a random share of would-be auto-approvals goes to people, blind.

Without it, only items below the threshold ever get a human label, and nothing can be
said about the precision of the auto-approved ones. Each routing records the item's
inclusion probability, the chance it had of reaching a person under the policy:

- 1 for an item sent to review because it fell below the threshold (or had no advice),
- the audit rate for an item the policy would have auto-approved but the draw sent to
  review,
- 0 for an item auto-approved without being sampled (it will never have a label).

Estimates weight each labeled item by 1 / its inclusion probability (estimates.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from review.domain.policy import RouteDecision


@dataclass(frozen=True)
class SampledRoute:
    """Where an item goes after audit sampling, and the probability it had of review."""

    route: str  # auto_approve | review
    inclusion_probability: float
    audit: bool


def check_audit_rate(value: object) -> float:
    """The audit rate as a float in [0, 1]; ValueError for anything else."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a number between 0 and 1")
    rate = float(value)
    if math.isnan(rate) or not 0.0 <= rate <= 1.0:
        raise ValueError("must be between 0 and 1")
    return rate


def apply_audit(decision: RouteDecision, audit_rate: float, draw: float) -> SampledRoute:
    """Sample an auto-approval for audit when `draw` (uniform in [0, 1)) < `audit_rate`.

    Review decisions pass through with probability 1, whatever the draw.
    """
    if not decision.auto_approved:
        return SampledRoute("review", 1.0, False)
    if audit_rate > 0 and draw < audit_rate:
        return SampledRoute("review", audit_rate, True)
    return SampledRoute("auto_approve", 0.0, False)
