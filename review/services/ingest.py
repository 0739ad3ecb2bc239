"""Accepting items over the API: validation, idempotency on external_id, immediate routing
of items that bring their own recommendation."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Item, Queue, User
from review.services import audit
from review.services.errors import Conflict, ValidationFailed
from review.services.routing import RecommendationInput, attach_recommendation, route_item

MAX_BATCH = 1000
MAX_PAYLOAD_BYTES = 256 * 1024
# A recommendation's evidence: a few short quotes, not a second copy of the payload.
MAX_EVIDENCE_QUOTES = 10
MAX_EVIDENCE_CHARS = 1000


@dataclass(frozen=True)
class ItemInput:
    external_id: str
    payload: dict[str, Any]
    payload_sha256: str
    priority: int
    recommendation: RecommendationInput | None


@dataclass(frozen=True)
class IngestResult:
    item: Item
    created: bool


def canonical_sha256(payload: dict[str, Any]) -> str:
    """A hash that is the same for equal payloads whatever their key order."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _parse_recommendation(
    raw: Any, labels: list[str], at: str, errors: dict[str, str]
) -> RecommendationInput | None:
    if not isinstance(raw, dict):
        errors[at] = "must be an object"
        return None
    label, confidence, model = raw.get("label"), raw.get("confidence"), raw.get("model")
    rationale, model_version = raw.get("rationale", ""), raw.get("model_version")
    if not isinstance(label, str) or label not in labels:
        errors[f"{at}.label"] = f"must be one of the queue's labels: {', '.join(labels)}"
    if (
        isinstance(confidence, bool)
        or not isinstance(confidence, int | float)
        or math.isnan(confidence)
        or not 0 <= confidence <= 1
    ):
        errors[f"{at}.confidence"] = "must be a number between 0 and 1"
    if not isinstance(model, str) or not model.strip() or len(model) > 100:
        errors[f"{at}.model"] = "must be a non-empty string of at most 100 characters"
    if not isinstance(rationale, str):
        errors[f"{at}.rationale"] = "must be a string"
    # The column holds 100 characters; PostgreSQL would reject more with a 500.
    if model_version is not None and (
        not isinstance(model_version, str) or len(model_version) > 100
    ):
        errors[f"{at}.model_version"] = "must be a string of at most 100 characters"
    evidence = _parse_evidence(raw.get("evidence"), f"{at}.evidence", errors)
    if (
        any(key.startswith(at) for key in errors)
        # Implied by the tests above (a failure is in `errors`); said again for the type checker.
        or not isinstance(label, str)
        or not isinstance(model, str)
        or not isinstance(confidence, int | float)
    ):
        return None
    return RecommendationInput(
        source="external",
        model=model.strip(),
        label=label,
        confidence=float(confidence),
        rationale=rationale,
        model_version=model_version,
        evidence=evidence,
    )


def _parse_evidence(raw: Any, at: str, errors: dict[str, str]) -> tuple[str, ...]:
    """Quotes from the item that support the label (the review screen highlights them)."""
    if raw is None:
        return ()
    if (
        not isinstance(raw, list)
        or len(raw) > MAX_EVIDENCE_QUOTES
        or not all(isinstance(q, str) and q.strip() and len(q) <= MAX_EVIDENCE_CHARS for q in raw)
    ):
        errors[at] = (
            f"must be a list of at most {MAX_EVIDENCE_QUOTES} quotes from the item, each a "
            f"non-empty string of at most {MAX_EVIDENCE_CHARS} characters"
        )
        return ()
    return tuple(raw)


def _parse_item(raw: Any, labels: list[str], at: str, errors: dict[str, str]) -> ItemInput | None:
    prefix = f"{at}." if at else ""
    if not isinstance(raw, dict):
        errors[at or "body"] = "must be an object"
        return None
    external_id = raw.get("external_id")
    if not isinstance(external_id, str) or not external_id.strip() or len(external_id) > 200:
        errors[f"{prefix}external_id"] = "must be a non-empty string of at most 200 characters"
    payload = raw.get("payload")
    sha = ""
    if not isinstance(payload, dict):
        errors[f"{prefix}payload"] = "must be an object"
    else:
        encoded = json.dumps(payload, ensure_ascii=False)
        if len(encoded.encode()) > MAX_PAYLOAD_BYTES:
            errors[f"{prefix}payload"] = f"must be at most {MAX_PAYLOAD_BYTES} bytes of JSON"
        sha = canonical_sha256(payload)
    priority = raw.get("priority", 0)
    if isinstance(priority, bool) or not isinstance(priority, int) or abs(priority) > 1_000_000:
        errors[f"{prefix}priority"] = "must be an integer between -1000000 and 1000000"
    recommendation = None
    if raw.get("recommendation") is not None:
        recommendation = _parse_recommendation(
            raw["recommendation"], labels, f"{prefix}recommendation", errors
        )
    failed = any(key.startswith(prefix) for key in errors) if prefix else bool(errors)
    # The type tests are implied by `failed`; they are said again for the type checker.
    if failed or not isinstance(external_id, str) or not isinstance(payload, dict):
        return None
    return ItemInput(external_id.strip(), payload, sha, priority, recommendation)


def parse_ingest_body(body: Any, queue: Queue) -> tuple[list[ItemInput], bool]:
    """Validate a request body: one item, or {"items": [...]}. Returns (items, was_batch)."""
    errors: dict[str, str] = {}
    if isinstance(body, dict) and "items" in body:
        raw_items = body["items"]
        if not isinstance(raw_items, list) or not raw_items:
            raise ValidationFailed(
                "items must be a non-empty list", {"items": "must be a non-empty list"}
            )
        if len(raw_items) > MAX_BATCH:
            raise ValidationFailed(
                f"at most {MAX_BATCH} items per request", {"items": f"at most {MAX_BATCH} items"}
            )
        parsed = [
            _parse_item(raw, queue.labels, f"items[{i}]", errors) for i, raw in enumerate(raw_items)
        ]
        batch = True
    else:
        parsed = [_parse_item(body, queue.labels, "", errors)]
        batch = False
    if errors:
        raise ValidationFailed("invalid items", errors)
    items = [p for p in parsed if p is not None]
    seen: dict[str, str] = {}
    for index, item in enumerate(items):
        if seen.get(item.external_id, item.payload_sha256) != item.payload_sha256:
            raise ValidationFailed(
                "the same external_id appears twice with different payloads",
                {f"items[{index}].external_id": "repeated with a different payload"},
            )
        seen[item.external_id] = item.payload_sha256
    return items, batch


def ingest(
    session: Session, queue: Queue, items: list[ItemInput], user: User | None = None
) -> list[IngestResult]:
    """Store new items; return existing ones unchanged when the payload matches.

    Raises Conflict, writing nothing, when an external_id exists with a different payload.
    Items that bring a recommendation are routed at once; the rest stay `pending` for the
    worker (or are routed to review at once when the queue has no recommender). With a
    `user` (an API ingest), the new items are audited as theirs; imports audit their own.
    """
    ids = list({item.external_id for item in items})
    existing = {
        row.external_id: row
        for chunk_start in range(0, len(ids), 500)
        for row in session.scalars(
            select(Item).where(
                Item.queue_id == queue.id,
                Item.external_id.in_(ids[chunk_start : chunk_start + 500]),
            )
        )
    }
    conflicts = {
        f"external_id:{item.external_id}": "exists with a different payload"
        for item in items
        if item.external_id in existing
        and existing[item.external_id].payload_sha256 != item.payload_sha256
    }
    if conflicts:
        raise Conflict("an external_id already exists with a different payload", conflicts)
    results: list[IngestResult] = []
    created: dict[str, Item] = {}
    for item_input in items:
        if item_input.external_id in existing:
            results.append(IngestResult(existing[item_input.external_id], False))
            continue
        if item_input.external_id in created:  # repeated within the batch, same payload
            results.append(IngestResult(created[item_input.external_id], False))
            continue
        item = Item(
            queue_id=queue.id,
            external_id=item_input.external_id,
            payload=item_input.payload,
            payload_sha256=item_input.payload_sha256,
            priority=item_input.priority,
            status="pending",
        )
        session.add(item)
        created[item_input.external_id] = item
        results.append(IngestResult(item, True))
    session.flush()
    for item_input in items:
        new_item = created.get(item_input.external_id)
        if new_item is None or new_item.status != "pending":
            continue
        if item_input.recommendation is not None:
            rec = attach_recommendation(session, new_item, item_input.recommendation)
            route_item(session, new_item, queue, rec)
        elif queue.recommender_kind == "none":
            route_item(session, new_item, queue, None, ai_status="none")
    if user is not None and created:
        audit.record(
            session,
            "items.ingested",
            user=user,
            queue_id=queue.id,
            count=len(created),
            item_ids=[item.id for item in created.values()],
        )
    return results
