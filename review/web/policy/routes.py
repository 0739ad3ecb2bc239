"""The policy owner's list of queues and the what-if page.

The what-if page and its per-label fragment share one template: a slider move (htmx,
target `#figures-<label>`) gets that label's figures and chart, plus the policy totals
swapped out of band; anything else gets the whole page.
"""

from __future__ import annotations

import math
from typing import Any

from flask import render_template, request
from jinja2_fragments.flask import render_block
from werkzeug import Response

from app import htmx
from models import Queue
from review.db import db_session
from review.services import members, policy_stats, policy_versions, queues
from review.web.htmx_response import make_response
from review.web.policy import bp
from review.web.policy.access import max_stale_seconds, owned_queue, user
from review.web.policy.whatif_view import (
    label_row,
    proposals,
    read_thresholds,
    slider_name,
    totals,
)
from review.web.security import roles_required

FIGURES_PREFIX = "figures-"


@bp.get("/")
@roles_required("policy_owner")
def index() -> str:
    """The queues this policy owner tunes, with the version in force and pending approvals."""
    session = db_session()
    rows = []
    for queue in members.queues_for_user(session, user()):
        versions = policy_versions.versions(session, queue)
        active = next(v for v in versions if v.status == "active")
        pending = [v for v in versions if v.status == "pending_approval"]
        rows.append({"queue": queue, "active": active, "pending": pending})
    return render_template("policy/index.html", rows=rows)


def _target(errors: dict[str, str]) -> float | None:
    raw = request.args.get("target_precision", "").strip().rstrip("%")
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if value > 1:  # typed as a percentage: 99 means 99%
        value /= 100
    if not (math.isfinite(value) and 0 < value <= 1):
        errors["target_precision"] = "enter a precision above 0% and at most 100%"
        return None
    return value


def _whatif_context(queue: Queue, chart_index: int | None = None) -> dict[str, Any]:
    """Everything the page shows; with `chart_index`, only that label's chart is drawn
    (a slider move redraws one chart, not all of them)."""
    session = db_session()
    policy = queues.current_policy(session, queue)
    recalibration = policy_stats.recalibration_of(policy)
    evidence = policy_stats.queue_evidence(session, queue, max_stale_seconds())
    active = {
        label: queues.as_threshold_policy(policy).threshold_for(label) for label in queue.labels
    }
    errors: dict[str, str] = {}
    thresholds, slider_errors = read_thresholds(request.args, queue.labels, active)
    errors.update(slider_errors)
    target = _target(errors)
    rows = [
        label_row(
            evidence,
            label,
            thresholds[label],
            active[label],
            recalibration,
            target,
            with_chart=chart_index is None or chart_index == i,
        )
        for i, label in enumerate(queue.labels)
    ]
    # A slider move shows no proposals, so it does not pay for them.
    proposed = (
        proposals(evidence, queue.labels, target, recalibration)
        if target and chart_index is None
        else []
    )
    return {
        "queue": queue,
        "policy": policy,
        "version_errors": {},
        "version_values": {},
        "proposal_args": {
            slider_name(p.label): 1.0 if p.threshold is None else p.threshold for p in proposed
        },
        "evidence": evidence,
        "rows": rows,
        "totals": totals(evidence, [row.what for row in rows]),
        "target": target,
        "proposals": proposed,
        "errors": errors,
        "slider_name": slider_name,
        "thresholds": thresholds,
    }


def render_whatif(
    queue: Queue,
    version_errors: dict[str, str] | None = None,
    version_values: dict[str, str] | None = None,
) -> Response:
    """The whole what-if page; with a rejected new-version form, its errors and values."""
    context = _whatif_context(queue)
    context.update(
        version_errors=version_errors or {},
        version_values=version_values or {},
        next_version=policy_versions.latest_number(db_session(), queue) + 1,
    )
    status = 422 if context["errors"] or version_errors else 200
    return _vary(make_response(render_template("policy/whatif.html", **context), status))


@bp.get("/queues/<slug>/")
@roles_required("policy_owner")
def whatif(slug: str) -> Response:
    """Sliders per label with live estimates, a target-precision mode and a new-version form."""
    queue = owned_queue(slug)
    index = (htmx.target or "").removeprefix(FIGURES_PREFIX)
    if not (htmx.target or "").startswith(FIGURES_PREFIX) or not index.isdigit():
        return render_whatif(queue)
    context = _whatif_context(queue, chart_index=int(index))
    if int(index) < len(context["rows"]):
        row = context["rows"][int(index)]
        figures = render_block("policy/whatif.html", "figures", row=row, **context)
        summary = render_block("policy/whatif.html", "totals_oob", **context)
        return _vary(make_response(figures + summary))
    return render_whatif(queue)


def _vary(response: Response) -> Response:
    # One URL, two shapes (page or fragment): caches must key on the htmx headers.
    response.vary.update(("HX-Request", "HX-Target"))
    return response
