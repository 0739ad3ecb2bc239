"""The admin page of the decision webhooks: endpoints, dead letters, recent deliveries,
and replay of one dead letter or all of them (CSRF-protected forms, audited)."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, url_for
from werkzeug import Response

from review.db import db_session
from review.services import webhooks as webhook_service
from review.services.errors import NotFound
from review.web.admin import bp
from review.web.admin.common import acting_user
from review.web.security import roles_required


@bp.get("/webhooks/")
@roles_required("admin")
def webhooks() -> str:
    session = db_session()
    overview = webhook_service.overview(session)
    shown = overview.dead + [d.event for d in overview.deliveries]
    return render_template(
        "admin/webhooks.html",
        overview=overview,
        external_ids=webhook_service.external_ids(session, shown),
    )


@bp.post("/webhooks/events/<int:event_pk>/replay")
@roles_required("admin")
def replay_event(event_pk: int) -> Response:
    """Send one dead letter again, from a fresh round of attempts."""
    session = db_session()
    try:
        webhook_service.replay(session, acting_user(), event_pk)
    except NotFound:
        session.rollback()
        abort(404)
    session.commit()  # the delivery job is enqueued once this commits
    flash("Replaying 1 event.", "success")
    return redirect(url_for(".webhooks"), 303)


@bp.post("/webhooks/replay-dead")
@roles_required("admin")
def replay_all() -> Response:
    """Send every dead letter again."""
    session = db_session()
    count = webhook_service.replay(session, acting_user())
    session.commit()
    flash(f"Replaying {count} event{'' if count == 1 else 's'}.", "success")
    return redirect(url_for(".webhooks"), 303)
