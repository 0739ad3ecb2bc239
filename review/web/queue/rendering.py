"""Drawing the review screen: the whole page, or only the item when htmx asks for it."""

from __future__ import annotations

import secrets
import uuid
from typing import Any

from flask import current_app, render_template, request
from jinja2_fragments.flask import render_block
from werkzeug import Response

from app import htmx
from models import Item, Queue, Review
from review.db import db_session
from review.domain.text import payload_strings
from review.services import item_history, review_actions, reviewing
from review.web.htmx_response import make_response
from review.web.queue.access import current
from review.web.queue.forms import DecisionForm, blank_decision_data
from review.web.queue.highlight import evidence_of, quotes_found
from review.web.queue.payload import MAX_DEPTH, payload_view

# The element that holds the item under review. A request that targets it gets just that
# fragment (the `item` block of queue/review.html); anything else gets the whole page.
ITEM_TARGET = "review-item"
# Sent by review.js with a decision once it has put the prefetched item on screen: that
# item's id. If the server then shows the same item, the answer leaves out what the client
# already draws (see render_lineup).
PREVIEW_HEADER = "X-Review-Preview"

# Why there is no recommendation, in words a reviewer understands (keyed by Item.ai_status).
NO_RECOMMENDATION_REASONS = {
    None: "no recommendation has been made for this item",
    "ok": "the recommendation is missing",
    "none": "the recommender had nothing to suggest (for example, it is not trained yet)",
    "unavailable": "the AI service could not be reached",
    "budget_exhausted": "this queue's AI budget is used up",
}


def vary(response: Response) -> Response:
    # One URL, two shapes (page or fragment): caches must key on the htmx headers.
    response.vary.update(("HX-Request", "HX-Target", PREVIEW_HEADER))
    # Never kept: the page shows items under leases that end when it is left. Back to it,
    # a browser would otherwise show the old copy from its cache, with items since given
    # back to the queue (and the first decision refused), instead of asking again.
    response.headers["Cache-Control"] = "no-store"
    return response


def wants_fragment() -> bool:
    target: str | None = htmx.target  # flask_htmx is untyped to mypy (no py.typed)
    return target == ITEM_TARGET


def render_lineup(
    queue: Queue, show: Item | None = None, *, preview_may_stay: bool = False, **options: Any
) -> Response:
    """Lease what the review screen holds and draw it: `show` (by default the reviewer's
    live lease, else a newly claimed item) and the item prefetched to follow it, so the page
    can put that one on screen the moment a decision is sent (see review.js and
    reviewing.lineup). `options` go to render_review.

    With `preview_may_stay` (a saved decision), when the item shown is the one the client
    already previews (PREVIEW_HEADER), its card and recommendation are not drawn again:
    review.js takes them from its preview. Drawing the answer then costs a quarter to a
    third less CPU: 0.25 ms less at bench_review's short payloads, 0.5 ms for a 3 KB ticket.

    One commit, after drawing: the reads the page needs share the transaction with whatever
    the view changed and with both leases, none is left open for the end of the request
    (review/db.py), and the leases hold before the response leaves."""
    session = db_session()
    # A whole page is a new load of the review page: it takes the leases over as its own
    # (an htmx answer goes into the page that asked, which already has an id).
    page = None if wants_fragment() else secrets.token_hex(8)
    lineup = reviewing.lineup(
        session, queue, current(), current_app.config["LEASE_SECONDS"], show=show, page=page
    )
    keep_preview = preview_may_stay and _previewed_by_client(lineup.shown)
    response = render_review(
        queue,
        lineup.shown,
        upcoming=lineup.upcoming,
        keep_preview=keep_preview,
        review_page=page,
        **options,
    )
    session.commit()
    return response


def _previewed_by_client(item: Item | None) -> bool:
    """True if the client has put this item on screen from its prefetch (and will take
    its card and recommendation from there): only an htmx request for the item element."""
    return (
        item is not None
        and wants_fragment()
        and request.headers.get(PREVIEW_HEADER) == str(item.id)
    )


def render_review(
    queue: Queue,
    item: Item | None,
    *,
    upcoming: Item | None = None,
    form: DecisionForm | None = None,
    errors: dict[str, str] | None = None,
    notice: str | None = None,
    saved: str | None = None,
    undo_of: Review | None = None,
    open_panel: str | None = None,
    keep_preview: bool = False,
    review_page: str | None = None,
    decision: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    """The review page, or only its item fragment when htmx asks for the item element;
    `upcoming` is the item prefetched to follow (already leased: see render_lineup).
    `keep_preview`: the item's card and recommendation are left to the client's preview
    (placeholders instead: see queue/review.html). `review_page`: the id of this load of
    the page, which its releases name (see reviewing.release_lease). `decision`: the form's
    starting values when there is no submitted form (see review_context)."""
    context = review_context(queue, item, form, errors or {}, keep_preview, decision)
    context.update(
        notice=notice,
        saved=saved,
        undo=review_actions.undo_window(undo_of) if undo_of is not None else None,
        open_panel=open_panel,
        prefetched=item_view(queue, upcoming) if upcoming is not None else None,
        review_page=review_page,
    )
    if wants_fragment():
        body = render_block("queue/review.html", "item", **context)
    else:
        body = render_template("queue/review.html", **context)
    return vary(make_response(body, status))


def item_view(queue: Queue, item: Item) -> dict[str, Any]:
    """What the screen shows of an item: its payload, the AI's recommendation and evidence."""
    recommendation = item.recommendation
    evidence = evidence_of(recommendation)
    found, missing = quotes_found(payload_strings(item.payload), evidence)
    return {
        "item": item,
        "recommendation": recommendation,
        "payload": payload_view(item.payload, queue.display_fields or []),
        "evidence": found,
        "evidence_missing": missing,
        "no_recommendation_reason": NO_RECOMMENDATION_REASONS.get(
            item.ai_status, NO_RECOMMENDATION_REASONS[None]
        ),
    }


def _previewed_view(item: Item) -> dict[str, Any]:
    """What the decision form needs of an item whose card the client draws from its
    preview: the recommendation (the approve button names its label), not the payload."""
    return {"item": item, "recommendation": item.recommendation}


def review_context(
    queue: Queue,
    item: Item | None,
    form: DecisionForm | None,
    errors: dict[str, str],
    keep_preview: bool = False,
    decision: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What queue/review.html draws; `form`: the decision as submitted, else `decision`
    (values in the form's shape: an undone decision's), else a blank one."""
    session = db_session()
    view: dict[str, Any]
    if item is None:
        view = {
            "item": None,
            "recommendation": None,
            "payload": None,
            "evidence": [],
            "evidence_missing": [],
            "no_recommendation_reason": NO_RECOMMENDATION_REASONS[None],
        }
    else:
        view = _previewed_view(item) if keep_preview else item_view(queue, item)
    if form is not None:
        values = form.decision_data()
    else:
        values = dict(decision) if decision is not None else blank_decision_data()
    if values["action"] is None:
        # Without an AI label there is nothing to approve, so start in override mode.
        values["action"] = "approve" if view["recommendation"] is not None else "override"
    lease_seconds = current_app.config["LEASE_SECONDS"]
    return {
        **view,
        "shown": view,
        "queue": queue,
        "errors": errors,
        "values": values,
        "max_depth": MAX_DEPTH,
        "keep_preview": keep_preview,
        "history": item_history.item_history(session, item) if item is not None else [],
        "escalation": review_actions.escalation_target(session, queue),
        "skip_reasons": review_actions.SKIP_REASONS,
        "idempotency_key": uuid.uuid4().hex,
        # The page says it is alive three times per lease, so one lost beat does no harm.
        "heartbeat_seconds": max(1, lease_seconds // 3),
    }
