"""The queue dashboard: daily series over the last weeks, and drift alarms.

Every series is one value per UTC day, oldest first, so a chart can put them side by
side: automation rate, override rate per AI label, audit precision (each day's and
cumulative, with its interval), queue depth and the oldest waiting item's age at the end
of each day, decisions per day, and AI cost per day. The estimate the audit precision
should converge on is the selection-corrected precision of what the policy in force
auto-approves (review/services/policy_stats.py).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import Row, func, select
from sqlalchemy.orm import Session

from models import Item, Queue, Recommendation, Review, RoutingRecord, User
from models.base import utcnow
from review.domain.drift import DriftAlarm, drift_alarm
from review.domain.estimates import LabeledObservation, PrecisionEstimate, estimate_precision
from review.services import policy_stats
from review.services.queues import as_threshold_policy, current_policy

DAYS = 30
RECENT_DAYS = 7  # drift: the last week against the weeks before it


@dataclass(frozen=True)
class AuditDay:
    day: date
    daily: PrecisionEstimate
    cumulative: PrecisionEstimate


@dataclass(frozen=True)
class Dashboard:
    days: list[date]
    automation_rate: list[float | None]
    routed: list[int]
    override_rate: dict[str, list[float | None]]  # per AI label
    audit: list[AuditDay]
    policy_estimate: PrecisionEstimate  # what the policy in force auto-approves, estimated
    # The evidence behind that estimate: labeled items per model, and the model now in use.
    labeled_by_model: dict[str, int]
    current_model: str | None
    depth: list[int]
    oldest_hours: list[float | None]
    sla_hours: float
    decisions: list[int]
    decisions_by_reviewer: list[tuple[str, int]]
    cost_usd: list[float]
    alarms: list[DriftAlarm]
    now: datetime


def _day_index(days: list[date]) -> dict[date, int]:
    return {d: i for i, d in enumerate(days)}


def _as_date(value: object) -> date:
    # SQLite's date() answers a string, PostgreSQL's a date.
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _automation(
    session: Session, queue: Queue, days: list[date], since: datetime
) -> tuple[list[float | None], list[int]]:
    index = _day_index(days)
    auto, total = [0] * len(days), [0] * len(days)
    rows = session.execute(
        select(func.date(RoutingRecord.created_at), RoutingRecord.route, func.count())
        .join(Item, Item.id == RoutingRecord.item_id)
        .where(Item.queue_id == queue.id, RoutingRecord.created_at >= since)
        .group_by(func.date(RoutingRecord.created_at), RoutingRecord.route)
    )
    for day, route, count in rows:
        i = index.get(_as_date(day))
        if i is None:
            continue
        total[i] += count
        if route == "auto_approve":
            auto[i] += count
    return [a / t if t else None for a, t in zip(auto, total, strict=True)], total


def _overrides(
    session: Session, queue: Queue, days: list[date], since: datetime
) -> dict[str, list[list[int]]]:
    """Per AI label and day: (overridden, decided), as counts."""
    index = _day_index(days)
    counts: dict[str, list[list[int]]] = defaultdict(lambda: [[0, 0] for _ in days])
    rows = session.execute(
        select(func.date(Review.decided_at), Review.ai_label, Review.action, func.count())
        .join(Item, Item.id == Review.item_id)
        .where(Item.queue_id == queue.id, Review.decided_at >= since, Review.ai_label.is_not(None))
        .group_by(func.date(Review.decided_at), Review.ai_label, Review.action)
    )
    for day, label, action, count in rows:
        i = index.get(_as_date(day))
        if i is None:
            continue
        counts[label][i][1] += count
        if action == "overridden":
            counts[label][i][0] += count
    return counts


def _audit_rows(session: Session, queue: Queue) -> Sequence[Row[datetime, bool, float]]:
    """(decided day, AI was right, inclusion probability) for every decided audit item."""
    latest = (
        select(func.max(RoutingRecord.id))
        .where(RoutingRecord.item_id == Item.id)
        .correlate(Item)
        .scalar_subquery()
    )
    return session.execute(
        select(
            Review.decided_at,
            Review.ai_label == Review.final_label,
            RoutingRecord.inclusion_probability,
        )
        .join(Item, Item.id == Review.item_id)
        .join(RoutingRecord, RoutingRecord.id == latest)
        .where(Item.queue_id == queue.id, RoutingRecord.audit.is_(True))
        .order_by(Review.decided_at)
    ).all()


def _audit_series(rows: Sequence[Row[datetime, bool, float]], days: list[date]) -> list[AuditDay]:
    """Each day's audit precision, and the cumulative one up to that day (all history)."""
    by_day: dict[date, list[LabeledObservation]] = defaultdict(list)
    before: list[LabeledObservation] = []
    for decided_at, right, probability in rows:
        observation = LabeledObservation(1.0, bool(right), probability)
        if decided_at.date() < days[0]:
            before.append(observation)
        else:
            by_day[decided_at.date()].append(observation)
    series, cumulative = [], list(before)
    for day in days:
        cumulative.extend(by_day[day])
        series.append(
            AuditDay(day, estimate_precision(by_day[day]), estimate_precision(cumulative))
        )
    return series


def _depth(
    session: Session, queue: Queue, days: list[date], now: datetime
) -> tuple[list[int], list[float | None]]:
    """Items waiting for a person at the end of each day, and the oldest one's age in hours.

    Only items whose wait spans a day's end can be waiting at one: still waiting, or
    decided on a later (UTC) day than they were routed. The database leaves out the rest
    (on a busy queue, most items are decided the day they arrive), and one sweep over the
    days keeps only the items waiting at each end, so no day rescans every row.
    """
    since = datetime.combine(days[0], datetime.min.time(), tzinfo=now.tzinfo)
    rows = session.execute(
        select(Item.created_at, Item.routed_at, Item.decided_at)
        .where(
            Item.queue_id == queue.id,
            Item.status.in_(("needs_review", "decided")),
            Item.routed_at.is_not(None),
            (Item.decided_at.is_(None))
            | (
                (Item.decided_at >= since)
                & (func.date(Item.decided_at) > func.date(Item.routed_at))
            ),
        )
        .order_by(Item.routed_at)
        .execution_options(yield_per=20_000)
    ).all()
    depth, oldest = [], []
    waiting: list[tuple[datetime, datetime | None]] = []  # (created, decided) of waiting items
    next_row = 0
    for day in days:
        end = min(
            datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=now.tzinfo), now
        )
        while next_row < len(rows):
            created, routed, decided = rows[next_row]
            assert routed is not None  # the query leaves out items never routed
            if routed > end:
                break
            waiting.append((created, decided))
            next_row += 1
        # Ends only move forward, so an item decided by this end never waits again.
        waiting = [(c, d) for c, d in waiting if d is None or d > end]
        depth.append(len(waiting))
        oldest.append(
            (end - min(c for c, _ in waiting)).total_seconds() / 3600 if waiting else None
        )
    return depth, oldest


def _decisions(
    session: Session, queue: Queue, days: list[date], since: datetime
) -> tuple[list[int], list[tuple[str, int]]]:
    index = _day_index(days)
    per_day = [0] * len(days)
    for day, count in session.execute(
        select(func.date(Review.decided_at), func.count())
        .join(Item, Item.id == Review.item_id)
        .where(Item.queue_id == queue.id, Review.decided_at >= since)
        .group_by(func.date(Review.decided_at))
    ):
        if (i := index.get(_as_date(day))) is not None:
            per_day[i] = count
    by_reviewer = session.execute(
        select(User.email, func.count())
        .join(Review, Review.reviewer_id == User.id)
        .join(Item, Item.id == Review.item_id)
        .where(Item.queue_id == queue.id, Review.decided_at >= since)
        .group_by(User.email)
        .order_by(func.count().desc())
    ).all()
    return per_day, [(email, count) for email, count in by_reviewer]


def _cost(session: Session, queue: Queue, days: list[date], since: datetime) -> list[float]:
    index = _day_index(days)
    cost = [0.0] * len(days)
    for day, total in session.execute(
        select(func.date(Recommendation.created_at), func.sum(Recommendation.cost_usd))
        .join(Item, Item.id == Recommendation.item_id)
        .where(Item.queue_id == queue.id, Recommendation.created_at >= since)
        .group_by(func.date(Recommendation.created_at))
    ):
        if (i := index.get(_as_date(day))) is not None:
            cost[i] = float(total or 0)
    return cost


def _policy_estimate(
    session: Session, queue: Queue, evidence: policy_stats.QueueEvidence
) -> PrecisionEstimate:
    """Estimated precision of everything the policy in force auto-approves, all labels."""
    policy = current_policy(session, queue)
    recalibration = policy_stats.recalibration_of(policy)
    thresholds = as_threshold_policy(policy)
    raw = {
        label: recalibration.raw_threshold(label, thresholds.threshold_for(label))
        if recalibration
        else thresholds.threshold_for(label)
        for label in evidence.labels
    }
    return policy_stats.combined_estimate(evidence, raw)


def _alarms(
    overrides: dict[str, list[list[int]]],
    audit_rows: Sequence[Row[datetime, bool, float]],
    days: list[date],
) -> list[DriftAlarm]:
    split = len(days) - RECENT_DAYS
    alarms = []
    for label, per_day in sorted(overrides.items()):
        base = (sum(x for x, _ in per_day[:split]), sum(n for _, n in per_day[:split]))
        recent = (sum(x for x, _ in per_day[split:]), sum(n for _, n in per_day[split:]))
        alarms.append(drift_alarm(f"override rate of {label}", base, recent))
    cut = days[split]
    base_obs = [bool(r) for d, r, _ in audit_rows if d.date() < cut and d.date() >= days[0]]
    recent_obs = [bool(r) for d, r, _ in audit_rows if d.date() >= cut]
    alarms.append(
        drift_alarm(
            "audit precision",
            (sum(base_obs), len(base_obs)),
            (sum(recent_obs), len(recent_obs)),
        )
    )
    return alarms


def build_dashboard(
    session: Session, queue: Queue, now: datetime | None = None, max_stale_seconds: float = 0.0
) -> Dashboard:
    """Every series and alarm of the dashboard for the last DAYS days (UTC).

    The policy estimate comes from the cached evidence of review/services/policy_stats.py
    when it is at most `max_stale_seconds` old: on a busy queue new labels arrive every
    second, and rebuilding a million items' evidence on every view would cost seconds.
    """
    now = now or utcnow()
    days = [(now - timedelta(days=DAYS - 1 - k)).date() for k in range(DAYS)]
    since = datetime.combine(days[0], datetime.min.time(), tzinfo=now.tzinfo)
    automation, routed = _automation(session, queue, days, since)
    overrides = _overrides(session, queue, days, since)
    audit_rows = _audit_rows(session, queue)
    depth, oldest = _depth(session, queue, days, now)
    decisions, by_reviewer = _decisions(session, queue, days, since)
    evidence = policy_stats.queue_evidence(session, queue, max_stale_seconds)
    return Dashboard(
        days=days,
        automation_rate=automation,
        routed=routed,
        override_rate={
            label: [x / n if n else None for x, n in per_day]
            for label, per_day in sorted(overrides.items())
        },
        audit=_audit_series(audit_rows, days),
        policy_estimate=_policy_estimate(session, queue, evidence),
        labeled_by_model=evidence.labeled_by_model,
        current_model=evidence.current_model,
        depth=depth,
        oldest_hours=oldest,
        sla_hours=queue.review_sla_hours,
        decisions=decisions,
        decisions_by_reviewer=by_reviewer,
        cost_usd=_cost(session, queue, days, since),
        alarms=_alarms(overrides, audit_rows, days),
        now=now,
    )
