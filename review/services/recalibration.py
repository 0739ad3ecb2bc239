"""Calibration of a queue's AI: reliability per label and per model version, and fitting
a recalibration that a new policy version applies before its thresholds.

Observations are human-labeled items weighted by 1 / inclusion probability, as in the
precision estimates, so bins above the threshold count for the auto-approved items their
audit sample stands for.

A recalibration maps the confidences of the model that recommends now, so it is fitted on
that model's labeled items only (all its versions): another model's confidences are on a
scale of their own.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import Item, PolicyVersion, Queue, Recommendation, Review, RoutingRecord, User
from review.domain.calibration import Reliability, reliability
from review.domain.recalibration import METHODS, Recalibration, fit
from review.services.errors import ValidationFailed
from review.services.policy_stats import current_model
from review.services.queues import create_policy_version, current_policy
from review.services.routing import parsed_recalibration

Observation = tuple[float, bool, float]  # (raw confidence, AI was right, weight)


@dataclass(frozen=True)
class LabeledSet:
    by_label: dict[str, list[Observation]]
    by_model: dict[str, list[Observation]]  # "model version" -> observations
    # Per label, only the items scored by the model now in use (the one a fit applies to).
    current_by_label: dict[str, list[Observation]]
    current_model: str | None


def labeled_set(session: Session, queue: Queue) -> LabeledSet:
    """Every human-labeled item of the queue with an AI recommendation, grouped two ways."""
    latest = (
        select(func.max(RoutingRecord.id))
        .where(RoutingRecord.item_id == Item.id)
        .correlate(Item)
        .scalar_subquery()
    )
    rows = session.execute(
        select(
            Recommendation.label,
            Recommendation.confidence,
            Recommendation.model,
            Recommendation.model_version,
            Review.final_label,
            RoutingRecord.inclusion_probability,
        )
        .join(Item, Item.id == Recommendation.item_id)
        .join(Review, Review.item_id == Item.id)
        .join(RoutingRecord, RoutingRecord.id == latest)
        .where(Item.queue_id == queue.id, RoutingRecord.inclusion_probability > 0)
        .execution_options(yield_per=20_000)
    )
    current = current_model(session, queue.id)
    by_label: dict[str, list[Observation]] = defaultdict(list)
    by_model: dict[str, list[Observation]] = defaultdict(list)
    current_by_label: dict[str, list[Observation]] = defaultdict(list)
    for label, confidence, model, version, final_label, probability in rows:
        observation = (confidence, label == final_label, 1.0 / probability)
        by_label[label].append(observation)
        by_model[f"{model} {version}" if version else model].append(observation)
        if model == current:
            current_by_label[label].append(observation)
    return LabeledSet(dict(by_label), dict(by_model), dict(current_by_label), current)


@dataclass(frozen=True)
class CalibrationReport:
    by_label: dict[str, Reliability]
    by_model: dict[str, Reliability]
    # The same per label after the recalibration in force (None without one).
    recalibrated_by_label: dict[str, Reliability] | None
    current_model: str | None  # the model a new fit would be fitted on and applied to
    current_labeled: int  # its labeled items


def calibration_report(session: Session, queue: Queue, n_bins: int = 10) -> CalibrationReport:
    data = labeled_set(session, queue)
    recalibration = _recalibration_in_force(session, queue)
    after = None
    if recalibration is not None:
        after = {
            label: reliability(
                [(recalibration.apply(label, c), y, w) for c, y, w in observations], n_bins
            )
            for label, observations in data.by_label.items()
        }
    return CalibrationReport(
        {label: reliability(obs, n_bins) for label, obs in sorted(data.by_label.items())},
        {model: reliability(obs, n_bins) for model, obs in sorted(data.by_model.items())},
        after,
        data.current_model,
        sum(len(obs) for obs in data.current_by_label.values()),
    )


def _recalibration_in_force(session: Session, queue: Queue) -> Recalibration | None:
    return parsed_recalibration(current_policy(session, queue))


def fit_for_queue(session: Session, queue: Queue, method: str) -> Recalibration:
    """Fit `method` per label on the raw confidences of the labeled items that the model
    now recommending scored."""
    if method not in METHODS:
        raise ValidationFailed(
            f"method must be one of {', '.join(METHODS)}", {"method": "choose platt or isotonic"}
        )
    return fit(method, labeled_set(session, queue).current_by_label)


def new_version_with_recalibration(
    session: Session, queue: Queue, method: str, note: object, user: User
) -> PolicyVersion:
    """A new version equal to the one in force but with a freshly fitted recalibration
    (or none, with method "none"). Thresholds stay as they are: re-check them after."""
    active = current_policy(session, queue)
    recalibration = None
    if method != "none":
        fitted = fit_for_queue(session, queue, method)
        if not fitted.by_label:
            model = current_model(session, queue.id) or "the AI"
            reasons = "; ".join(f"{k}: {v}" for k, v in fitted.skipped.items())
            raise ValidationFailed(
                f"no label has enough items labeled since {model} recommends",
                {
                    "method": f"nothing to fit on {model}'s labeled items"
                    + (f" ({reasons})" if reasons else "")
                },
            )
        recalibration = fitted.to_dict()
    data = {
        "thresholds": dict(active.thresholds),
        "default_threshold": active.default_threshold,
        "audit_rate": active.audit_rate,
        "recalibration": recalibration,
        "note": note,
    }
    return create_policy_version(session, queue, data, user)
