"""Admin pages for queues: the overview, create and edit with a live reviewer preview."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from jinja2_fragments.flask import render_block
from sqlalchemy import select
from werkzeug import Response

from models import Item, Queue, User
from models.queue import RECOMMENDER_KINDS
from review.db import db_session
from review.services import imports, members, queue_editing, queues
from review.services.errors import ServiceError
from review.web.admin import bp
from review.web.admin.common import acting_user, queue_form_data, queue_or_404
from review.web.htmx_response import make_response
from review.web.queue.payload import MAX_DEPTH, payload_view
from review.web.security import roles_required

QUEUE_ROLES = ("reviewer", "policy_owner")


@bp.get("/")
@roles_required("admin")
def index() -> str:
    """Queues, recent imports and where to manage people."""
    session = db_session()
    return render_template(
        "admin/index.html",
        queues=queues.list_queues(session),
        recent_imports=imports.list_imports(session, limit=10),
    )


def _candidates() -> list[User]:
    """People who can be members of a queue: active reviewers and policy owners."""
    return list(
        db_session().scalars(
            select(User)
            .where(User.role.in_(QUEUE_ROLES), User.is_active.is_(True))
            .order_by(User.role, User.email)
        )
    )


def _form_values(queue: Queue | None) -> dict[str, Any]:
    """What the form shows at first: the queue's configuration, or a new queue's defaults."""
    if queue is None:
        return {"recommender_kind": "local", "members": set(), "labels": "", "reason_codes": ""}
    session = db_session()
    return {
        "slug": queue.slug,
        "name": queue.name,
        "labels": "\n".join(queue.labels),
        "reason_codes": "\n".join(queue.reason_codes),
        "instructions": queue.instructions,
        "recommender_kind": queue.recommender_kind,
        "recommender_model": queue.recommender_model or "",
        "display_fields": ", ".join(queue.display_fields or []),
        "escalation_queue": queue_editing.queue_snapshot(session, queue)["escalation_queue"],
        "members": members.member_ids(session, queue),
    }


def _posted_values() -> dict[str, Any]:
    values: dict[str, Any] = request.form.to_dict()
    values["members"] = {int(v) for v in request.form.getlist("members") if v.isdigit()}
    values["retire"] = set(request.form.getlist("retire"))
    return values


def _sample_item(queue: Queue | None) -> Item | None:
    if queue is None:
        return None
    return db_session().scalar(
        select(Item).where(Item.queue_id == queue.id).order_by(Item.id.desc()).limit(1)
    )


def _preview_context(queue: Queue | None, data: dict[str, Any]) -> dict[str, Any]:
    item = _sample_item(queue)
    payload = None
    if item is not None:
        # The same view as the reviewer page: the display fields lead (queue/payload.py).
        payload = payload_view(item.payload, data["display_fields"])
    return {
        "preview": data,
        "sample_item": item,
        "sample_payload": payload,
        "max_depth": MAX_DEPTH,
    }


def _render_form(
    queue: Queue | None,
    values: dict[str, Any],
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> tuple[str, int]:
    session = db_session()
    data = queue_form_data(request.form) if request.method == "POST" else _values_as_data(values)
    context = {
        "queue": queue,
        "values": values,
        "errors": errors or {},
        "candidates": _candidates(),
        "other_queues": [
            q for q in queues.list_queues(session) if queue is None or q.id != queue.id
        ],
        "recommender_kinds": RECOMMENDER_KINDS,
        "usage": queue_editing.label_usage(session, queue) if queue else {},
        **_preview_context(queue, data),
    }
    return render_template("admin/queue_form.html", **context), status


def _values_as_data(values: dict[str, Any]) -> dict[str, Any]:
    from werkzeug.datastructures import MultiDict

    form = MultiDict({k: v for k, v in values.items() if isinstance(v, str)})
    for member in values.get("members", ()):
        form.add("members", str(member))
    return queue_form_data(form)


@bp.route("/queues/new", methods=["GET", "POST"])
@roles_required("admin")
def new_queue() -> tuple[str, int] | Response:
    """Create a queue with its labels, instructions, recommender and members."""
    if request.method == "GET":
        return _render_form(None, _form_values(None))
    session = db_session()
    try:
        queue, _ = queue_editing.create_queue(session, queue_form_data(request.form), acting_user())
    except ServiceError as exc:
        session.rollback()
        return _render_form(None, _posted_values(), exc.fields, 422)
    session.commit()
    flash(
        f"Created queue {queue.name}. Its policy sends every item to review until a policy "
        "owner sets thresholds.",
        "success",
    )
    return redirect(url_for(".edit_queue", slug=queue.slug), 303)


@bp.route("/queues/<slug>/edit", methods=["GET", "POST"])
@roles_required("admin")
def edit_queue(slug: str) -> tuple[str, int] | Response:
    """Edit a queue; taking out a label that items carry retires it, once confirmed."""
    queue = queue_or_404(slug)
    if request.method == "GET":
        return _render_form(queue, _form_values(queue))
    session = db_session()
    try:
        changes = queue_editing.update_queue(
            session,
            queue,
            queue_form_data(request.form),
            acting_user(),
            retire=request.form.getlist("retire"),
        )
    except ServiceError as exc:
        session.rollback()
        return _render_form(queue, _posted_values(), exc.fields, 422)
    session.commit()
    changed = ", ".join(name.replace("_", " ") for name in changes.fields) or "nothing"
    flash(f"Saved {queue.name}: changed {changed}.", "success")
    return redirect(url_for(".edit_queue", slug=queue.slug), 303)


@bp.post("/queues/preview")
@roles_required("admin")
def preview() -> Response:
    """The reviewer's view of the instructions, labels and a sample item, as typed so far."""
    slug = request.form.get("queue_slug") or ""
    queue = queue_or_404(slug) if slug else None
    context = _preview_context(queue, queue_form_data(request.form))
    body = render_block("admin/queue_form.html", "preview", **context)
    return make_response(body)
