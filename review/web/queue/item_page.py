"""One item of a queue, opened from the queue page: what it is, where it stands, and its
history; a reviewer can take a waiting item onto their review screen from here."""

from __future__ import annotations

from datetime import datetime

from flask import current_app, flash, redirect, render_template, url_for
from werkzeug import Response

from models import Item, User
from models.base import utcnow
from review.db import db_session
from review.services import item_history, review_actions
from review.services.errors import Conflict
from review.web.htmx_response import make_response
from review.web.queue import bp
from review.web.queue.access import current, queue_and_item_or_404
from review.web.queue.forms import LeaseForm
from review.web.queue.payload import MAX_DEPTH
from review.web.queue.rendering import item_view
from review.web.security import has_role, roles_required

# An item's status, as the page states it.
STATUS_WORDS = {
    "pending": "awaiting the AI",
    "needs_review": "awaiting review",
    "auto_approved": "auto-approved by the policy",
    "decided": "decided by a person",
}


@bp.get("/queues/<slug>/items/<int:item_id>")
@roles_required("reviewer", "policy_owner")
def item(slug: str, item_id: int) -> Response:
    """The item as the review screen draws it, with where it stands and all its history."""
    queue, found = queue_and_item_or_404(slug, item_id)
    session = db_session()
    now = utcnow()
    holder = _live_holder(found, now)
    mine = holder is not None and found.leased_by_id == current().id
    body = render_template(
        "queue/item.html",
        queue=queue,
        view=item_view(queue, found),
        status_words=STATUS_WORDS.get(found.status, found.status),
        holder=holder,
        mine=mine,
        lined_up=holder is not None and found.lease_started_at is None,
        review=found.review if found.status == "decided" else None,
        history=item_history.item_history(session, found),
        max_depth=MAX_DEPTH,
        can_take=_can_take(found, holder, mine),
    )
    return make_response(body)


def _live_holder(item: Item, now: datetime) -> str | None:
    """The name of who holds a live lease on the item, if anyone."""
    if item.status != "needs_review" or item.leased_by_id is None:
        return None
    if item.lease_expires_at is None or item.lease_expires_at < now:
        return None
    leased_by = db_session().get(User, item.leased_by_id)
    return leased_by.name if leased_by is not None else "another reviewer"


def _can_take(item: Item, holder: str | None, mine: bool) -> bool:
    """As review_actions.take allows: on no one else's screen (free, or only lined up)."""
    return (
        has_role(current(), "reviewer")
        and item.status == "needs_review"
        and (holder is None or mine or item.lease_started_at is None)
    )


@bp.post("/queues/<slug>/items/<int:item_id>/take")
@roles_required("reviewer")
def take(slug: str, item_id: int) -> Response:
    """Put this item on the reviewer's screen next (see review_actions.take); if it cannot
    be taken, back to the item's page, which says why."""
    queue, found = queue_and_item_or_404(slug, item_id)
    LeaseForm()  # CSRF is checked globally; nothing else is sent
    session = db_session()
    try:
        review_actions.take(session, found.id, current(), current_app.config["LEASE_SECONDS"])
    except Conflict as exc:
        session.rollback()
        flash(f"Item {found.external_id} cannot be reviewed now: {exc.message}.", "warning")
        return redirect(url_for(".item", slug=queue.slug, item_id=found.id), 303)
    session.commit()
    return redirect(url_for(".review", slug=queue.slug), 303)
