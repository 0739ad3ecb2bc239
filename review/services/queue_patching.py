"""Partial updates of a queue over the API (`PATCH /api/v1/queues/<slug>`).

The body names only the fields to change; the rest keep their current values, and the
merged definition goes through services.queue_editing like the admin form's does, so the
label rules are the same: a label in use leaves `labels` only by being named in
`retired_labels`, which is the caller's explicit confirmation. Already retired labels stay
retired unless they are put back in `labels`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from models import Queue, User
from review.services import queue_editing, queues
from review.services.errors import ValidationFailed

# The fields a PATCH may carry; `slug` is the queue's identity and never changes.
PATCHABLE = (
    "name",
    "labels",
    "retired_labels",
    "reason_codes",
    "instructions",
    "recommender",
    "display_fields",
    "escalation_queue",
)


def _current_definition(session: Session, queue: Queue) -> dict[str, Any]:
    """The queue as a full definition in the shape create/update accept."""
    snapshot = queue_editing.queue_snapshot(session, queue)
    as_json = queues.queue_as_dict(queue)
    return {
        "slug": queue.slug,
        "name": snapshot["name"],
        "labels": snapshot["labels"],
        "reason_codes": snapshot["reason_codes"],
        "instructions": snapshot["instructions"],
        "recommender": as_json["recommender"],
        "display_fields": snapshot["display_fields"],
        "escalation_queue": snapshot["escalation_queue"],
    }


def _retire_list(value: Any, queue: Queue, labels: Any) -> list[str]:
    """The labels the caller confirms retiring; 422 naming `retired_labels` if unusable."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValidationFailed(
            "retired_labels must be a list of labels",
            {"retired_labels": "must be a list of label names"},
        )
    known = set(queue.all_labels)
    if unknown := [v for v in value if v not in known]:
        raise ValidationFailed(
            "retired_labels names labels the queue never had",
            {"retired_labels": f"not labels of this queue: {', '.join(unknown[:5])}"},
        )
    if isinstance(labels, list) and (both := [v for v in value if v in labels]):
        raise ValidationFailed(
            "a label cannot be active and retired at once",
            {"retired_labels": f"also in labels: {', '.join(both[:5])}"},
        )
    return value


def patch_queue(
    session: Session, queue: Queue, data: Any, user: User | None
) -> queue_editing.QueueChanges:
    """Apply the fields present in `data` to the queue; ValidationFailed names bad fields."""
    if not isinstance(data, dict):
        raise ValidationFailed("body must be a JSON object", {"body": "must be an object"})
    if unknown := sorted(set(data) - set(PATCHABLE) - {"slug"}):
        raise ValidationFailed(
            f"unknown fields: {', '.join(unknown[:5])}",
            {name: "is not a queue field that can be changed" for name in unknown[:20]},
        )
    if "slug" in data and data["slug"] != queue.slug:
        raise ValidationFailed("the slug cannot change", {"slug": "cannot be changed"})
    merged = _current_definition(session, queue)
    if isinstance(data.get("recommender"), dict):
        # A partial recommender keeps the settings it does not name (budget, redaction ...).
        merged["recommender"] = {**merged["recommender"], **data["recommender"]}
    merged.update({k: v for k, v in data.items() if k not in ("recommender", "retired_labels")})
    if "recommender" in data and not isinstance(data["recommender"], dict):
        merged["recommender"] = data["recommender"]
    retire = _retire_list(data.get("retired_labels"), queue, merged["labels"])
    return queue_editing.update_queue(session, queue, merged, user, retire=retire)
