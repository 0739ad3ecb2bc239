"""Creating and editing a queue's whole configuration: the basics that services.queues
checks, plus the settings only admins edit (payload fields shown first, the escalation
queue, members) and label changes that respect past decisions.

A label that items were decided with (or recommended) is never deleted or renamed: taking
it out of the list retires it, and only when the caller says so explicitly. Retired labels
stay on past decisions and in exports but are no longer offered to reviewers or accepted
on new items. Putting a retired label back in the list reinstates it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import Item, Queue, Recommendation, User
from review.services import audit, members, queues
from review.services.errors import ValidationFailed

MAX_DISPLAY_FIELDS = 30


@dataclass
class QueueChanges:
    """What one create or update changed, as {field: (before, after)}."""

    slug: str
    created: bool = False
    fields: dict[str, tuple[Any, Any]] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return self.created or bool(self.fields)


def label_usage(session: Session, queue: Queue) -> Counter[str]:
    """How many items of the queue carry each label, as a final label or a recommendation."""
    usage: Counter[str] = Counter()
    for label, count in session.execute(
        select(Item.final_label, func.count())
        .where(Item.queue_id == queue.id, Item.final_label.is_not(None))
        .group_by(Item.final_label)
    ):
        assert label is not None  # the query leaves out items without a final label
        usage[label] += count
    for label, count in session.execute(
        select(Recommendation.label, func.count())
        .join(Item, Item.id == Recommendation.item_id)
        .where(Item.queue_id == queue.id)
        .group_by(Recommendation.label)
    ):
        usage[label] += count
    return usage


def plan_labels(
    session: Session, queue: Queue, wanted: list[str], retire: Iterable[str]
) -> tuple[list[str], list[str]]:
    """(active, retired) labels after asking for `wanted` to be the active ones.

    A label left out that items use must be named in `retire`, or ValidationFailed
    (field "labels") says which labels need that decision and how many items carry them.
    """
    retire = set(retire)
    usage = label_usage(session, queue)
    retired = [label for label in queue.retired_labels if label not in wanted]
    unconfirmed = []
    for label in queue.labels:
        if label in wanted:
            continue
        if usage[label] and label not in retire:
            unconfirmed.append(f"“{label}” ({usage[label]} items)")
        elif usage[label] or label in retire:
            retired.append(label)
    if unconfirmed:
        raise ValidationFailed(
            "labels in use cannot be removed",
            {
                "labels": f"{', '.join(unconfirmed)} in use: retire "
                f"{'it' if len(unconfirmed) == 1 else 'them'} (kept on past items, no longer "
                "offered) or keep them in the list. A label is never renamed under past decisions."
            },
        )
    return wanted, list(dict.fromkeys(retired))


def _display_fields(value: Any, errors: dict[str, str]) -> list[str]:
    if value in (None, ""):
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        errors["display_fields"] = "must be a list of payload field names"
        return []
    cleaned = list(dict.fromkeys(v.strip() for v in value))
    if len(cleaned) > MAX_DISPLAY_FIELDS or any(len(v) > 100 for v in cleaned):
        errors["display_fields"] = f"at most {MAX_DISPLAY_FIELDS} names of at most 100 characters"
    return cleaned


def _escalation_id(
    session: Session, value: Any, own_slug: str | None, errors: dict[str, str]
) -> int | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str) or value == own_slug:
        errors["escalation_queue"] = "must be another queue"
        return None
    queue_id = session.scalar(select(Queue.id).where(Queue.slug == value))
    if queue_id is None:
        errors["escalation_queue"] = f"there is no queue “{value}”"
    return queue_id


def _member_ids(session: Session, value: Any, errors: dict[str, str]) -> set[int] | None:
    """Members as user ids (from a form) or emails (from a config file); None leaves them."""
    if value is None:
        return None
    if not isinstance(value, list):
        errors["members"] = "must be a list"
        return None
    ids = {v for v in value if isinstance(v, int) and not isinstance(v, bool)}
    emails = {v.strip().lower() for v in value if isinstance(v, str)}
    found = dict(session.execute(select(User.email, User.id).where(User.email.in_(emails))).all())
    if unknown := sorted(emails - set(found)):
        errors["members"] = f"no users {', '.join(unknown)}"
    known = set(session.scalars(select(User.id).where(User.id.in_(ids)))) if ids else set()
    if missing := sorted(ids - known):
        errors["members"] = f"no users with ids {missing}"
    return ids | set(found.values())


@dataclass(frozen=True)
class QueueSettings:
    core: dict[str, Any]
    display_fields: list[str]
    escalation_queue_id: int | None
    member_ids: set[int] | None


def validate_settings(session: Session, data: Any, own_slug: str | None = None) -> QueueSettings:
    """Check a whole queue definition; one ValidationFailed names every bad field."""
    errors: dict[str, str] = {}
    core: dict[str, Any] = {}
    try:
        core = queues.validate_queue_input(data)
    except ValidationFailed as exc:
        errors.update(exc.fields)
    data = data if isinstance(data, dict) else {}
    display = _display_fields(data.get("display_fields"), errors)
    escalation = _escalation_id(session, data.get("escalation_queue"), own_slug, errors)
    member_ids = _member_ids(session, data.get("members"), errors)
    if errors:
        raise ValidationFailed("invalid queue", errors)
    return QueueSettings(core, display, escalation, member_ids)


def create_queue(session: Session, data: Any, user: User | None) -> tuple[Queue, QueueChanges]:
    """Create a queue with its settings and members; its first policy reviews everything."""
    settings = validate_settings(session, data)
    queue = queues.create_queue(session, data, user)
    queue.display_fields = settings.display_fields
    queue.escalation_queue_id = settings.escalation_queue_id
    if settings.member_ids:
        members.set_members(session, queue, settings.member_ids, user)
    session.flush()
    changes = QueueChanges(
        queue.slug, created=True, fields=_snapshot_diff({}, _snapshot(session, queue))
    )
    audit.record(
        session,
        "queue.configured",
        user=user,
        queue_id=queue.id,
        settings={name: new for name, (_old, new) in changes.fields.items()},
    )
    return queue, changes


def update_queue(
    session: Session,
    queue: Queue,
    data: Any,
    user: User | None,
    retire: Iterable[str] = (),
) -> QueueChanges:
    """Apply a full queue definition to an existing queue (its slug never changes).

    Labels left out must be confirmed in `retire` when items use them (see plan_labels).
    Returns what changed; records one audit event when anything did.
    """
    data = {**data, "slug": queue.slug} if isinstance(data, dict) else data
    settings = validate_settings(session, data, own_slug=queue.slug)
    active, retired = plan_labels(session, queue, settings.core["labels"], retire)
    before = _snapshot(session, queue)
    for name in ("name", "reason_codes", "instructions", "recommender_kind", "recommender_model"):
        if getattr(queue, name) != settings.core[name]:
            setattr(queue, name, settings.core[name])
    if queue.labels != active:
        queue.labels = active
    if queue.retired_labels != retired:
        queue.retired_labels = retired
    if queue.display_fields != settings.display_fields:
        queue.display_fields = settings.display_fields
    if queue.escalation_queue_id != settings.escalation_queue_id:
        queue.escalation_queue_id = settings.escalation_queue_id
    if settings.member_ids is not None:
        members.set_members(session, queue, settings.member_ids, user)
    session.flush()
    changes = QueueChanges(queue.slug, fields=_snapshot_diff(before, _snapshot(session, queue)))
    if changes.fields:
        audit.record(
            session,
            "queue.updated",
            user=user,
            queue_id=queue.id,
            changes={name: [old, new] for name, (old, new) in changes.fields.items()},
        )
    return changes


def _snapshot(session: Session, queue: Queue) -> dict[str, Any]:
    """The queue's editable configuration, as plain values, for diffs and exports."""
    escalation = (
        session.scalar(select(Queue.slug).where(Queue.id == queue.escalation_queue_id))
        if queue.escalation_queue_id
        else None
    )
    emails = sorted(
        session.scalars(select(User.email).where(User.id.in_(members.member_ids(session, queue))))
    )
    return {
        "name": queue.name,
        "labels": list(queue.labels),
        "retired_labels": list(queue.retired_labels or []),
        "reason_codes": list(queue.reason_codes),
        "instructions": queue.instructions,
        "recommender_kind": queue.recommender_kind,
        "recommender_model": queue.recommender_model,
        "display_fields": list(queue.display_fields or []),
        "escalation_queue": escalation,
        "members": emails,
    }


def queue_snapshot(session: Session, queue: Queue) -> dict[str, Any]:
    return _snapshot(session, queue)


def _snapshot_diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    empty: tuple[object, ...] = (None, "", [])
    return {
        name: (before.get(name), value)
        for name, value in after.items()
        if before.get(name) != value and not (name not in before and value in empty)
    }
