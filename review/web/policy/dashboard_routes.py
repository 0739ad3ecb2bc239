"""The queue dashboard: each measure over the last 30 days as a chart, and drift alarms."""

from __future__ import annotations

from flask import render_template

from review.db import db_session
from review.services import dashboard as dashboard_service
from review.web.policy import bp
from review.web.policy.access import max_stale_seconds, owned_queue
from review.web.policy.charts import Chart, RefLine, Series, line_chart
from review.web.security import roles_required

LABEL_CLASSES = 6  # app.css colours s-l0 .. s-l5


def dashboard_charts(data: dashboard_service.Dashboard) -> dict[str, Chart]:
    days = [d.strftime("%b %d") for d in data.days]
    estimate = data.policy_estimate
    audit_lines = []
    if estimate.precision is not None:
        audit_lines.append(
            RefLine(estimate.precision, "estimate for the policy in force", "ref-target")
        )
    return {
        "automation": line_chart(
            "Automation rate per day",
            days,
            [Series("auto-approved share of routed items", data.automation_rate, "s-automation")],
            y_max=1.0,
            percent=True,
        ),
        "overrides": line_chart(
            "Override rate per day by AI label",
            days,
            [
                Series(label, values, f"s-l{i % LABEL_CLASSES}")
                for i, (label, values) in enumerate(data.override_rate.items())
            ],
            y_max=1.0,
            percent=True,
        ),
        "audit": line_chart(
            "Audit precision of auto-approvable items",
            days,
            [
                Series(
                    "cumulative audit precision (95% interval shaded)",
                    [a.cumulative.precision for a in data.audit],
                    "s-precision",
                    band_low=[
                        a.cumulative.ci_low if a.cumulative.precision is not None else None
                        for a in data.audit
                    ],
                    band_high=[
                        a.cumulative.ci_high if a.cumulative.precision is not None else None
                        for a in data.audit
                    ],
                ),
                Series("that day's audits", [a.daily.precision for a in data.audit], "s-daily"),
            ],
            y_min=min(
                [0.5]
                + [a.cumulative.ci_low for a in data.audit if a.cumulative.precision is not None]
            ),
            y_max=1.0,
            percent=True,
            hlines=audit_lines,
        ),
        "depth": line_chart(
            "Items waiting for a person at the end of each day",
            days,
            [Series("waiting items", data.depth, "s-automation")],
        ),
        "age": line_chart(
            "Age of the oldest waiting item (hours)",
            days,
            [Series("oldest waiting item", data.oldest_hours, "s-precision")],
            hlines=[RefLine(data.sla_hours, f"SLA {data.sla_hours:g} h", "ref-sla")],
        ),
        "throughput": line_chart(
            "Decisions per day", days, [Series("decisions", data.decisions, "s-automation")]
        ),
        "cost": line_chart(
            "AI cost per day (USD)", days, [Series("cost", data.cost_usd, "s-precision")]
        ),
    }


@bp.get("/queues/<slug>/dashboard")
@roles_required("policy_owner")
def dashboard(slug: str) -> str:
    queue = owned_queue(slug)
    data = dashboard_service.build_dashboard(
        db_session(), queue, max_stale_seconds=max_stale_seconds()
    )
    return render_template(
        "policy/dashboard.html", queue=queue, data=data, charts=dashboard_charts(data)
    )
