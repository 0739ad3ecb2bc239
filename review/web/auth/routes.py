"""The login and logout pages."""

from __future__ import annotations

from flask import flash, make_response, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_user, logout_user
from werkzeug import Response

from review.db import db_session
from review.services import accounts, audit
from review.web import rate_limits
from review.web.auth import bp
from review.web.auth.forms import LoginForm, LogoutForm
from review.web.auth.navigation import home_url, safe_next
from review.web.security import has_role, login_required

INVALID_CREDENTIALS = "Invalid email or password."
LOCKED_OUT = (
    "Too many failed logins for this account or from this address. "
    "Try again in {minutes} minute{s}, or ask an admin for a password reset link."
)


@bp.app_context_processor
def _template_helpers() -> dict[str, object]:
    """Helpers every page template uses: role checks for the nav and the logout form."""
    return {"has_role": has_role, "logout_form": LogoutForm}


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    """Show the login form; on a valid POST log the user in and send them on."""
    if current_user.is_authenticated:
        return redirect(home_url(current_user))
    form = LoginForm()
    if request.method == "GET":
        form.next.data = safe_next(request.args.get("next"))
        return render_template("auth/login.html", form=form)
    if not form.validate_on_submit():
        return render_template("auth/login.html", form=form), 422
    session = db_session()
    email, address = form.email.data.strip().lower()[:254], request.remote_addr or "unknown"
    # Locked out: refused before the password is even checked, so guessing gains nothing.
    if blocked := rate_limits.login_lockout(email, address):
        audit.record(session, "auth.login_locked", email=email, address=address, by=blocked.reason)
        session.commit()
        minutes = max(1, round(blocked.retry_after / 60))
        message = LOCKED_OUT.format(minutes=minutes, s="" if minutes == 1 else "s")
        response = make_response(
            render_template("auth/login.html", form=form, login_error=message), 429
        )
        response.headers["Retry-After"] = str(blocked.retry_after)
        return response
    user = accounts.authenticate(session, form.email.data, form.password.data)
    if user is None:
        rate_limits.record_login_failure(email, address)
        audit.record(session, "auth.login_failed", email=email, address=address)
        session.commit()
        # One message for both cases, so the form does not reveal which emails exist.
        return render_template("auth/login.html", form=form, login_error=INVALID_CREDENTIALS), 422
    rate_limits.forget_login_failures(email)
    login_user(user)
    audit.record(session, "auth.login", user=user)
    session.commit()
    return redirect(safe_next(form.next.data) or home_url(user))


@bp.post("/logout")
@login_required
def logout() -> Response:
    """Log out (POST only, CSRF-checked by CSRFProtect) and return to the login page."""
    logout_user()
    flash("You have been logged out.", "info")
    return redirect(url_for("auth.login"))
