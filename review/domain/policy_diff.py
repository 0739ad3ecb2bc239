"""What changed between two policy versions, field by field, in words a person reads."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PolicyRules:
    """The parts of a policy version that decide routing (lifecycle columns excluded)."""

    thresholds: Mapping[str, float]
    default_threshold: float
    audit_rate: float
    recalibration: Mapping[str, Any] | None

    def threshold_for(self, label: str) -> float:
        return self.thresholds.get(label, self.default_threshold)


@dataclass(frozen=True)
class Change:
    field: str  # "threshold:<label>", "default_threshold", "audit_rate", "recalibration"
    before: Any
    after: Any


def _recalibration_summary(recalibration: Mapping[str, Any] | None) -> str:
    if not recalibration:
        return "none"
    labels = ", ".join(sorted(recalibration.get("labels", {}))) or "no label"
    return f"{recalibration['method']} ({labels})"


def diff_policies(old: PolicyRules, new: PolicyRules, labels: Iterable[str]) -> list[Change]:
    """Every difference in effect between two versions, per label first.

    A label's threshold is compared as applied (its own or the default), so moving the
    default shows up on every label that follows it.
    """
    changes = [
        Change(f"threshold:{label}", old.threshold_for(label), new.threshold_for(label))
        for label in labels
        if old.threshold_for(label) != new.threshold_for(label)
    ]
    if old.default_threshold != new.default_threshold:
        changes.append(Change("default_threshold", old.default_threshold, new.default_threshold))
    if old.audit_rate != new.audit_rate:
        changes.append(Change("audit_rate", old.audit_rate, new.audit_rate))
    if (old.recalibration or None) != (new.recalibration or None):
        changes.append(
            Change(
                "recalibration",
                _recalibration_summary(old.recalibration),
                _recalibration_summary(new.recalibration),
            )
        )
    return changes
