"""Calibration: reliability diagrams per label and per model version, the expected
calibration error, and fitting a recalibration into a new policy version."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from werkzeug import Response

from review.db import db_session
from review.domain.calibration import Reliability
from review.services import queues, recalibration
from review.services.errors import ValidationFailed
from review.web.policy import bp
from review.web.policy.access import owned_queue, user
from review.web.policy.charts import Chart, Series, line_chart
from review.web.security import roles_required


def reliability_chart(title: str, result: Reliability, after: Reliability | None = None) -> Chart:
    """Observed accuracy per confidence bin against the diagonal of perfect calibration."""
    series = [
        Series("perfect calibration", [(b.low + b.high) / 2 for b in result.bins], "s-diagonal"),
        Series("observed accuracy", [b.accuracy for b in result.bins], "s-precision"),
    ]
    if after is not None:
        series.append(
            Series("after recalibration", [b.accuracy for b in after.bins], "s-automation")
        )
    labels = [f"{b.low:.1f}–{b.high:.1f}" for b in result.bins]
    return line_chart(title, labels, series, y_max=1.0, percent=True, x_tick_every=2)


@bp.get("/queues/<slug>/calibration")
@roles_required("policy_owner")
def calibration(
    slug: str, errors: dict[str, str] | None = None, status: int = 200
) -> tuple[str, int]:
    queue = owned_queue(slug)
    session = db_session()
    report = recalibration.calibration_report(session, queue)
    after = report.recalibrated_by_label or {}
    label_charts = {
        label: reliability_chart(f"Reliability of {label}", result, after.get(label))
        for label, result in report.by_label.items()
    }
    model_charts = {
        model: reliability_chart(f"Reliability of {model}", result)
        for model, result in report.by_model.items()
    }
    page = render_template(
        "policy/calibration.html",
        queue=queue,
        policy=queues.current_policy(session, queue),
        report=report,
        label_charts=label_charts,
        model_charts=model_charts,
        errors=errors or {},
        values=request.form,
    )
    return page, status


@bp.post("/queues/<slug>/calibration")
@roles_required("policy_owner")
def recalibrate(slug: str) -> tuple[str, int] | Response:
    """Fit the chosen method on the labeled items into a new version (or drop it)."""
    queue = owned_queue(slug)
    session = db_session()
    try:
        version = recalibration.new_version_with_recalibration(
            session, queue, request.form.get("method", ""), request.form.get("note", ""), user()
        )
    except ValidationFailed as exc:
        session.rollback()
        return calibration(slug, errors=exc.fields, status=422)
    session.commit()
    state = "in force" if version.status == "active" else "awaiting approval"
    flash(f"Version {version.version} with the new recalibration is {state}.", "success")
    return redirect(url_for(".calibration", slug=queue.slug), 303)
