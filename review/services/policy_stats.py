"""Evidence for threshold decisions: what a threshold per label buys and costs.

The evidence of a queue is built from two aggregate reads, binned by raw confidence at a
resolution of 1/10,000:

- every human-labeled item with an AI recommendation (its label, raw confidence, whether
  the person agreed, and the inclusion probability of the routing that sent it to them),
  folded into one `PrecisionCurve` per label;
- the raw confidences of the items recommended in the last `WINDOW_DAYS`, one
  `ConfidenceCounts` per label, for the automation rate and the daily volume.

Building costs one pass over those rows in the database; every what-if question after
that costs a binary search. Evidence is kept in process per queue and rebuilt when the
data watermark (the newest review, routing and recommendation ids) moves, but at most once per
`max_stale_seconds`: a busy queue gets a new review every second, and a policy owner
moving a slider needs an answer in milliseconds, not a rescan. Every answer says which
data it is as of.

Evidence pools every model that ever recommended in the queue. A confidence of 0.9 from
one model need not mean what it means from another, so the evidence also counts its
labeled items per model and names the model recommending now: the page warns when the
estimates rest on other models' labels.

Thresholds are on the scale the policy routes on: when the policy recalibrates
confidences, a threshold is first mapped to the raw confidence it corresponds to (the
maps are monotone, see review/domain/recalibration.py).
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Integer, case, cast, exists, func, select
from sqlalchemy.orm import Session, aliased

from models import Item, PolicyVersion, Queue, Recommendation, Review, RoutingRecord
from models.base import utcnow
from review.domain.estimates import (
    ConfidenceCounts,
    PrecisionCurve,
    PrecisionEstimate,
    ThresholdProposal,
    WeightedSums,
    WhatIf,
    estimate_from_sums,
    propose_threshold,
    what_if,
)
from review.domain.recalibration import Recalibration
from review.services.routing import parsed_recalibration

# Automation and volume are measured over the recent past, where the traffic mix is today's.
WINDOW_DAYS = 28
DEFAULT_MAX_STALE_SECONDS = 60.0
# Confidences are aggregated into bins of 1 / BINS; thresholds resolve to that grid.
BINS = 10_000
# Candidate thresholds for proposals: 0.000, 0.001, ..., 1.000.
PROPOSAL_GRID = tuple(i / 1000 for i in range(1001))


@dataclass(frozen=True)
class LabelEvidence:
    label: str
    curve: PrecisionCurve  # over human-labeled items whose AI label is this one
    confidences: ConfidenceCounts  # over recommended items in the window with this AI label


@dataclass(frozen=True)
class QueueEvidence:
    queue_id: int
    labels: dict[str, LabelEvidence]
    total_recommended: int  # recommended items in the window, all labels
    items_per_day: float
    n_labeled: int
    as_of: datetime
    window_days: int
    # Labeled items per model name (all its versions), and the model of the queue's newest
    # recommendation (None before the first one).
    labeled_by_model: dict[str, int] = field(default_factory=dict)
    current_model: str | None = None
    # Chart curves per (label, steps, recalibration): they do not depend on the slider, so a
    # slider move reuses them. Values keep their recalibration to pin its identity.
    _curves: dict[tuple[str, int, int], tuple[object, list[CurvePoint]]] = field(
        default_factory=dict, repr=False, compare=False
    )

    def label(self, label: str) -> LabelEvidence:
        return self.labels.get(label) or LabelEvidence(
            label, PrecisionCurve([]), ConfidenceCounts([])
        )

    @property
    def other_models_labeled(self) -> int:
        """Labeled items whose confidence came from a model other than the current one."""
        return sum(n for model, n in self.labeled_by_model.items() if model != self.current_model)


# --- building and caching -----------------------------------------------------------------


def _watermark(session: Session) -> tuple[int, int, int]:
    """The newest review, routing and recommendation ids: new evidence moves one of them.

    Max of a primary key is an index lookup, so this costs well under a millisecond.
    """
    row = session.execute(
        select(
            select(func.max(Review.id)).scalar_subquery(),
            select(func.max(RoutingRecord.id)).scalar_subquery(),
            select(func.max(Recommendation.id)).scalar_subquery(),
        )
    ).one()
    return (row[0] or 0, row[1] or 0, row[2] or 0)


def _bin(session: Session, confidence):  # type: ignore[no-untyped-def]
    """The confidence's bin number: floor(confidence * BINS), nudged so that decimal
    inputs like 0.95 land in their own bin despite binary rounding."""
    scaled = confidence * BINS + 1e-7
    if session.get_bind().dialect.name == "sqlite":
        return cast(scaled, Integer)  # SQLite truncates, which is floor for c >= 0
    return func.floor(scaled)


def labeled_bins(session: Session, queue_id: int):  # type: ignore[no-untyped-def]
    """Per (AI label, confidence bin, model name): labeled items, and the sums of their
    weights, of the weights of right answers, and of squared weights. Weights are 1 / the inclusion
    probability of the item's latest routing, the one that sent it to a person.

    The database aggregates, so a million labeled items cost one pass on the server and
    at most BINS + 1 rows per label over the wire.
    """
    newer = aliased(RoutingRecord)
    weight = 1.0 / RoutingRecord.inclusion_probability
    right = case((Recommendation.label == Review.final_label, weight), else_=0.0)
    bin_ = _bin(session, Recommendation.confidence)
    return session.execute(
        select(
            Recommendation.label,
            bin_,
            Recommendation.model,
            func.count(),
            func.sum(weight),
            func.sum(right),
            func.sum(weight * weight),
        )
        .join(Item, Item.id == Recommendation.item_id)
        .join(Review, Review.item_id == Item.id)
        .join(RoutingRecord, RoutingRecord.item_id == Item.id)
        .where(
            Item.queue_id == queue_id,
            RoutingRecord.inclusion_probability > 0,
            ~exists().where(newer.item_id == RoutingRecord.item_id, newer.id > RoutingRecord.id),
        )
        .group_by(Recommendation.label, bin_, Recommendation.model)
    )


def current_model(session: Session, queue_id: int) -> str | None:
    """The model of the queue's newest recommendation: the one a threshold applies to now."""
    return session.scalar(
        select(Recommendation.model)
        .join(Item, Item.id == Recommendation.item_id)
        .where(Item.queue_id == queue_id)
        .order_by(Recommendation.id.desc())
        .limit(1)
    )


def build_evidence(session: Session, queue: Queue, now: datetime | None = None) -> QueueEvidence:
    """Read the queue's labeled items and recent confidences into per-label curves.

    Confidences are resolved to 1 / BINS: thresholds on that grid (every slider step and
    proposal candidate) are answered exactly.
    """
    now = now or utcnow()
    labeled: dict[str, list[tuple[float, WeightedSums]]] = defaultdict(list)
    by_model: dict[str, int] = defaultdict(int)
    for label, bin_, model, count, sum_w, sum_wy, sum_w2 in labeled_bins(session, queue.id):
        # Two models in one bin make two entries with one confidence; the curve adds them.
        labeled[label].append(
            (int(bin_) / BINS, WeightedSums(float(sum_w), float(sum_wy), float(sum_w2), count))
        )
        by_model[model] += count
    since = now - timedelta(days=WINDOW_DAYS)
    recent_filter = (Item.queue_id == queue.id, Recommendation.created_at >= since)
    bin_ = _bin(session, Recommendation.confidence)
    recent: dict[str, list[tuple[float, int]]] = defaultdict(list)
    for label, bin_value, count in session.execute(
        select(Recommendation.label, bin_, func.count())
        .join(Item, Item.id == Recommendation.item_id)
        .where(*recent_filter)
        .group_by(Recommendation.label, bin_)
    ):
        recent[label].append((int(bin_value) / BINS, count))
    first_seen = session.scalar(
        select(func.min(Recommendation.created_at))
        .join(Item, Item.id == Recommendation.item_id)
        .where(*recent_filter)
    )
    total = sum(count for bins in recent.values() for _, count in bins)
    labels = {
        label: LabelEvidence(
            label,
            PrecisionCurve.from_bins(labeled.get(label, [])),
            ConfidenceCounts.from_bins(recent.get(label, [])),
        )
        for label in set(labeled) | set(recent)
    }
    return QueueEvidence(
        queue_id=queue.id,
        labels=labels,
        total_recommended=total,
        items_per_day=total / _span_days(first_seen, now),
        n_labeled=sum(by_model.values()),
        as_of=now,
        window_days=WINDOW_DAYS,
        labeled_by_model=dict(by_model),
        current_model=current_model(session, queue.id),
    )


def _span_days(first_seen: datetime | None, now: datetime) -> float:
    """Days the window's traffic covers: at least one (a young queue's volume is not
    extrapolated from its first minutes), at most the window."""
    if first_seen is None:
        return 1.0
    days = (now - first_seen).total_seconds() / 86400
    return min(max(days, 1.0), float(WINDOW_DAYS))


@dataclass
class _Entry:
    watermark: tuple[int, int, int]
    built_monotonic: float
    evidence: QueueEvidence


class EvidenceCache:
    """Evidence per queue, kept in this process.

    Keyed by the database URL and the queue's id and creation time, so two databases (or
    a queue re-created with a recycled id) never share an entry.
    """

    def __init__(self) -> None:
        self._entries: dict[tuple[str, int, datetime], _Entry] = {}
        self._lock = threading.Lock()

    def get(self, session: Session, queue: Queue, max_stale_seconds: float) -> QueueEvidence:
        key = (str(session.get_bind().engine.url), queue.id, queue.created_at)
        watermark = _watermark(session)
        with self._lock:
            entry = self._entries.get(key)
        if entry is not None and (
            entry.watermark == watermark
            or time.monotonic() - entry.built_monotonic < max_stale_seconds
        ):
            return entry.evidence
        evidence = build_evidence(session, queue)
        with self._lock:
            self._entries[key] = _Entry(watermark, time.monotonic(), evidence)
        return evidence

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


CACHE = EvidenceCache()


def queue_evidence(
    session: Session, queue: Queue, max_stale_seconds: float = DEFAULT_MAX_STALE_SECONDS
) -> QueueEvidence:
    """The queue's evidence, from the cache when it is current (or young enough)."""
    return CACHE.get(session, queue, max_stale_seconds)


# --- questions -----------------------------------------------------------------------------


@dataclass(frozen=True)
class LabelWhatIf:
    """What one label's threshold does, on the policy's scale, with the evidence behind it."""

    label: str
    threshold: float  # on the policy's (possibly recalibrated) scale
    raw_threshold: float  # the same cut on the AI's raw confidences
    result: WhatIf
    errors_per_day_low: float | None  # from the interval's upper precision bound
    errors_per_day_high: float | None  # from its lower bound


def label_what_if(
    evidence: QueueEvidence,
    label: str,
    threshold: float,
    recalibration: Recalibration | None = None,
) -> LabelWhatIf:
    """Automation, precision with its interval, and expected wrong auto-approvals per day."""
    raw = recalibration.raw_threshold(label, threshold) if recalibration else threshold
    data = evidence.label(label)
    result = what_if(
        raw, data.confidences, data.curve, evidence.total_recommended, evidence.items_per_day
    )
    result = WhatIf(**{**result.__dict__, "threshold": threshold})
    volume = result.automation_rate * evidence.items_per_day
    low = high = None
    if result.precision is not None:
        low, high = (1 - result.ci_high) * volume, (1 - result.ci_low) * volume
    return LabelWhatIf(label, threshold, raw, result, low, high)


@dataclass(frozen=True)
class LabelProposal:
    label: str
    target: float
    threshold: float | None  # on the policy's scale; None when the target cannot be met
    estimate: PrecisionEstimate | None
    what_if: LabelWhatIf | None
    reason: str


def propose_for_label(
    evidence: QueueEvidence,
    label: str,
    target: float,
    recalibration: Recalibration | None = None,
) -> LabelProposal:
    """The lowest threshold whose 95% lower bound meets `target`, or None and why."""
    curve = evidence.label(label).curve
    # Several policy-scale thresholds can map to one raw cut; keep the lowest of them.
    lowest: dict[float, float] = {}
    for t in PROPOSAL_GRID:
        lowest.setdefault(recalibration.raw_threshold(label, t) if recalibration else t, t)
    proposal: ThresholdProposal = propose_threshold(curve, target, sorted(lowest))
    if proposal.threshold is None:
        return LabelProposal(label, target, None, None, None, proposal.reason)
    threshold = lowest[proposal.threshold]
    return LabelProposal(
        label,
        target,
        threshold,
        proposal.estimate,
        label_what_if(evidence, label, threshold, recalibration),
        proposal.reason,
    )


@dataclass(frozen=True)
class CurvePoint:
    threshold: float
    automation_rate: float
    precision: float | None
    ci_low: float
    ci_high: float


def label_curve(
    evidence: QueueEvidence,
    label: str,
    recalibration: Recalibration | None = None,
    steps: int = 100,
) -> list[CurvePoint]:
    """Precision (with interval) and automation at evenly spaced thresholds, for a chart."""
    key = (label, steps, id(recalibration))
    cached = evidence._curves.get(key)
    if cached is not None and cached[0] is recalibration:
        return cached[1]
    points = []
    for i in range(steps + 1):
        result = label_what_if(evidence, label, i / steps, recalibration).result
        points.append(
            CurvePoint(
                i / steps, result.automation_rate, result.precision, result.ci_low, result.ci_high
            )
        )
    evidence._curves[key] = (recalibration, points)
    return points


def combined_estimate(
    evidence: QueueEvidence, raw_thresholds: dict[str, float]
) -> PrecisionEstimate:
    """Precision of everything auto-approved when each label uses its (raw) threshold."""
    total = WeightedSums(0.0, 0.0, 0.0, 0)
    for label, threshold in raw_thresholds.items():
        total = total + evidence.label(label).curve.sums_at(threshold)
    return estimate_from_sums(total)


def recalibration_of(policy: PolicyVersion) -> Recalibration | None:
    return parsed_recalibration(policy)
