"""The page a one-time link opens: choose a password (and name) to join, or to reset."""

from __future__ import annotations

from flask import abort, redirect, render_template, request
from flask.typing import ResponseReturnValue
from flask_login import login_user
from werkzeug import Response

from review.db import db_session
from review.services import people
from review.services.errors import NotFound, ValidationFailed
from review.web.admin import onboarding_bp
from review.web.auth.navigation import home_url


@onboarding_bp.after_request
def _no_referrer(response: Response) -> Response:
    # The secret is in the URL: keep it out of Referer headers and caches.
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response


@onboarding_bp.route("/link/<secret>", methods=["GET", "POST"])
def use_link(secret: str) -> ResponseReturnValue:
    """Show the form for a live link; on POST set the password, spend the link, log in."""
    session = db_session()
    invitation = people.live_link(session, secret) if len(secret) <= 100 else None
    if invitation is None:
        abort(404)
    errors: dict[str, str] = {}
    if request.method == "POST":
        password = request.form.get("password", "")
        if password != request.form.get("password_again", ""):
            errors["password_again"] = "the two passwords differ"
        else:
            try:
                user = people.use_link(
                    session, secret, password, request.form.get("display_name", "")
                )
            except ValidationFailed as exc:
                session.rollback()
                errors = exc.fields
            except NotFound:
                session.rollback()
                abort(404)
            else:
                session.commit()
                login_user(user)
                return redirect(home_url(user), 303)
    return render_template(
        "admin/use_link.html", invitation=invitation, errors=errors, secret=secret
    ), 422 if errors else 200
