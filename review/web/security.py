"""Login sessions, role checks, session cookies and security headers for the browser pages."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import ParamSpec, TypeVar, cast

import flask_login
from flask import Flask, Response, abort, has_request_context, request
from flask.sessions import SecureCookieSessionInterface
from flask_login import LoginManager, current_user
from sqlalchemy import Select, bindparam, select
from werkzeug.wrappers import Response as WerkzeugResponse

from models import User
from review.db import db_session
from review.services.statements import built_once
from review.web import rate_limits

P = ParamSpec("P")
R = TypeVar("R")

login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message = "Please log in to continue."


# Pages load scripts and styles only from our own /static (htmx is vendored), with no inline
# script, style or event handler anywhere (static/js/htmx-config.js turns off htmx's
# injected indicator style and eval), so nothing inline needs allowing.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "object-src 'none'",
    ]
)


class _SessionInterface(SecureCookieSessionInterface):
    """Marks the session cookie Secure when the request came over https, or always when
    SESSION_COOKIE_SECURE is set, so plain-http development still logs in."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"]) or (
            has_request_context() and request.is_secure
        )


def init_app(app: Flask) -> None:
    login_manager.init_app(app)
    app.session_interface = _SessionInterface()
    app.config.setdefault("SESSION_COOKIE_HTTPONLY", True)
    app.config.setdefault("SESSION_COOKIE_SAMESITE", "Lax")
    rate_limits.init_app(app)

    @app.after_request
    def _security_headers(response: Response) -> Response:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        if request.is_secure:
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        return response


def _load_user(user_id: str) -> User | None:
    if not user_id.isdigit():
        return None
    user = db_session().scalar(_user_statement(), {"b_user": int(user_id)})
    # A deactivated user's session stops working on the next request.
    return user if user is not None and user.is_active else None


# Registered by a call, not as a decorator: flask_login is untyped, and its decorator would
# leave _load_user untyped too.
login_manager.user_loader(_load_user)


@built_once
def _user_statement() -> Select[User]:
    # Built once: it runs on every request, and building it costs more CPU than running it.
    return select(User).where(User.id == bindparam("b_user"))


def logged_in_user() -> User:
    """The logged-in User row, not Flask-Login's proxy (for code behind a login check)."""
    # flask_login is untyped; behind a login check its proxy wraps the row _load_user gave.
    return cast(User, current_user._get_current_object())


def has_role(user: User, *roles: str) -> bool:
    """Admins may do anything; everyone else needs one of the named roles."""
    return user.role == "admin" or user.role in roles


def login_required(view: Callable[P, R]) -> Callable[P, R | WerkzeugResponse]:
    """flask_login.login_required with its type: the view's answer for a logged-in user,
    otherwise the login manager's (a redirect to the login page)."""
    return cast(Callable[P, R | WerkzeugResponse], flask_login.login_required(view))


def roles_required(*roles: str) -> Callable[[Callable[P, R]], Callable[P, R | WerkzeugResponse]]:
    """Page decorator: log in first, then 403 unless the user has one of the roles."""

    def decorator(view: Callable[P, R]) -> Callable[P, R | WerkzeugResponse]:
        def wrapped(*args: P.args, **kwargs: P.kwargs) -> R:
            if not has_role(current_user, *roles):
                abort(403)
            return view(*args, **kwargs)

        return wraps(view)(login_required(wrapped))

    return decorator
