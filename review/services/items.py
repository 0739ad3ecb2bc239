"""Reading one item, and its public JSON shape (the same for the API and exports of one item)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from models import Item, Recommendation, Review, RoutingRecord
from review.services.errors import NotFound


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def get_item(session: Session, item_id: int) -> Item:
    """The item with this id; raises NotFound if there is none."""
    item = session.get(Item, item_id)
    if item is None:
        raise NotFound(f"no item {item_id}", {"item_id": "no such item"})
    return item


def _recommendation_as_dict(rec: Recommendation | None) -> dict[str, Any] | None:
    if rec is None:
        return None
    return {
        "source": rec.source,
        "model": rec.model,
        "model_version": rec.model_version,
        "label": rec.label,
        "confidence": rec.confidence,
        "rationale": rec.rationale,
        "evidence": list(rec.evidence or []),
        "latency_ms": rec.latency_ms,
        "input_tokens": rec.input_tokens,
        "output_tokens": rec.output_tokens,
        "cache_read_tokens": rec.cache_read_tokens,
        "cost_usd": rec.cost_usd,
    }


def _route_as_dict(record: RoutingRecord | None) -> dict[str, Any] | None:
    if record is None:
        return None
    return {
        "route": record.route,
        "policy_version": record.policy_version.version,
        "threshold": record.threshold,
        "reason": record.reason,
        "inclusion_probability": record.inclusion_probability,
        "audit": record.audit,
        "routed_at": _iso(record.created_at),
    }


def _decision_as_dict(review: Review | None) -> dict[str, Any] | None:
    """A person's decision; auto-approvals have none (the route explains them)."""
    if review is None:
        return None
    return {
        "action": review.action,
        "final_label": review.final_label,
        "by": review.reviewer.email,
        "reason_code": review.reason_code,
        "comment": review.comment,
        "decided_at": _iso(review.decided_at),
    }


def item_as_dict(item: Item) -> dict[str, Any]:
    """The item as the API returns it, with its recommendation, latest route and decision."""
    return {
        "id": item.id,
        "queue": item.queue.slug,
        "external_id": item.external_id,
        "status": item.status,
        "final_label": item.final_label,
        "payload": item.payload,
        "priority": item.priority,
        "created_at": _iso(item.created_at),
        "ai_status": item.ai_status,
        "ai_error": item.ai_error,
        "recommendation": _recommendation_as_dict(item.recommendation),
        # Routings are ordered by id, so the last one is the route in force.
        "route": _route_as_dict(item.routings[-1] if item.routings else None),
        "decision": _decision_as_dict(item.review),
    }
