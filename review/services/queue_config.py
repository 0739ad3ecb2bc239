"""Queues as code: a TOML file, kept in version control, that describes queues.

    [[queue]]
    slug = "refund-requests"
    name = "Refund requests"
    labels = ["approve_refund", "deny_refund", "escalate"]
    retired_labels = []
    reason_codes = ["wrong_label", "missing_context"]
    instructions = \"\"\"Approve refunds within policy.\"\"\"
    display_fields = ["amount", "reason"]
    escalation_queue = "senior-refunds"
    members = ["lee@example.com"]

    [queue.recommender]
    kind = "local"

`apply_config` creates the queues that do not exist and updates those that do, so applying
the same file twice changes nothing the second time. Each [[queue]] is the whole definition
of that queue (a key left out is reset to its default), except `members`: without the key
the members are left as they are. Queues missing from the file are left
alone (deleting a queue with history is not a config change). Labels follow
services.queue_editing: a label in use leaves `labels` only by moving to `retired_labels`.
Thresholds are not here: policy versions belong to policy owners.
"""

from __future__ import annotations

import json
import tomllib
from typing import Any

from sqlalchemy.orm import Session

from models import Queue, User
from review.services import queue_editing, queues
from review.services.errors import NotFound, ValidationFailed
from review.services.queue_editing import QueueChanges

KEYS = {
    "slug",
    "name",
    "labels",
    "retired_labels",
    "reason_codes",
    "instructions",
    "recommender",
    "display_fields",
    "escalation_queue",
    "members",
}


def parse_config(text: str) -> list[dict[str, Any]]:
    """The [[queue]] tables of a TOML document; ValidationFailed says what is wrong where."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValidationFailed(f"not valid TOML: {exc}", {"file": str(exc)}) from exc
    entries = document.get("queue", [])
    if set(document) - {"queue"} or not isinstance(entries, list):
        raise ValidationFailed(
            "the file must hold [[queue]] tables only", {"file": "expected [[queue]] tables"}
        )
    errors: dict[str, str] = {}
    slugs: list[str] = []
    for index, entry in enumerate(entries):
        where = f"queue[{index}]"
        if unknown := sorted(set(entry) - KEYS):
            errors[where] = f"unknown keys {', '.join(unknown)}"
        slug = entry.get("slug")
        if slug in slugs:
            errors[f"{where}.slug"] = f"“{slug}” appears twice"
        slugs.append(slug)
    if errors:
        raise ValidationFailed("invalid queue file", errors)
    return entries


def _prefixed(exc: ValidationFailed, entry: dict[str, Any]) -> ValidationFailed:
    where = f"queue {entry.get('slug')!r}"
    return ValidationFailed(
        f"{where}: {exc.message}", {f"{where}.{name}": msg for name, msg in exc.fields.items()}
    )


def apply_config(
    session: Session, entries: list[dict[str, Any]], user: User | None
) -> list[QueueChanges]:
    """Create or update every queue in the file; return what changed, queue by queue.

    Queues are created first and escalation targets set afterwards, so a queue may name an
    escalation queue defined further down the same file. Raises ValidationFailed (the
    caller rolls back, so nothing is applied) naming the queue and field at fault.
    """
    results: list[QueueChanges] = []
    deferred: list[tuple[Queue, dict[str, Any]]] = []
    for entry in entries:
        # Escalation waits for the second pass; everything else is applied now.
        first = {**entry, "escalation_queue": None}
        try:
            queue = _existing(session, entry.get("slug"))
            if queue is None:
                queue, changes = queue_editing.create_queue(session, first, user)
            else:
                first["escalation_queue"] = _current_escalation(session, queue)
                changes = queue_editing.update_queue(
                    session, queue, first, user, retire=entry.get("retired_labels") or []
                )
        except ValidationFailed as exc:
            raise _prefixed(exc, entry) from exc
        results.append(changes)
        deferred.append((queue, entry))
    session.flush()
    for (queue, entry), changes in zip(deferred, results, strict=True):
        try:
            late = queue_editing.update_queue(
                session, queue, entry, user, retire=entry.get("retired_labels") or []
            )
        except ValidationFailed as exc:
            raise _prefixed(exc, entry) from exc
        for name, (old, new) in late.fields.items():
            earlier = changes.fields.get(name, (old, new))[0]
            changes.fields[name] = (earlier, new)
    return results


def _existing(session: Session, slug: Any) -> Queue | None:
    if not isinstance(slug, str):
        return None
    try:
        return queues.get_queue(session, slug)
    except NotFound:
        return None


def _current_escalation(session: Session, queue: Queue) -> str | None:
    slug: str | None = queue_editing.queue_snapshot(session, queue)["escalation_queue"]
    return slug


def describe_changes(results: list[QueueChanges]) -> list[str]:
    """The applied diff as lines for a terminal: + created, ~ changed, = unchanged."""
    lines: list[str] = []
    for result in results:
        if result.created:
            lines.append(f"+ {result.slug} (created)")
        elif result.fields:
            lines.append(f"~ {result.slug}")
        else:
            lines.append(f"= {result.slug} (unchanged)")
        for name, (old, new) in result.fields.items():
            lines.append(f"    {name}: {_change_text(old, new, result.created)}")
    return lines


def _change_text(old: Any, new: Any, created: bool) -> str:
    if isinstance(new, list) and isinstance(old, list | None):
        before = old or []
        added = [v for v in new if v not in before]
        removed = [v for v in before if v not in new]
        if created:
            return ", ".join(map(str, new)) or "(none)"
        parts = [f"+ {v}" for v in added] + [f"- {v}" for v in removed]
        return ", ".join(parts) or f"reordered: {', '.join(map(str, new))}"
    if created:
        return _short(new)
    return f"{_short(old)} -> {_short(new)}"


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 70 else text[:67] + '..."'


# --- export --------------------------------------------------------------------------------


def _toml_string(value: str) -> str:
    if "\n" in value:
        # A multi-line literal keeps instructions readable in the file, when it can.
        if "'''" not in value and all(c == "\n" or c == "\t" or ord(c) >= 32 for c in value):
            return "'''\n" + value + "'''"
    # JSON's string escapes are a subset of TOML's basic-string escapes; TOML also wants
    # DEL escaped, which JSON leaves alone.
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


def _toml_value(value: Any) -> str:
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def export_config(session: Session) -> str:
    """Every queue's configuration as a TOML file that apply_config reads back unchanged."""
    blocks = []
    # Sorted by slug so the file diffs cleanly in version control.
    for queue in sorted(queues.list_queues(session), key=lambda q: q.slug):
        snap = queue_editing.queue_snapshot(session, queue)
        lines = ["[[queue]]", f"slug = {_toml_string(queue.slug)}"]
        for key in (
            "name",
            "labels",
            "retired_labels",
            "reason_codes",
            "instructions",
            "display_fields",
            "escalation_queue",
            "members",
        ):
            if snap[key] is not None:
                lines.append(f"{key} = {_toml_value(snap[key])}")
        lines += ["", "[queue.recommender]", f"kind = {_toml_string(snap['recommender_kind'])}"]
        if snap["recommender_model"]:
            lines.append(f"model = {_toml_string(snap['recommender_model'])}")
        blocks.append("\n".join(lines))
    header = "# Queues as code: `flask queues apply FILE` creates or updates these queues.\n"
    return header + "\n\n".join(blocks) + ("\n" if blocks else "")
