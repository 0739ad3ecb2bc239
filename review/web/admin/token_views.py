"""Admin page for API tokens: create one (its secret shown once), list every token, revoke.

Creation and revocation are audited by the service (token.created / token.revoked).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypedDict

from flask import abort, flash, redirect, render_template, request, url_for
from sqlalchemy import select
from werkzeug import Response

from models import ApiToken, User
from models.base import utcnow
from review.db import db_session
from review.services import accounts
from review.services.errors import NotFound, ServiceError, ValidationFailed
from review.web.admin import bp
from review.web.admin.common import acting_user
from review.web.security import roles_required

# A token made in the UI lives 90 days unless the admin says otherwise.
DEFAULT_EXPIRES_IN = "90d"


def _render_tokens(
    errors: dict[str, str] | None = None,
    values: Mapping[str, object] | None = None,
    secret: str | None = None,
    created: ApiToken | None = None,
    status: int = 200,
) -> tuple[str, int]:
    session = db_session()
    users = session.scalars(select(User).where(User.is_active.is_(True)).order_by(User.email)).all()
    return render_template(
        "admin/tokens.html",
        tokens=accounts.list_tokens(session),
        users=users,
        scopes=accounts.SCOPES,
        role_scopes=accounts.ROLE_SCOPES,
        now=utcnow(),
        errors=errors or {},
        values=values or {"expires_in": DEFAULT_EXPIRES_IN, "scopes": []},
        secret=secret,
        created=created,
    ), status


class _TokenFormValues(TypedDict):
    user_id: str
    name: str
    scopes: list[str]
    expires_in: str


def _form_values() -> _TokenFormValues:
    form = request.form
    return {
        "user_id": form.get("user_id", ""),
        "name": form.get("name", "").strip(),
        "scopes": form.getlist("scopes"),
        "expires_in": form.get("expires_in", "").strip(),
    }


def _owner(raw_id: str) -> User:
    user = db_session().get(User, int(raw_id)) if raw_id.isdigit() else None
    if user is None or not user.is_active:
        raise ValidationFailed("pick a user", {"user_id": "choose an active user"})
    return user


@bp.get("/tokens/")
@roles_required("admin")
def tokens_index() -> tuple[str, int]:
    return _render_tokens()


@bp.post("/tokens/")
@roles_required("admin")
def create_token() -> tuple[str, int]:
    """Make a token for a user; the secret is on this response only (no redirect)."""
    values = _form_values()
    session = db_session()
    try:
        owner = _owner(values["user_id"])
        expires_at = accounts.parse_expires_in(str(values["expires_in"]), utcnow())
        token, secret = accounts.create_token(
            session,
            owner,
            name=str(values["name"]),
            expires_at=expires_at,
            scopes=list(values["scopes"]),
            actor=acting_user(),
        )
    except ServiceError as exc:
        session.rollback()
        return _render_tokens(exc.fields, values, status=422)
    session.commit()
    return _render_tokens(secret=secret, created=token)


@bp.post("/tokens/<int:token_id>/revoke")
@roles_required("admin")
def revoke_token(token_id: int) -> Response:
    session = db_session()
    try:
        token = accounts.revoke_token(session, token_id, acting_user())
    except NotFound:
        abort(404)
    session.commit()
    flash(f"Revoked {token.prefix}… of {token.user.email}: it stops working now.", "success")
    return redirect(url_for(".tokens_index"), 303)
