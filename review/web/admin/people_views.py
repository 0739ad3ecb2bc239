"""Admin pages for people: create or invite users, roles, deactivation, password resets."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from werkzeug import Response

from models.user import ROLES
from review.db import db_session
from review.services import accounts, people
from review.services.errors import NotFound, ServiceError
from review.web.admin import bp
from review.web.admin.common import acting_user
from review.web.security import roles_required


def _render_people(
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    link: str | None = None,
    link_for: str | None = None,
    status: int = 200,
) -> tuple[str, int]:
    session = db_session()
    users = people.list_users(session)
    return render_template(
        "admin/people.html",
        users=users,
        tokens=people.tokens_by_user(session, [user.id for user in users]),
        invitations=people.pending_invitations(session),
        roles=ROLES,
        errors=errors or {},
        values=values or {"role": "reviewer", "mode": "invite"},
        link=link,
        link_for=link_for,
    ), status


@bp.get("/people/")
@roles_required("admin")
def people_index() -> tuple[str, int]:
    return _render_people()


@bp.post("/people/")
@roles_required("admin")
def add_person() -> tuple[str, int] | Response:
    """Invite someone with a one-time link, or create the account with a password now."""
    form = request.form
    values = {key: form.get(key, "") for key in ("email", "display_name", "role", "mode")}
    session = db_session()
    try:
        if values["mode"] == "password":
            user = accounts.create_user(
                session,
                values["email"],
                values["role"],
                form.get("password", ""),
                values["display_name"],
            )
            link = None
        else:
            invitation, secret = people.invite(
                session, values["email"], values["role"], values["display_name"], acting_user()
            )
            link = url_for("onboarding.use_link", secret=secret, _external=True)
    except ServiceError as exc:
        session.rollback()
        return _render_people(exc.fields, values, status=422)
    session.commit()
    if link is None:
        flash(f"Created {user.role.replace('_', ' ')} {user.email}.", "success")
        return redirect(url_for(".people_index"), 303)
    # The secret is shown once, on this response, and never stored: no redirect.
    return _render_people(link=link, link_for=f"invitation for {invitation.email}")


@bp.route("/people/<int:user_id>", methods=["GET", "POST"])
@roles_required("admin")
def person(user_id: int) -> tuple[str, int] | Response:
    """One user: name, role, active or not, and a password reset link."""
    session = db_session()
    try:
        user = people.get_user(session, user_id)
    except NotFound:
        abort(404)
    errors: dict[str, str] = {}
    link = None
    if request.method == "POST":
        action = request.form.get("action")
        try:
            if action == "save":
                people.set_display_name(
                    session, user, request.form.get("display_name", ""), acting_user()
                )
                people.set_role(session, user, request.form.get("role", ""), acting_user())
                message = f"Saved {user.email}."
            elif action in ("deactivate", "activate"):
                people.set_active(session, user, action == "activate", acting_user())
                message = (
                    f"{user.email} is deactivated: their sessions and API tokens stop working now."
                    if action == "deactivate"
                    else f"{user.email} is active again."
                )
            elif action == "reset":
                _, secret = people.reset_link(session, user, acting_user())
                link = url_for("onboarding.use_link", secret=secret, _external=True)
                message = ""
            else:
                abort(400)
        except ServiceError as exc:
            session.rollback()
            errors = exc.fields
        else:
            session.commit()
            if link is None:
                flash(message, "success")
                return redirect(url_for(".person", user_id=user.id), 303)
    status = 422 if errors else 200
    return render_template(
        "admin/person.html", user=user, roles=ROLES, errors=errors, link=link
    ), status


@bp.post("/people/invitations/<int:invitation_id>/revoke")
@roles_required("admin")
def revoke_invitation(invitation_id: int) -> Response:
    session = db_session()
    try:
        people.revoke_invitation(session, invitation_id, acting_user())
    except NotFound:
        abort(404)
    session.commit()
    flash("The invitation link no longer works.", "success")
    return redirect(url_for(".people_index"), 303)
