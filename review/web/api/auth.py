"""Bearer-token authentication for the API: a token acts as its user, with the user's role."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Response, g, request
from werkzeug.datastructures import WWWAuthenticate

from models import User
from review.db import db_session
from review.services.accounts import token_for_secret
from review.web.api.errors import error_response
from review.web.security import has_role


def _unauthorized(message: str) -> Response:
    response = error_response(401, "unauthorized", message, {"Authorization": message})
    response.www_authenticate = WWWAuthenticate("bearer")
    return response


def token_required(*roles: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """View decorator: 401 without a live bearer token, 403 unless its user has one of `roles`.

    No roles means any authenticated user; admins pass every check (security.has_role).
    """

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            credentials = request.authorization
            if credentials is None or credentials.type != "bearer" or not credentials.token:
                return _unauthorized("send Authorization: Bearer <token>")
            session = db_session()
            token = token_for_secret(session, credentials.token)
            if token is None:
                return _unauthorized("the token is unknown, revoked or expired")
            # Keep the token's last_used_at (set by token_for_secret) even if the view fails.
            session.commit()
            if roles and not has_role(token.user, *roles):
                return error_response(
                    403,
                    "forbidden",
                    f"this needs one of the roles: {', '.join(roles)} (or admin)",
                    {"role": f"{token.user.role} is not allowed"},
                )
            g.api_user = token.user
            g.api_token_prefix = token.prefix
            return view(*args, **kwargs)

        return wrapped

    return decorator


def current_api_user() -> User:
    """The user the request's token acts for (only inside a @token_required view)."""
    user: User = g.api_user
    return user
