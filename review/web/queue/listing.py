"""The queue page (filters, sort, keyset pages), its live counts and the system banner."""

from __future__ import annotations

from typing import Any

from flask import current_app, redirect, render_template, request, url_for
from sqlalchemy import select
from werkzeug import Response
from werkzeug.datastructures import MultiDict

from models import Item, Queue
from models.base import utcnow
from review.db import db_session
from review.redis_conn import get_redis, get_rq_queue
from review.services import counting, queue_views
from review.services.errors import ValidationFailed
from review.services.system_status import system_status
from review.web.htmx_response import make_response
from review.web.queue import bp
from review.web.queue.access import member_queue_or_404
from review.web.queue.count_cache import counts_cache
from review.web.security import roles_required

# The status filter's choices, as the page names them.
STATUS_NAMES = {
    "needs_review": "awaiting review",
    "pending": "awaiting AI",
    "decided": "decided by a person",
    "auto_approved": "auto-approved",
}
# The outcome filter's choices (queue_views.OUTCOMES), as the page names them.
OUTCOME_NAMES = {"agreed": "kept the AI's label", "overridden": "overrode the AI"}
# How often the counts and the banner refresh themselves (seconds).
COUNTS_EVERY = 10
STATUS_EVERY = 30


@bp.get("/queues/<slug>")
@roles_required("reviewer", "policy_owner")
def items(slug: str) -> Response:
    """A page of the queue's waiting items under the filters in the query string."""
    return render_items(member_queue_or_404(slug))


@bp.get("/queues/<slug>/find")
@roles_required("reviewer", "policy_owner")
def find(slug: str) -> Response:
    """Go to the item with this external id (the id the sending system knows it by)."""
    queue = member_queue_or_404(slug)
    external_id = (request.args.get("external_id") or "").strip()
    if not external_id:
        return render_items(queue, find_error="Type the item's id", status=400)
    item_id = db_session().scalar(
        select(Item.id).where(Item.queue_id == queue.id, Item.external_id == external_id)
    )
    if item_id is None:
        return render_items(
            queue, find_error=f"No item “{external_id}” in this queue", find=external_id, status=404
        )
    return redirect(url_for(".item", slug=queue.slug, item_id=item_id), 303)


def render_items(
    queue: Queue, *, find: str = "", find_error: str | None = None, status: int = 200
) -> Response:
    """The queue page under the request's filters; `find`/`find_error`: the id looked for
    with the "Go to item" field and why nothing was found."""
    session = db_session()
    errors: dict[str, str] = {}
    deciders = queue_views.deciders(session)
    people = {person.id for person in deciders}
    try:
        filters = queue_views.parse_filters(request.args, queue, people)
        page = queue_views.queue_page(session, queue, filters, request.args.get("after"), utcnow())
    except ValidationFailed as exc:
        # Only what was not understood is left out (and the list starts again at its first
        # page): the rest of what the user chose stays, to be fixed rather than redone.
        errors = exc.fields
        kept = MultiDict(
            (name, value)
            for name, value in request.args.items(multi=True)
            if name not in errors and name != "after"
        )
        try:
            filters = queue_views.parse_filters(kept, queue, people)
        except ValidationFailed:
            filters = queue_views.QueueFilters()
        page = queue_views.queue_page(session, queue, filters, None, utcnow())
    body = render_template(
        "queue/items.html",
        queue=queue,
        page=page,
        filters=page.filters,
        errors=errors,
        sorts=queue_views.SORTS,
        bands=queue_views.BANDS,
        ages=queue_views.AGES,
        statuses=queue_views.STATUSES,
        status_names=STATUS_NAMES,
        outcomes=OUTCOME_NAMES,
        deciders=deciders,
        counts_every=COUNTS_EVERY,
        now=utcnow(),
        find=find,
        find_error=find_error,
        typed_search=request.args.get("q", ""),
        set_aside=_set_aside(request.args, page.filters),
    )
    return make_response(body, 400 if errors and status == 200 else status)


# The decided items' choices, as the form names them.
DECIDED_CHOICES = {"final_label": "Final label", "outcome": "Outcome", "decided_by": "Decided by"}


def _set_aside(args: Any, filters: queue_views.QueueFilters) -> list[str]:
    """The decided items' choices the form sent that do not apply to the status shown (one
    form holds them all): named on the page, rather than dropped without a word."""
    applied = filters.as_params()
    return [
        label for name, label in DECIDED_CHOICES.items() if args.get(name) and name not in applied
    ]


@bp.get("/queues/<slug>/counts")
@roles_required("reviewer", "policy_owner")
def counts(slug: str) -> str:
    """Live counts for the queue page, refreshed by polling."""
    queue = member_queue_or_404(slug)
    try:
        filters = queue_views.parse_filters(request.args, queue)
    except ValidationFailed:
        filters = queue_views.QueueFilters()
    # Keyed without the sort, which changes no count: pages sorted differently share
    # one entry instead of each counting on its own.
    counts = counts_cache(current_app).get(
        (queue.id, filters.without_sort()),
        lambda: queue_views.queue_counts(db_session(), queue, filters, utcnow()),
    )
    return render_template(
        "queue/_counts.html",
        queue=queue,
        counts=counts,
        filters=filters,
        every=COUNTS_EVERY,
        count_cap=counting.COUNT_CAP,
    )


@bp.get("/queues/<slug>/system-status")
@roles_required("reviewer", "policy_owner")
def status_banner(slug: str) -> str:
    """The banner saying what is down (Redis, the worker, the AI); empty when all is well."""
    queue = member_queue_or_404(slug)
    status = system_status(db_session(), queue, get_redis(), get_rq_queue(), utcnow())
    return render_template(
        "queue/_system_status.html", queue=queue, status=status, every=STATUS_EVERY
    )
