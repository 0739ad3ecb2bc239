"""Bearer-token authentication for the API.

A token acts as its user, with the user's role and queue memberships, and only within its
scopes (review/services/accounts.py SCOPES): every route names the one scope it needs.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import ParamSpec, TypeVar

from flask import Response, current_app, g, request
from werkzeug.datastructures import WWWAuthenticate

from models import User
from review.db import db_session
from review.services import audit
from review.services.accounts import SCOPES, token_allows, token_for_secret
from review.web import rate_limits
from review.web.api.errors import error_response
from review.web.security import has_role

P = ParamSpec("P")
R = TypeVar("R")


def _unauthorized(message: str) -> Response:
    response = error_response(401, "unauthorized", message, {"Authorization": message})
    response.www_authenticate = WWWAuthenticate("bearer")
    return response


def _too_many(retry_after: int) -> Response:
    response = error_response(
        429,
        "rate_limited",
        f"too many requests with this token; try again in {retry_after} s",
        {"Authorization": f"over {current_app.config['API_RATE_LIMIT']}"},
    )
    response.headers["Retry-After"] = str(retry_after)
    return response


def token_required(
    *roles: str, scope: str = "admin"
) -> Callable[[Callable[P, R]], Callable[P, R | Response]]:
    """View decorator: 401 without a live bearer token; 403 unless its user has one of
    `roles` and the token carries `scope`.

    No roles means any authenticated user; admins pass every role check (security.has_role)
    but still need the scope on the token. A route that names no scope needs `admin`, so a
    forgotten scope fails closed (and tests/web/test_access_matrix.py names every route's).
    """
    if scope not in SCOPES:
        raise ValueError(f"unknown API scope {scope!r}")

    def decorator(view: Callable[P, R]) -> Callable[P, R | Response]:
        @wraps(view)
        def wrapped(*args: P.args, **kwargs: P.kwargs) -> R | Response:
            credentials = request.authorization
            if credentials is None or credentials.type != "bearer" or not credentials.token:
                return _unauthorized("send Authorization: Bearer <token>")
            session = db_session()
            token = token_for_secret(session, credentials.token)
            if token is None:
                return _unauthorized("the token is unknown, revoked or expired")
            # Keep the token's last_used_at (set by token_for_secret) even if the view fails.
            session.commit()
            if blocked := rate_limits.api_request_blocked(token.id):
                return _too_many(blocked.retry_after)
            if roles and not has_role(token.user, *roles):
                return error_response(
                    403,
                    "forbidden",
                    f"this needs one of the roles: {', '.join(roles)} (or admin)",
                    {"role": f"{token.user.role} is not allowed"},
                )
            if not token_allows(token, scope):
                return error_response(
                    403,
                    "forbidden",
                    f"this token lacks the {scope!r} scope",
                    {"scope": f"needs {scope}; the token has {', '.join(token.scopes) or 'none'}"},
                )
            g.api_user = token.user
            acting = audit.ActingToken(id=token.id, prefix=token.prefix, user_id=token.user_id)
            with audit.acting_as_token(session, acting):
                return view(*args, **kwargs)

        return wrapped

    return decorator


def current_api_user() -> User:
    """The user the request's token acts for (only inside a @token_required view)."""
    user: User = g.api_user
    return user
