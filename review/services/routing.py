"""Attaching a recommendation to an item and routing it under the queue's policy."""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from functools import lru_cache

from sqlalchemy.orm import Session

from models import Item, PolicyVersion, Queue, Recommendation, RoutingRecord
from models.base import utcnow
from review.domain.policy import AiAdvice, route
from review.domain.recalibration import Recalibration
from review.domain.recalibration import from_dict as recalibration_from_dict
from review.domain.sampling import SampledRoute, apply_audit
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
    rng: random.Random | None = None,
) -> RoutingRecord:
    """Route a pending item: auto-approve it or queue it for review, and record why.

    `policy` is the queue's current policy if the caller already has it (a batch of items
    then costs one policy query, not one per item). Confidences pass through the policy's
    recalibration before the threshold. Of the items the policy would auto-approve, a
    share equal to its audit rate is sent to review instead (blind), and every routing
    records the item's inclusion probability. `rng` draws the audit sample (tests seed it).
    """
    policy = policy or current_policy(session, queue)
    advice = _advice(policy, recommendation)
    decision = route(as_threshold_policy(policy), advice)
    # Only would-be auto-approvals take part in the audit draw.
    draw = (rng or _AUDIT_RNG).random() if decision.auto_approved else 1.0
    sampled = apply_audit(decision, policy.audit_rate, draw)
    now = utcnow()
    record = RoutingRecord(
        item_id=item.id,
        policy_version_id=policy.id,
        route=sampled.route,
        threshold=decision.threshold,
        confidence=advice.confidence if advice else None,
        reason=_reason(decision.reason, recommendation, advice, sampled, policy.audit_rate),
        inclusion_probability=sampled.inclusion_probability,
        audit=sampled.audit,
    )
    session.add(record)
    item.routed_at = now
    if recommendation is None:
        item.ai_status = ai_status
        item.ai_error = ai_error
    if sampled.route == "auto_approve" and recommendation is not None:
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


# Audit draws need no secrecy, only independence from anything a reviewer can see.
_AUDIT_RNG = random.Random()


def _advice(policy: PolicyVersion, recommendation: Recommendation | None) -> AiAdvice | None:
    """The recommendation as routing sees it: its confidence recalibrated if the policy says so."""
    if recommendation is None:
        return None
    recalibration = parsed_recalibration(policy)
    confidence = recommendation.confidence
    if recalibration is not None and not math.isnan(confidence):
        confidence = recalibration.apply(recommendation.label, confidence)
    return AiAdvice(recommendation.label, confidence)


def parsed_recalibration(policy: PolicyVersion) -> Recalibration | None:
    """The policy's recalibration, parsed once per version (its rules never change)."""
    if policy.recalibration is None:
        return None
    return _parse_cached(policy.id, json.dumps(policy.recalibration, sort_keys=True))


@lru_cache(maxsize=128)
def _parse_cached(_policy_id: int, encoded: str) -> Recalibration | None:
    return recalibration_from_dict(json.loads(encoded))


def _reason(
    reason: str,
    recommendation: Recommendation | None,
    advice: AiAdvice | None,
    sampled: SampledRoute,
    audit_rate: float,
) -> str:
    if recommendation is not None and advice is not None:
        if advice.confidence != recommendation.confidence:
            reason = f"{reason} (recalibrated from {recommendation.confidence:.3f})"
    if sampled.audit:
        reason = f"audit sample at rate {audit_rate:.4g}: {reason}"
    return reason[:200]


def reviewer_facing_reason(record: RoutingRecord) -> str:
    """Why an item is in review, in words that keep audits blind.

    The stored reason says whether the confidence cleared the threshold and whether the
    item is an audit sample; a reviewer who saw that would know which items the policy
    trusts. Screens shown to reviewers use this instead: the same words for every item
    routed to review.
    """
    if record.route == "review":
        return "sent to review by the policy"
    return record.reason
