"""The promotion gate for a retrained local model.

A candidate replaces the model in force only if it is not worse on the same held-out
decisions: no lower accuracy and no higher Brier score (the Brier score punishes
confident mistakes, so a model that is as accurate but worse calibrated is held back).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

# Scores equal up to floating-point noise count as "not worse".
TOLERANCE = 1e-9


@dataclass(frozen=True)
class Verdict:
    promote: bool
    reason: str


def promotion_verdict(
    current: Mapping[str, float] | None, candidate: Mapping[str, float]
) -> Verdict:
    """Whether `candidate` may replace `current`, both scored on one held-out slice.

    Each mapping needs "accuracy" and "brier". With no current model the candidate is
    promoted.
    """
    if current is None:
        return Verdict(True, "no model in force")
    if candidate["accuracy"] < current["accuracy"] - TOLERANCE:
        return Verdict(
            False,
            f"accuracy {candidate['accuracy']:.3f} below the current {current['accuracy']:.3f}",
        )
    if candidate["brier"] > current["brier"] + TOLERANCE:
        return Verdict(
            False, f"Brier score {candidate['brier']:.4f} above the current {current['brier']:.4f}"
        )
    return Verdict(
        True,
        f"accuracy {candidate['accuracy']:.3f} >= {current['accuracy']:.3f}, "
        f"Brier {candidate['brier']:.4f} <= {current['brier']:.4f}",
    )
