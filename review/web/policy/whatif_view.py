"""What the what-if page shows per label, and for the whole policy being tried."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from review.domain.recalibration import Recalibration
from review.services import policy_stats
from review.services.policy_stats import LabelProposal, LabelWhatIf, QueueEvidence
from review.web.policy.charts import Chart, RefLine, Series, line_chart

CURVE_STEPS = 100


@dataclass(frozen=True)
class LabelRow:
    label: str
    active_threshold: float
    what: LabelWhatIf
    chart: Chart | None  # drawn only for the labels a response shows


@dataclass(frozen=True)
class PolicyTotals:
    """The policy on the page as a whole: every label's automation and errors added up."""

    automation_rate: float
    errors_per_day: float | None  # None when some auto-approving label has no evidence
    errors_low: float | None
    errors_high: float | None
    items_per_day: float


def slider_name(label: str) -> str:
    return f"t_{label}"


def read_thresholds(
    args: Mapping[str, str], labels: list[str], defaults: Mapping[str, float]
) -> tuple[dict[str, float], dict[str, str]]:
    """Thresholds from `t_<label>` query parameters; bad ones fall back and are named."""
    thresholds, errors = {}, {}
    for label in labels:
        raw = args.get(slider_name(label))
        thresholds[label] = defaults[label]
        if raw is None:
            continue
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if math.isfinite(value) and 0 <= value <= 1:
            thresholds[label] = value
        else:
            errors[slider_name(label)] = "must be a number between 0 and 1"
    return thresholds, errors


def label_chart(
    evidence: QueueEvidence,
    label: str,
    threshold: float,
    recalibration: Recalibration | None,
    target: float | None = None,
) -> Chart:
    points = policy_stats.label_curve(evidence, label, recalibration, CURVE_STEPS)
    hlines = [RefLine(target, f"target {target:.1%}", "ref-target")] if target else []
    return line_chart(
        f"Precision and automation against the {label} threshold",
        [f"{p.threshold:.2f}" for p in points],
        [
            Series(
                "precision (95% interval shaded)",
                [p.precision for p in points],
                "s-precision",
                band_low=[p.ci_low if p.precision is not None else None for p in points],
                band_high=[p.ci_high if p.precision is not None else None for p in points],
            ),
            Series("automation rate", [p.automation_rate for p in points], "s-automation"),
        ],
        y_max=1.0,
        percent=True,
        hlines=hlines,
        marker_index=threshold * CURVE_STEPS,
        marker_label=f"{threshold:.3f}",
        x_tick_every=20,
    )


def label_row(
    evidence: QueueEvidence,
    label: str,
    threshold: float,
    active_threshold: float,
    recalibration: Recalibration | None,
    target: float | None = None,
    with_chart: bool = True,
) -> LabelRow:
    chart = label_chart(evidence, label, threshold, recalibration, target) if with_chart else None
    return LabelRow(
        label,
        active_threshold,
        policy_stats.label_what_if(evidence, label, threshold, recalibration),
        chart,
    )


def totals(evidence: QueueEvidence, whats: list[LabelWhatIf]) -> PolicyTotals:
    automation = sum(w.result.automation_rate for w in whats)
    auto = [w for w in whats if w.result.automation_rate > 0]
    known = all(w.result.expected_errors_per_day is not None for w in auto)
    return PolicyTotals(
        automation,
        sum(w.result.expected_errors_per_day or 0 for w in auto) if known else None,
        sum(w.errors_per_day_low or 0 for w in auto) if known else None,
        sum(w.errors_per_day_high or 0 for w in auto) if known else None,
        evidence.items_per_day,
    )


def proposals(
    evidence: QueueEvidence,
    labels: list[str],
    target: float,
    recalibration: Recalibration | None,
) -> list[LabelProposal]:
    return [
        policy_stats.propose_for_label(evidence, label, target, recalibration) for label in labels
    ]
