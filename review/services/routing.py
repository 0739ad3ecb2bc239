"""Attaching a recommendation to an item and routing it under the queue's policy."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from models import Item, PolicyVersion, Queue, Recommendation, RoutingRecord
from models.base import utcnow
from review.domain.policy import AiAdvice, route
from review.services import audit
from review.services.queues import as_threshold_policy, current_policy


@dataclass(frozen=True)
class RecommendationInput:
    """What a recommender produced, before it is stored."""

    source: str
    model: str
    label: str
    confidence: float
    rationale: str = ""
    model_version: str | None = None
    latency_ms: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    cost_usd: float | None = None


def attach_recommendation(session: Session, item: Item, rec: RecommendationInput) -> Recommendation:
    recommendation = Recommendation(
        item_id=item.id,
        source=rec.source,
        model=rec.model,
        model_version=rec.model_version,
        label=rec.label,
        confidence=rec.confidence,
        rationale=rec.rationale,
        latency_ms=rec.latency_ms,
        input_tokens=rec.input_tokens,
        output_tokens=rec.output_tokens,
        cache_read_tokens=rec.cache_read_tokens,
        cost_usd=rec.cost_usd,
    )
    session.add(recommendation)
    item.recommendation = recommendation
    item.ai_status = "ok"
    return recommendation


def route_item(
    session: Session,
    item: Item,
    queue: Queue,
    recommendation: Recommendation | None,
    ai_status: str = "ok",
    ai_error: str | None = None,
    policy: PolicyVersion | None = None,
) -> RoutingRecord:
    """Route a pending item: auto-approve it or queue it for review, and record why.

    `policy` is the queue's current policy if the caller already has it (a batch of items
    then costs one policy query, not one per item).
    """
    policy = policy or current_policy(session, queue)
    advice = AiAdvice(recommendation.label, recommendation.confidence) if recommendation else None
    decision = route(as_threshold_policy(policy), advice)
    now = utcnow()
    record = RoutingRecord(
        item_id=item.id,
        policy_version_id=policy.id,
        route=decision.route,
        threshold=decision.threshold,
        confidence=advice.confidence if advice else None,
        reason=decision.reason,
    )
    session.add(record)
    item.routed_at = now
    if recommendation is None:
        item.ai_status = ai_status
        item.ai_error = ai_error
    if decision.auto_approved and recommendation is not None:
        item.status = "auto_approved"
        item.final_label = recommendation.label
        item.decided_at = now
        audit.record(
            session,
            "item.auto_approved",
            queue_id=queue.id,
            item_id=item.id,
            label=recommendation.label,
            confidence=recommendation.confidence,
            threshold=decision.threshold,
            policy_version=policy.version,
        )
    else:
        item.status = "needs_review"
    return record
