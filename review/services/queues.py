"""Creating and reading queues and their threshold policies."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import PolicyVersion, Queue, User
from models.base import utcnow
from models.queue import RECOMMENDER_KINDS
from review.domain.policy import PolicyError, ThresholdPolicy, build_policy
from review.domain.recalibration import from_dict as recalibration_from_dict
from review.domain.sampling import check_audit_rate
from review.services import audit
from review.services.ai_settings import ai_settings_as_dict, parse_ai_settings
from review.services.errors import Conflict, NotFound, ValidationFailed

SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
# A new queue auto-approves nothing until a policy owner decides otherwise.
INITIAL_DEFAULT_THRESHOLD = 1.0


def _string_list(value: Any, field: str, errors: dict[str, str], *, min_items: int) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        errors[field] = "must be a list of non-empty strings"
        return []
    cleaned = [v.strip() for v in value]
    if len(cleaned) < min_items:
        errors[field] = f"must have at least {min_items} entries"
    elif len(set(cleaned)) != len(cleaned):
        errors[field] = "must not repeat entries"
    elif any(len(v) > 100 for v in cleaned):
        errors[field] = "entries must be at most 100 characters"
    return cleaned


def validate_queue_input(data: Any) -> dict[str, Any]:
    """Check a queue definition; raise ValidationFailed naming every bad field."""
    if not isinstance(data, dict):
        raise ValidationFailed("body must be a JSON object", {"body": "must be an object"})
    errors: dict[str, str] = {}
    slug = data.get("slug")
    if not isinstance(slug, str) or not SLUG_RE.match(slug):
        errors["slug"] = "must be 1-64 lowercase letters, digits or dashes"
    name = data.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        errors["name"] = "must be a non-empty string of at most 200 characters"
    labels = _string_list(data.get("labels"), "labels", errors, min_items=2)
    reason_codes = _string_list(data.get("reason_codes", []), "reason_codes", errors, min_items=1)
    instructions = data.get("instructions", "")
    if not isinstance(instructions, str):
        errors["instructions"] = "must be a string"
    recommender = data.get("recommender") or {"kind": "local"}
    kind, model = "local", None
    ai_fields: dict[str, Any] = {}
    if not isinstance(recommender, dict):
        errors["recommender"] = "must be an object"
    else:
        kind = recommender.get("kind", "local")
        model = recommender.get("model")
        if kind not in RECOMMENDER_KINDS:
            errors["recommender.kind"] = f"must be one of {', '.join(RECOMMENDER_KINDS)}"
        if model is not None and (not isinstance(model, str) or len(model) > 100):
            errors["recommender.model"] = "must be a string of at most 100 characters"
        ai_fields = parse_ai_settings(recommender, kind, errors)
    # A name that is not a string is among the errors already; the second test is for the
    # type checker.
    if errors or not isinstance(name, str):
        raise ValidationFailed("invalid queue", errors)
    return {
        "slug": slug,
        "name": name.strip(),
        "labels": labels,
        "reason_codes": reason_codes,
        "instructions": instructions,
        "recommender_kind": kind,
        "recommender_model": model,
        **ai_fields,
    }


def create_queue(session: Session, data: Any, user: User | None) -> Queue:
    """Create a queue and its first policy version (which auto-approves nothing)."""
    fields = validate_queue_input(data)
    if session.scalar(select(Queue.id).where(Queue.slug == fields["slug"])):
        raise Conflict(f"queue {fields['slug']} already exists", {"slug": "already exists"})
    queue = Queue(**fields)
    session.add(queue)
    session.flush()
    session.add(
        PolicyVersion(
            queue_id=queue.id,
            version=1,
            thresholds={},
            default_threshold=INITIAL_DEFAULT_THRESHOLD,
            note="initial policy: every item goes to review",
            created_by_id=user.id if user else None,
            status="active",
            activated_at=utcnow(),
        )
    )
    audit.record(session, "queue.created", user=user, queue_id=queue.id, slug=queue.slug)
    return queue


def get_queue(session: Session, slug: str) -> Queue:
    queue = session.scalar(select(Queue).where(Queue.slug == slug))
    if queue is None:
        raise NotFound(f"no queue {slug!r}")
    return queue


def list_queues(session: Session) -> list[Queue]:
    return list(session.scalars(select(Queue).order_by(Queue.name)))


def current_policy(session: Session, queue: Queue) -> PolicyVersion:
    """The queue's policy in force: its active version.

    With four eyes a newer version may wait for approval, so "highest version" is not
    the one in force; exactly one version is `active` (the highest, should a race leave
    two).
    """
    policy = session.scalar(
        select(PolicyVersion)
        .where(PolicyVersion.queue_id == queue.id, PolicyVersion.status == "active")
        .order_by(PolicyVersion.version.desc())
        .limit(1)
    )
    if policy is None:  # only possible if rows were deleted by hand
        raise NotFound(f"queue {queue.slug!r} has no active policy")
    return policy


def as_threshold_policy(policy: PolicyVersion) -> ThresholdPolicy:
    return ThresholdPolicy(dict(policy.thresholds), policy.default_threshold)


def _parse_audit_rate(data: dict[str, Any], fallback: float) -> float:
    if "audit_rate" not in data:
        return fallback
    try:
        return check_audit_rate(data["audit_rate"])
    except ValueError as exc:
        raise ValidationFailed(f"audit_rate {exc}", {"audit_rate": str(exc)}) from exc


def validate_policy_input(
    session: Session, queue: Queue, data: Any
) -> tuple[ThresholdPolicy, float, dict[str, Any] | None, str]:
    """Check a policy definition: (thresholds, audit rate, recalibration, note).

    `audit_rate` and `recalibration` default to those of the version in force, so a
    client that only sends thresholds does not silently switch audits off.
    """
    if not isinstance(data, dict):
        raise ValidationFailed("body must be a JSON object", {"body": "must be an object"})
    note = data.get("note")
    if not isinstance(note, str) or not note.strip():
        raise ValidationFailed("a note saying why is required", {"note": "is required"})
    if len(note) > 5000:
        raise ValidationFailed("the note is too long", {"note": "at most 5000 characters"})
    if "default_threshold" not in data:
        raise ValidationFailed(
            "default_threshold is required", {"default_threshold": "is required"}
        )
    try:
        policy = build_policy(data.get("thresholds", {}), data["default_threshold"], queue.labels)
    except PolicyError as exc:
        raise ValidationFailed(f"{exc.field} {exc.message}", {exc.field: exc.message}) from exc
    active = current_policy(session, queue)
    audit_rate = _parse_audit_rate(data, active.audit_rate)
    recalibration = data["recalibration"] if "recalibration" in data else active.recalibration
    if recalibration is not None and not _valid_recalibration(recalibration, queue.labels):
        raise ValidationFailed(
            "recalibration must be null or a fitted recalibration",
            {"recalibration": "must be null or one fitted by the policy page"},
        )
    return policy, audit_rate, recalibration, note.strip()


def _valid_recalibration(value: Any, labels: list[str]) -> bool:
    try:
        parsed = recalibration_from_dict(value)
    except (KeyError, TypeError, ValueError, AttributeError):
        return False
    return parsed is not None and set(parsed.by_label) <= set(labels)


def create_policy_version(
    session: Session, queue: Queue, data: Any, user: User, *, rollback_of: int | None = None
) -> PolicyVersion:
    """Validate and store a new, immutable policy version.

    It takes effect at once, unless the queue requires four eyes: then it waits, with
    status `pending_approval`, for a second policy owner (policy_versions.approve).
    """
    policy, audit_rate, recalibration, note = validate_policy_input(session, queue, data)
    # Serialise concurrent policy edits: the unique (queue_id, version) key rejects a race.
    latest = session.scalar(
        select(func.max(PolicyVersion.version)).where(PolicyVersion.queue_id == queue.id)
    )
    version = PolicyVersion(
        queue_id=queue.id,
        version=(latest or 0) + 1,
        thresholds=dict(policy.thresholds),
        default_threshold=policy.default_threshold,
        audit_rate=audit_rate,
        recalibration=recalibration,
        note=note,
        rollback_of=rollback_of,
        status="pending_approval" if queue.require_four_eyes else "active",
        created_by_id=user.id,
    )
    session.add(version)
    session.flush()
    audit.record(
        session,
        "policy.created",
        user=user,
        queue_id=queue.id,
        version=version.version,
        thresholds=version.thresholds,
        default_threshold=version.default_threshold,
        audit_rate=version.audit_rate,
        recalibration=(recalibration or {}).get("method"),
        rollback_of=rollback_of,
        status=version.status,
        note=version.note,
    )
    if version.status == "active":
        activate_version(session, queue, version, user)
    return version


def activate_version(session: Session, queue: Queue, version: PolicyVersion, user: User) -> None:
    """Make `version` the one in force and retire the one it replaces (audited)."""
    previous = session.scalars(
        select(PolicyVersion).where(
            PolicyVersion.queue_id == queue.id,
            PolicyVersion.status == "active",
            PolicyVersion.id != version.id,
        )
    ).all()
    for old in previous:
        old.status = "retired"
    version.status = "active"
    version.activated_at = utcnow()
    session.flush()
    audit.record(
        session,
        "policy.activated",
        user=user,
        queue_id=queue.id,
        version=version.version,
        replaced=[old.version for old in previous],
    )


def policy_as_dict(policy: PolicyVersion) -> dict[str, Any]:
    return {
        "version": policy.version,
        "status": policy.status,
        "thresholds": policy.thresholds,
        "default_threshold": policy.default_threshold,
        "audit_rate": policy.audit_rate,
        "recalibration": policy.recalibration,
        "note": policy.note,
        "rollback_of": policy.rollback_of,
        "created_at": policy.created_at.isoformat(),
        "activated_at": policy.activated_at.isoformat() if policy.activated_at else None,
    }


def queue_as_dict(queue: Queue) -> dict[str, Any]:
    return {
        "slug": queue.slug,
        "name": queue.name,
        "labels": queue.labels,
        # Kept on past decisions, no longer offered or accepted (services.queue_editing).
        "retired_labels": list(queue.retired_labels or []),
        "instructions": queue.instructions,
        "reason_codes": queue.reason_codes,
        "recommender": {
            "kind": queue.recommender_kind,
            "model": queue.recommender_model,
            **ai_settings_as_dict(queue),
        },
        # Payload keys a reviewer sees first, in this order.
        "display_fields": list(queue.display_fields or []),
        "created_at": queue.created_at.isoformat(),
    }
