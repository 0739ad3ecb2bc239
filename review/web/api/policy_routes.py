"""The API for policy owners: what-if estimates, policy versions, four eyes, rollback.

Policy owners reach only the queues they are members of; admins reach every queue.
"""

from __future__ import annotations

import math
from typing import Any

from flask import request
from sqlalchemy.orm import Session

from models import Queue
from review.db import db_session
from review.services import members, policy_stats, policy_versions, queues
from review.services.errors import Forbidden, NotFound, ServiceError, ValidationFailed
from review.web.api import bp
from review.web.api.auth import current_api_user, token_required
from review.web.api.parsing import json_body, path_id
from review.web.converters import MAX_ROW_ID


def _owned_queue(session: Session, slug: str) -> Queue:
    """The queue in the URL, if the caller may tune its policy (404 / 403 otherwise)."""
    if not queues.SLUG_RE.match(slug):
        raise NotFound(f"no queue {slug[:64]!r}", {"slug": "no such queue"})
    queue = queues.get_queue(session, slug)
    if not members.is_member(session, queue, current_api_user()):
        raise Forbidden(f"you are not a member of queue {slug}", {"slug": "not your queue"})
    return queue


def _unit_number(name: str, *, open_low: bool = False) -> float:
    """A query parameter that must be a number in [0, 1] ((0, 1] with `open_low`)."""
    raw = request.args.get(name, "")
    try:
        value = float(raw)
    except ValueError:
        raise ValidationFailed(
            f"{name} must be a number", {name: "must be a number between 0 and 1"}
        ) from None
    if not math.isfinite(value) or not (0 < value if open_low else 0 <= value) or value > 1:
        bounds = "above 0 and at most 1" if open_low else "between 0 and 1"
        raise ValidationFailed(f"{name} must be {bounds}", {name: f"must be {bounds}"})
    return value


def _estimate_fields(what: policy_stats.LabelWhatIf) -> dict[str, Any]:
    result = what.result
    return {
        "automation_rate": result.automation_rate,
        "precision": result.precision,
        "ci_low": result.ci_low if result.precision is not None else None,
        "ci_high": result.ci_high if result.precision is not None else None,
        "n_labeled": result.n_labeled,
        "expected_errors_per_day": result.expected_errors_per_day,
    }


@bp.get("/queues/<slug>/whatif")
@token_required("policy_owner", scope="read")
def what_if(slug: str) -> dict[str, Any]:
    """What a threshold for one label buys and costs, or the threshold a target needs.

    `?label=L&threshold=t`: automation rate, selection-corrected precision with its 95%
    interval, labeled items behind it and expected wrong auto-approvals per day.
    `?label=L&target_precision=p`: the lowest threshold whose interval's lower bound meets
    p, or null with the reason.
    """
    session = db_session()
    queue = _owned_queue(session, slug)
    label = request.args.get("label")
    if not label:
        raise ServiceError("label is required", {"label": "is required"})
    if label not in queue.labels:
        raise ValidationFailed(
            f"unknown label {label[:100]!r}", {"label": f"must be one of {', '.join(queue.labels)}"}
        )
    has_threshold, has_target = "threshold" in request.args, "target_precision" in request.args
    if has_threshold == has_target:
        message = "give exactly one of threshold and target_precision"
        raise ServiceError(message, {"threshold": message, "target_precision": message})
    policy = queues.current_policy(session, queue)
    recalibration = policy_stats.recalibration_of(policy)
    evidence = policy_stats.queue_evidence(session, queue)
    if has_threshold:
        threshold = _unit_number("threshold")
        what = policy_stats.label_what_if(evidence, label, threshold, recalibration)
        return {"label": label, "threshold": threshold, **_estimate_fields(what)}
    target = _unit_number("target_precision", open_low=True)
    proposal = policy_stats.propose_for_label(evidence, label, target, recalibration)
    body: dict[str, Any] = {
        "label": label,
        "target_precision": target,
        "threshold": proposal.threshold,
        "reason": proposal.reason,
    }
    if proposal.what_if is not None:
        body.update(_estimate_fields(proposal.what_if))
    return body


# --- versions ---------------------------------------------------------------------------


@bp.get("/queues/<slug>/policy/versions")
@token_required("policy_owner", scope="read")
def list_policy_versions(slug: str) -> dict[str, Any]:
    session = db_session()
    queue = _owned_queue(session, slug)
    return {
        "versions": [queues.policy_as_dict(v) for v in policy_versions.versions(session, queue)]
    }


@bp.get("/queues/<slug>/policy/diff")
@token_required("policy_owner", scope="read")
def diff_policy_versions(slug: str) -> dict[str, Any]:
    """`?from=<n>&to=<m>`: every change in effect between two versions."""
    session = db_session()
    queue = _owned_queue(session, slug)
    numbers = {}
    for name in ("from", "to"):
        raw = request.args.get(name, "")
        if not raw.isdigit() or len(raw) > 9:
            raise ServiceError(
                f"{name} must be a version number", {name: "must be a version number"}
            )
        numbers[name] = int(raw)
    old = policy_versions.get_version(session, queue, numbers["from"])
    new = policy_versions.get_version(session, queue, numbers["to"])
    return {
        "from": old.version,
        "to": new.version,
        "changes": [
            {"field": c.field, "before": c.before, "after": c.after}
            for c in policy_versions.diff(queue, old, new)
        ],
    }


def _reroute_flag(body: dict[str, Any]) -> bool:
    flag = body.get("reroute_pending", False)
    if not isinstance(flag, bool):
        raise ValidationFailed(
            "reroute_pending must be true or false", {"reroute_pending": "must be true or false"}
        )
    return flag


def _object_body() -> dict[str, Any]:
    body = json_body() if request.get_data(cache=True) else {}
    if not isinstance(body, dict):
        raise ValidationFailed("body must be a JSON object", {"body": "must be an object"})
    return body


@bp.post("/queues/<slug>/policy/versions/<number>/approve")
@token_required("policy_owner", scope="decide")
def approve_policy_version(slug: str, number: str) -> dict[str, Any]:
    """Four eyes: a second policy owner approves a pending version; it takes effect."""
    session = db_session()
    queue = _owned_queue(session, slug)
    body = _object_body()
    result = policy_versions.approve(
        session,
        queue,
        path_id(number, "version"),
        current_api_user(),
        reroute=_reroute_flag(body),
    )
    session.commit()
    answer = queues.policy_as_dict(policy_versions.get_version(session, queue, int(number)))
    if result is not None:
        answer["rerouted"] = result.__dict__
    return answer


@bp.post("/queues/<slug>/policy/versions/<number>/reject")
@token_required("policy_owner", scope="decide")
def reject_policy_version(slug: str, number: str) -> dict[str, Any]:
    session = db_session()
    queue = _owned_queue(session, slug)
    body = _object_body()
    # Any JSON value (or none): reject() answers 422 unless it is a non-blank string.
    version = policy_versions.reject(
        session, queue, path_id(number, "version"), current_api_user(), body.get("reason")
    )
    session.commit()
    return queues.policy_as_dict(version)


@bp.post("/queues/<slug>/policy/rollback")
@token_required("policy_owner", scope="decide")
def rollback_policy(slug: str) -> tuple[dict[str, Any], int]:
    """`{"version": n, "note": "..."}`: a new version equal to version n."""
    session = db_session()
    queue = _owned_queue(session, slug)
    body = _object_body()
    number = body.get("version")
    # Versions are 32-bit integers in the database; a larger number cannot exist.
    if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= MAX_ROW_ID:
        raise ValidationFailed("version must be a version number", {"version": "is required"})
    version = policy_versions.rollback(session, queue, number, current_api_user(), body.get("note"))
    session.commit()
    return queues.policy_as_dict(version), 201
