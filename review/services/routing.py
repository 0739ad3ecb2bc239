"""Attaching a recommendation to an item and routing it under the queue's policy."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any, Protocol

from sqlalchemy import ScalarSelect, bindparam, insert, select, update
from sqlalchemy.orm import Session

from models import Item, PolicyVersion, Queue, Recommendation, RoutingRecord
from models.base import utcnow
from review.domain.policy import AiAdvice, route
from review.domain.recalibration import Recalibration
from review.domain.recalibration import from_dict as recalibration_from_dict
from review.domain.sampling import SampledRoute, apply_audit
from review.services import audit, webhook_outbox
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
    # Quotes from the item that support the label (highlighted on the review screen).
    evidence: tuple[str, ...] = ()


def recommendation_values(rec: RecommendationInput) -> dict[str, Any]:
    """The columns of a stored recommendation (all but item_id), for the ORM and bulk paths."""
    return {
        "source": rec.source,
        "model": rec.model,
        "model_version": rec.model_version,
        "label": rec.label,
        "confidence": rec.confidence,
        "rationale": rec.rationale,
        "latency_ms": rec.latency_ms,
        "input_tokens": rec.input_tokens,
        "output_tokens": rec.output_tokens,
        "cache_read_tokens": rec.cache_read_tokens,
        "cost_usd": rec.cost_usd,
    }


def attach_recommendation(session: Session, item: Item, rec: RecommendationInput) -> Recommendation:
    """Store the recommendation for the item, and its label and confidence on the item too.

    Every recommendation is attached here: the item's copies (Item.ai_label, ai_confidence),
    which the queue page filters and sorts on, are written in the same change.
    """
    recommendation = Recommendation(item_id=item.id, **recommendation_values(rec))
    if rec.evidence:  # left NULL otherwise, as for every recommender that gives none
        recommendation.evidence = list(rec.evidence)
    session.add(recommendation)
    item.recommendation = recommendation
    item.ai_status = "ok"
    item.ai_label = rec.label
    item.ai_confidence = rec.confidence
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
    plan: RoutePlan | None = None,
) -> RoutingRecord:
    """Route a pending item: auto-approve it or queue it for review, and record why.

    `policy` is the queue's current policy if the caller already has it (a batch of items
    then costs one policy query, not one per item). Confidences pass through the policy's
    recalibration before the threshold. Of the items the policy would auto-approve, a
    share equal to its audit rate is sent to review instead (blind), and every routing
    records the item's inclusion probability. `rng` draws the audit sample (tests seed it).
    `plan` is the item's plan_route under this policy if the caller already drew it.
    """
    policy = policy or current_policy(session, queue)
    plan = plan or plan_route(policy, recommendation, rng)
    now = utcnow()
    record = RoutingRecord(item_id=item.id, **plan.record_values(policy))
    session.add(record)
    item.routed_at = now
    if recommendation is None:
        item.ai_status = ai_status
        item.ai_error = ai_error
    if plan.route == "auto_approve" and recommendation is not None:
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
            threshold=plan.threshold,
            policy_version=policy.version,
        )
        # Final at once: the outbox event commits with the approval or not at all.
        webhook_outbox.record_auto_approval(session, item, queue, recommendation, policy)
    else:
        item.status = "needs_review"
    return record


# Audit draws need no secrecy, only independence from anything a reviewer can see.
_AUDIT_RNG = random.Random()


class _Advised(Protocol):
    """What routing reads of a recommendation, stored (Recommendation) or not yet."""

    # Read-only, so that a frozen RecommendationInput fits too.
    @property
    def label(self) -> str: ...

    @property
    def confidence(self) -> float: ...


@dataclass(frozen=True)
class RoutePlan:
    """Where the policy sends one item and why: the routing record to write."""

    route: str  # auto_approve | review
    threshold: float | None
    confidence: float | None
    reason: str
    inclusion_probability: float
    audit: bool

    def record_values(self, policy: PolicyVersion) -> dict[str, Any]:
        """The RoutingRecord columns (all but item_id) under `policy`."""
        return {"policy_version_id": policy.id, **asdict(self)}


def plan_route(
    policy: PolicyVersion, recommendation: _Advised | None, rng: random.Random | None = None
) -> RoutePlan:
    """The policy's route for an item with this recommendation (or none), the audit sample
    drawn. The one place routing is decided: route_item and route_for_review_in_bulk
    write what it says."""
    advice = _advice(policy, recommendation)
    decision = route(as_threshold_policy(policy), advice)
    # Only would-be auto-approvals take part in the audit draw.
    draw = (rng or _AUDIT_RNG).random() if decision.auto_approved else 1.0
    sampled = apply_audit(decision, policy.audit_rate, draw)
    return RoutePlan(
        route=sampled.route,
        threshold=decision.threshold,
        confidence=advice.confidence if advice else None,
        reason=_reason(decision.reason, recommendation, advice, sampled, policy.audit_rate),
        inclusion_probability=sampled.inclusion_probability,
        audit=sampled.audit,
    )


@dataclass(frozen=True)
class ReviewRoute:
    """A pending item (by id), the recommendation it brings (None: ai_status "none"), and
    a plan that sends it to review."""

    item_id: int
    recommendation: RecommendationInput | None
    plan: RoutePlan


def route_for_review_in_bulk(
    session: Session, policy: PolicyVersion, routes: Sequence[ReviewRoute]
) -> None:
    """What attach_recommendation and route_item write for items sent to review, for many
    pending items in three executemany statements instead of an ORM flush of every object
    (bulk imports). Auto-approvals, which also write audit and outbox events, go through
    route_item. The items must not be loaded in the session (their columns change here)."""
    if any(r.plan.route != "review" for r in routes):
        raise ValueError("route_for_review_in_bulk only sends items to review")
    if not routes:
        return
    now = utcnow()
    advised = [r for r in routes if r.recommendation is not None]
    # Those with evidence quotes in a statement of their own: one executemany needs the
    # same columns in every row, and the others' evidence stays NULL (not JSON null).
    for with_evidence in (False, True):
        rows = [
            {"item_id": r.item_id, **recommendation_values(r.recommendation)}
            | ({"evidence": list(r.recommendation.evidence)} if with_evidence else {})
            for r in advised
            if r.recommendation is not None and bool(r.recommendation.evidence) == with_evidence
        ]
        if rows:
            session.execute(insert(Recommendation.__table__), rows)
    session.execute(
        insert(RoutingRecord.__table__),
        [{"item_id": r.item_id, "created_at": now, **r.plan.record_values(policy)} for r in routes],
    )
    items = Item.__table__
    session.execute(
        update(items)
        .where(items.c.id == bindparam("routed_item_id"))
        .values(
            status="needs_review",
            routed_at=now,
            updated_at=now,
            ai_status=bindparam("routed_ai_status"),
            ai_error=None,
            ai_label=bindparam("routed_ai_label"),
            ai_confidence=bindparam("routed_ai_confidence"),
        ),
        [
            {
                "routed_item_id": r.item_id,
                "routed_ai_status": "ok" if r.recommendation else "none",
                "routed_ai_label": r.recommendation.label if r.recommendation else None,
                "routed_ai_confidence": r.recommendation.confidence if r.recommendation else None,
            }
            for r in routes
        ],
    )


def _advice(policy: PolicyVersion, recommendation: _Advised | None) -> AiAdvice | None:
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
    recommendation: _Advised | None,
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


def latest_policy_version() -> ScalarSelect[int]:
    """SQL, correlated to the enclosing query's Item: the version of the policy behind the
    item's latest routing record (the route in force). For exports and the decisions feed,
    which read it for many items in one query."""
    return (
        select(PolicyVersion.version)
        .join(RoutingRecord, RoutingRecord.policy_version_id == PolicyVersion.id)
        .where(RoutingRecord.item_id == Item.id)
        .order_by(RoutingRecord.id.desc())
        .limit(1)
        .correlate(Item)
        .scalar_subquery()
    )
