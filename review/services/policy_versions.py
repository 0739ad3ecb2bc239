"""A policy version's life: four-eyes approval, rejection, rollback, diff, and re-routing
the items still waiting when a new version takes effect.

Creating a version lives in review/services/queues.py (create_policy_version); it is
active at once unless the queue requires four eyes, in which case `approve` activates it.
Every step is written to the audit log.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, selectinload

from models import Item, PolicyVersion, Queue, User
from models.base import utcnow
from review.domain.policy import AiAdvice, route
from review.domain.policy_diff import Change, PolicyRules, diff_policies
from review.services import audit
from review.services.errors import Conflict, Forbidden, NotFound, ValidationFailed
from review.services.queues import (
    activate_version,
    as_threshold_policy,
    create_policy_version,
    current_policy,
)
from review.services.routing import parsed_recalibration, route_item


def versions(session: Session, queue: Queue) -> list[PolicyVersion]:
    """Every version of the queue's policy, newest first."""
    return list(
        session.scalars(
            select(PolicyVersion)
            .where(PolicyVersion.queue_id == queue.id)
            .order_by(PolicyVersion.version.desc())
        )
    )


def latest_number(session: Session, queue: Queue) -> int:
    """The highest version number the queue has (active or not)."""
    return (
        session.scalar(
            select(func.max(PolicyVersion.version)).where(PolicyVersion.queue_id == queue.id)
        )
        or 0
    )


def get_version(session: Session, queue: Queue, number: int) -> PolicyVersion:
    version = session.scalar(
        select(PolicyVersion).where(
            PolicyVersion.queue_id == queue.id, PolicyVersion.version == number
        )
    )
    if version is None:
        raise NotFound(
            f"queue {queue.slug} has no policy version {number}", {"version": "no such version"}
        )
    return version


def rules_of(version: PolicyVersion) -> PolicyRules:
    return PolicyRules(
        dict(version.thresholds),
        version.default_threshold,
        version.audit_rate,
        version.recalibration,
    )


def diff(queue: Queue, old: PolicyVersion, new: PolicyVersion) -> list[Change]:
    """What changes in effect going from `old` to `new`."""
    return diff_policies(rules_of(old), rules_of(new), queue.labels)


# --- four eyes ------------------------------------------------------------------------------


def _pending(session: Session, queue: Queue, number: int) -> PolicyVersion:
    version = get_version(session, queue, number)
    if version.status != "pending_approval":
        raise Conflict(
            f"version {number} is {version.status.replace('_', ' ')}, not awaiting approval",
            {"version": f"is {version.status}"},
        )
    return version


def approve(
    session: Session, queue: Queue, number: int, approver: User, *, reroute: bool = False
) -> RerouteResult | None:
    """A second policy owner approves a pending version, which takes effect at once.

    The author cannot approve their own version. With `reroute`, items still waiting
    unclaimed are routed again under it. Returns the re-route result, if one was asked for.
    """
    version = _pending(session, queue, number)
    if version.created_by_id == approver.id:
        raise Forbidden(
            "four eyes: a second policy owner must approve this version, not its author",
            {"version": "you wrote this version"},
        )
    version.decided_by_id = approver.id
    version.decided_at = utcnow()
    audit.record(session, "policy.approved", user=approver, queue_id=queue.id, version=number)
    activate_version(session, queue, version, approver)
    return reroute_waiting(session, queue, version, approver) if reroute else None


def reject(
    session: Session, queue: Queue, number: int, user: User, reason: object
) -> PolicyVersion:
    """Turn a pending version down, saying why (`reason`: any value a client sent; only a
    non-blank string is accepted). It never takes effect."""
    if not isinstance(reason, str) or not reason.strip():
        raise ValidationFailed("say why the version is rejected", {"reason": "is required"})
    version = _pending(session, queue, number)
    version.status = "rejected"
    version.decided_by_id = user.id
    version.decided_at = utcnow()
    audit.record(
        session,
        "policy.rejected",
        user=user,
        queue_id=queue.id,
        version=number,
        reason=reason.strip(),
    )
    return version


def rollback(session: Session, queue: Queue, number: int, user: User, note: Any) -> PolicyVersion:
    """A new version with the rules of version `number` (which stays as it was).

    Like any new version it needs a note, and a second owner's approval under four eyes.
    """
    old = get_version(session, queue, number)
    if not isinstance(note, str) or not note.strip():
        raise ValidationFailed("a note saying why is required", {"note": "is required"})
    data = {
        "thresholds": dict(old.thresholds),
        "default_threshold": old.default_threshold,
        "audit_rate": old.audit_rate,
        "recalibration": old.recalibration,
        "note": f"Rollback to version {number}: {note.strip()}",
    }
    version = create_policy_version(session, queue, data, user, rollback_of=number)
    audit.record(
        session,
        "policy.rolled_back",
        user=user,
        queue_id=queue.id,
        version=version.version,
        rollback_of=number,
    )
    return version


# --- re-routing waiting items ---------------------------------------------------------------


@dataclass(frozen=True)
class ReroutePreview:
    waiting: int  # unclaimed items awaiting review that have an AI recommendation
    would_leave_review: int  # of those, how many the version would auto-approve
    expected_audited: float  # of those, how many audit sampling is expected to keep


@dataclass(frozen=True)
class RerouteResult:
    rerouted: int
    auto_approved: int
    audited: int


def _waiting_items(session: Session, queue: Queue, *, lock: bool) -> list[Item]:
    """Items awaiting review that nobody holds a live lease on, with their recommendation."""
    query = (
        select(Item)
        .where(
            Item.queue_id == queue.id,
            Item.status == "needs_review",
            or_(Item.leased_by_id.is_(None), Item.lease_expires_at < utcnow()),
        )
        .order_by(Item.id)
        .options(selectinload(Item.recommendation), selectinload(Item.routings))
    )
    if lock:
        # Reviewers' claims skip nothing: they wait for these rows, then find them routed.
        query = query.with_for_update(skip_locked=True, of=Item)
    return [item for item in session.scalars(query) if item.recommendation is not None]


def _would_auto_approve(version: PolicyVersion, item: Item) -> bool:
    rec = item.recommendation
    assert rec is not None
    if math.isnan(rec.confidence):
        return False
    recalibration = parsed_recalibration(version)
    confidence = recalibration.apply(rec.label, rec.confidence) if recalibration else rec.confidence
    return route(as_threshold_policy(version), AiAdvice(rec.label, confidence)).auto_approved


def preview_reroute(session: Session, queue: Queue, version: PolicyVersion) -> ReroutePreview:
    """How many waiting items would leave review if `version` re-routed them now."""
    waiting = _waiting_items(session, queue, lock=False)
    leaving = sum(1 for item in waiting if _would_auto_approve(version, item))
    return ReroutePreview(len(waiting), leaving, leaving * version.audit_rate)


def reroute_waiting(
    session: Session,
    queue: Queue,
    version: PolicyVersion,
    user: User,
    rng: random.Random | None = None,
) -> RerouteResult:
    """Route again, under `version`, the waiting items it would auto-approve.

    Items it would still send to people keep their routing (and its inclusion
    probability, which described how they were chosen). An item drawn for audit again had
    to pass both draws, so its inclusion probability is the product of the two.
    """
    if version.status != "active":
        raise Conflict("only the active version can re-route items", {"version": "not active"})
    rerouted = auto = audited = 0
    for item in _waiting_items(session, queue, lock=True):
        if not _would_auto_approve(version, item):
            continue
        before = item.routings[-1].inclusion_probability if item.routings else 1.0
        record = route_item(
            session,
            item,
            queue,
            item.recommendation,
            ai_status=item.ai_status or "ok",
            ai_error=item.ai_error,
            policy=version,
            rng=rng,
        )
        if record.audit:
            record.inclusion_probability = before * record.inclusion_probability
            audited += 1
        else:
            auto += 1
        rerouted += 1
    session.flush()
    audit.record(
        session,
        "policy.rerouted",
        user=user,
        queue_id=queue.id,
        version=version.version,
        rerouted=rerouted,
        auto_approved=auto,
        audited=audited,
    )
    return RerouteResult(rerouted, auto, audited)


# --- queue settings that belong to the policy owner ----------------------------------------


def update_settings(session: Session, queue: Queue, data: Any, user: User) -> Queue:
    """Set four eyes on or off and the review SLA in hours (audited)."""
    if not isinstance(data, dict):
        raise ValidationFailed("body must be an object", {"body": "must be an object"})
    errors: dict[str, str] = {}
    four_eyes = data.get("require_four_eyes", queue.require_four_eyes)
    if not isinstance(four_eyes, bool):
        errors["require_four_eyes"] = "must be true or false"
    sla = data.get("review_sla_hours", queue.review_sla_hours)
    if (
        isinstance(sla, bool)
        or not isinstance(sla, int | float)
        or not math.isfinite(sla)
        or not 0 < sla <= 24 * 365
    ):
        errors["review_sla_hours"] = "must be a number of hours above 0, at most a year"
    if errors:
        raise ValidationFailed("invalid settings", errors)
    changed: dict[str, Any] = {
        key: value
        for key, value in (("require_four_eyes", four_eyes), ("review_sla_hours", float(sla)))
        if getattr(queue, key) != value
    }
    for key, value in changed.items():
        setattr(queue, key, value)
    if changed:
        audit.record(session, "policy.settings_changed", user=user, queue_id=queue.id, **changed)
    return queue


def active_version(session: Session, queue: Queue) -> PolicyVersion:
    return current_policy(session, queue)
