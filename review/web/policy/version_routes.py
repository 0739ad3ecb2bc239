"""Policy versions from the browser: create, four-eyes approval, rejection, rollback, diff,
re-routing waiting items (after a preview), and the queue's four-eyes and SLA settings.

Each view calls one service, commits, and redirects (Post/Redirect/Get); a rejected form
is shown again with the error next to its field.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from sqlalchemy.orm import Session
from werkzeug import Response

from models import Queue
from review.db import db_session
from review.services import policy_versions, queues
from review.services.errors import ServiceError, ValidationFailed
from review.web.policy import bp
from review.web.policy.access import owned_queue, user
from review.web.policy.routes import render_whatif
from review.web.security import roles_required


def _number(raw: str, field: str, errors: dict[str, str], scale: float = 1.0) -> float | None:
    try:
        value = float(raw) / scale
    except ValueError:
        errors[field] = "must be a number"
        return None
    if not math.isfinite(value):
        errors[field] = "must be a number"
        return None
    return value


def _version_form(queue: Queue) -> tuple[dict[str, Any], dict[str, str], dict[str, str]]:
    """The new-version form as service input, its field errors, and the raw values to refill."""
    form = request.form
    errors: dict[str, str] = {}
    values: dict[str, str] = {}
    thresholds: dict[str, Any] = {}
    for label in queue.labels:
        raw = form.get(f"threshold:{label}", "").strip()
        values[f"thresholds.{label}"] = raw
        if raw:
            thresholds[label] = _number(raw, f"thresholds.{label}", errors)
    values["default_threshold"] = form.get("default_threshold", "").strip()
    values["audit_rate"] = form.get("audit_rate_percent", "").strip()
    values["note"] = form.get("note", "")
    data: dict[str, Any] = {"thresholds": thresholds, "note": values["note"]}
    if values["default_threshold"]:
        data["default_threshold"] = _number(
            values["default_threshold"], "default_threshold", errors
        )
    if values["audit_rate"]:
        data["audit_rate"] = _number(values["audit_rate"], "audit_rate", errors, scale=100)
    return data, errors, values


@bp.post("/queues/<slug>/versions")
@roles_required("policy_owner")
def create_version(slug: str) -> Response:
    """Store a new version from the what-if page; it is active at once unless four eyes."""
    queue = owned_queue(slug)
    data, errors, values = _version_form(queue)
    session = db_session()
    if not errors:
        try:
            version = queues.create_policy_version(session, queue, data, user())
        except ValidationFailed as exc:
            session.rollback()
            errors = exc.fields
    if errors:
        if "audit_rate" in errors:
            errors["audit_rate"] = "must be a percentage between 0 and 100"
        return render_whatif(queue, errors, values)
    session.commit()
    if version.status == "active":
        flash(f"Version {version.version} is now in force.", "success")
    else:
        flash(f"Version {version.version} awaits approval by a second policy owner.", "success")
    return redirect(url_for(".versions", slug=queue.slug), 303)


@bp.get("/queues/<slug>/versions")
@roles_required("policy_owner")
def versions(slug: str) -> str:
    """Every version with what it changed, approvals waiting, rollback and re-routing."""
    queue = owned_queue(slug)
    session = db_session()
    history = policy_versions.versions(session, queue)
    by_number = {v.version: v for v in history}
    changes = {
        v.version: policy_versions.diff(queue, by_number[v.version - 1], v)
        for v in history
        if v.version - 1 in by_number
    }
    active = next(v for v in history if v.status == "active")
    compare = _compare(queue, by_number)
    return render_template(
        "policy/versions.html",
        queue=queue,
        history=history,
        changes=changes,
        active=active,
        compare=compare,
        preview=policy_versions.preview_reroute(session, queue, active),
        user_id=user().id,
    )


def _compare(queue: Queue, by_number: dict[int, Any]) -> dict[str, Any] | None:
    """The diff between ?from= and ?to= versions, if both name versions."""
    raw_from, raw_to = request.args.get("from", ""), request.args.get("to", "")
    if not (raw_from.isdigit() and raw_to.isdigit()):
        return None
    old, new = by_number.get(int(raw_from)), by_number.get(int(raw_to))
    if old is None or new is None:
        return {"error": "pick two versions that exist"}
    return {"from": old, "to": new, "changes": policy_versions.diff(queue, old, new)}


def _service_step(queue: Queue, action: str, step: Callable[[Session], str]) -> Response:
    """Run one service call; commit and flash its message, or flash why it was refused."""
    session = db_session()
    try:
        message = step(session)
    except ServiceError as exc:
        session.rollback()
        flash(f"{action} failed: {exc.message}", "warning")
    else:
        session.commit()
        flash(message, "success")
    return redirect(url_for(".versions", slug=queue.slug), 303)


@bp.post("/queues/<slug>/versions/<int:number>/approve")
@roles_required("policy_owner")
def approve(slug: str, number: int) -> Response:
    queue = owned_queue(slug)

    def step(session: Session) -> str:
        policy_versions.approve(session, queue, number, user())
        return f"Version {number} approved and in force."

    return _service_step(queue, "Approval", step)


@bp.post("/queues/<slug>/versions/<int:number>/reject")
@roles_required("policy_owner")
def reject(slug: str, number: int) -> Response:
    queue = owned_queue(slug)

    def step(session: Session) -> str:
        policy_versions.reject(session, queue, number, user(), request.form.get("reason", ""))
        return f"Version {number} rejected."

    return _service_step(queue, "Rejection", step)


@bp.post("/queues/<slug>/versions/<int:number>/rollback")
@roles_required("policy_owner")
def rollback(slug: str, number: int) -> Response:
    queue = owned_queue(slug)

    def step(session: Session) -> str:
        version = policy_versions.rollback(
            session, queue, number, user(), request.form.get("note", "")
        )
        state = "in force" if version.status == "active" else "awaiting approval"
        return f"Version {version.version} restores version {number}; it is {state}."

    return _service_step(queue, "Rollback", step)


@bp.post("/queues/<slug>/reroute")
@roles_required("policy_owner")
def reroute(slug: str) -> Response:
    """Re-route waiting, unclaimed items under the version in force (after the preview)."""
    queue = owned_queue(slug)

    def step(session: Session) -> str:
        active = queues.current_policy(session, queue)
        result = policy_versions.reroute_waiting(session, queue, active, user())
        return (
            f"Re-routed {result.rerouted} waiting items under version {active.version}: "
            f"{result.auto_approved} auto-approved, {result.audited} kept for audit."
        )

    return _service_step(queue, "Re-routing", step)


@bp.post("/queues/<slug>/settings")
@roles_required("policy_owner")
def settings(slug: str) -> Response:
    """Four eyes on or off, and the review SLA the dashboard measures against."""
    queue = owned_queue(slug)

    def step(session: Session) -> str:
        errors: dict[str, str] = {}
        sla = _number(request.form.get("review_sla_hours", ""), "review_sla_hours", errors)
        if errors:
            raise ValidationFailed("the SLA must be a number of hours", errors)
        data = {
            "require_four_eyes": request.form.get("require_four_eyes") == "on",
            "review_sla_hours": sla,
        }
        policy_versions.update_settings(session, session.merge(queue), data, user())
        return "Settings saved."

    return _service_step(queue, "Saving settings", step)
