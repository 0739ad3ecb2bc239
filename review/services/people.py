"""People: inviting users with one-time links, roles, deactivation and password resets.

A one-time link carries a random secret; only its SHA-256 is stored, it expires, and it
works once. Deactivating a user takes effect on their next request: the login session's
user loader and the API's token check both refuse inactive users. Nobody can lock the
workbench out of administration: an admin cannot deactivate or demote themselves, and the
last active admin cannot be deactivated or demoted by anyone.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session
from werkzeug.security import generate_password_hash

from models import ApiToken, Invitation, User
from models.base import utcnow
from models.user import ROLES
from review.services import accounts, audit
from review.services.accounts import hash_token
from review.services.errors import Conflict, Forbidden, NotFound, ValidationFailed
from review.services.statements import rowcount

INVITE_TTL = timedelta(days=7)
RESET_TTL = timedelta(hours=24)
MIN_PASSWORD = 8


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.is_active.desc(), User.email)))


@dataclass
class PersonTokens:
    """One user's API tokens as the people page shows them: the live ones listed, the
    revoked or expired ones only counted (they can do nothing; /admin/tokens lists them)."""

    live: list[ApiToken] = field(default_factory=list)
    ended: int = 0


def tokens_by_user(session: Session, user_ids: Iterable[int]) -> dict[int, PersonTokens]:
    """Each listed user's tokens, read in one query; users without tokens are absent.

    "Live" is the token's own state (not revoked, not expired): a deactivated user's live
    tokens are listed, since reactivating the user makes them work again.
    """
    ids = list(user_ids)
    if not ids:
        return {}
    now = utcnow()
    query = (
        select(ApiToken)
        .where(ApiToken.user_id.in_(ids))
        .order_by(ApiToken.created_at.desc(), ApiToken.id.desc())
    )
    found: dict[int, PersonTokens] = {}
    for token in session.scalars(query):
        tokens = found.setdefault(token.user_id, PersonTokens())
        if token.revoked_at is None and (token.expires_at is None or token.expires_at > now):
            tokens.live.append(token)
        else:
            tokens.ended += 1
    return found


def get_user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"no user {user_id}", {"user": "no such user"})
    return user


def pending_invitations(session: Session) -> list[Invitation]:
    """Invitations not yet used, revoked or expired, newest first."""
    return list(
        session.scalars(
            select(Invitation)
            .where(
                Invitation.kind == "invite",
                Invitation.used_at.is_(None),
                Invitation.revoked_at.is_(None),
                Invitation.expires_at > utcnow(),
            )
            .order_by(Invitation.id.desc())
        )
    )


def _check_new_person(session: Session, email: str, role: str) -> str:
    email = email.strip().lower()
    errors = {}
    if "@" not in email or len(email) > 254 or email.startswith("@") or email.endswith("@"):
        errors["email"] = "must be an email address"
    if role not in ROLES:
        errors["role"] = f"must be one of {', '.join(ROLES)}"
    if errors:
        raise ValidationFailed("invalid invitation", errors)
    if session.scalar(select(User.id).where(User.email == email)):
        raise Conflict(f"user {email} already exists", {"email": "already has an account"})
    return email


def _revoke_pending(session: Session, *conditions) -> None:  # type: ignore[no-untyped-def]
    session.execute(
        update(Invitation)
        .where(Invitation.used_at.is_(None), Invitation.revoked_at.is_(None), *conditions)
        .values(revoked_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def invite(
    session: Session, email: str, role: str, display_name: str, actor: User | None
) -> tuple[Invitation, str]:
    """A one-time link that lets `email` create their account with `role`.

    Returns the invitation and the secret (shown once, never stored). An earlier pending
    invitation for the same email stops working.
    """
    email = _check_new_person(session, email, role)
    if len(display_name) > 120:
        raise ValidationFailed("name too long", {"display_name": "at most 120 characters"})
    _revoke_pending(session, Invitation.kind == "invite", Invitation.email == email)
    invitation, secret = _new_link(
        session,
        "invite",
        email=email,
        role=role,
        display_name=display_name.strip(),
        ttl=INVITE_TTL,
        actor=actor,
    )
    audit.record(
        session, "user.invited", user=actor, email=email, role=role, invitation_id=invitation.id
    )
    return invitation, secret


def reset_link(session: Session, user: User, actor: User | None) -> tuple[Invitation, str]:
    """A one-time link that lets `user` choose a new password; earlier reset links die."""
    _revoke_pending(session, Invitation.kind == "reset", Invitation.user_id == user.id)
    invitation, secret = _new_link(
        session,
        "reset",
        email=user.email,
        role=user.role,
        display_name=user.display_name,
        ttl=RESET_TTL,
        actor=actor,
        user_id=user.id,
    )
    audit.record(
        session,
        "user.password_reset_issued",
        user=actor,
        target=user.email,
        invitation_id=invitation.id,
    )
    return invitation, secret


def _new_link(
    session: Session, kind: str, *, ttl: timedelta, actor: User | None, **fields: object
) -> tuple[Invitation, str]:
    secret = secrets.token_urlsafe(32)
    invitation = Invitation(
        kind=kind,
        token_hash=hash_token(secret),
        expires_at=utcnow() + ttl,
        created_by_id=actor.id if actor else None,
        **fields,
    )
    session.add(invitation)
    session.flush()
    return invitation, secret


def revoke_invitation(session: Session, invitation_id: int, actor: User | None) -> None:
    invitation = session.get(Invitation, invitation_id)
    if invitation is None:
        raise NotFound("no such invitation", {"invitation": "no such invitation"})
    if invitation.used_at is None and invitation.revoked_at is None:
        invitation.revoked_at = utcnow()
        audit.record(session, "user.invitation_revoked", user=actor, email=invitation.email)


def live_link(session: Session, secret: str) -> Invitation | None:
    """The unused, unrevoked, unexpired link with this secret, or None."""
    invitation = session.scalar(
        select(Invitation).where(Invitation.token_hash == hash_token(secret))
    )
    if invitation is None or invitation.used_at or invitation.revoked_at:
        return None
    if invitation.expires_at <= utcnow():
        return None
    if invitation.kind == "reset" and (invitation.user is None or not invitation.user.is_active):
        return None
    return invitation


def use_link(session: Session, secret: str, password: str, display_name: str = "") -> User:
    """Create the invited account, or set the new password, and spend the link.

    Raises NotFound if the link is unknown, used, revoked or expired; ValidationFailed
    (field "password") if the password is too short.
    """
    invitation = live_link(session, secret)
    if invitation is None:
        raise NotFound("this link is invalid, expired or already used", {"link": "not valid"})
    if len(password) < MIN_PASSWORD:
        raise ValidationFailed(
            "password too short", {"password": f"must be at least {MIN_PASSWORD} characters"}
        )
    # Spend the link first, with a condition, so two tabs cannot both use it.
    spent = session.execute(
        update(Invitation)
        .where(Invitation.id == invitation.id, Invitation.used_at.is_(None))
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if rowcount(spent) != 1:
        raise NotFound("this link was just used", {"link": "already used"})
    if invitation.kind == "invite":
        user = accounts.create_user(
            session,
            invitation.email,
            invitation.role,
            password,
            display_name=display_name.strip()[:120] or invitation.display_name,
        )
        invitation.user_id = user.id
        audit.record(session, "user.invitation_accepted", user=user, email=user.email)
    else:
        user = invitation.user
        user.password_hash = generate_password_hash(password)
        audit.record(session, "user.password_reset", user=user, target=user.email)
    return user


def _active_admins(session: Session) -> int:
    return (
        session.scalar(
            select(func.count(User.id)).where(User.role == "admin", User.is_active.is_(True))
        )
        or 0
    )


def _guard_admin_removal(session: Session, user: User, actor: User | None, what: str) -> None:
    if actor is not None and actor.id == user.id:
        raise Forbidden(f"you cannot {what} yourself", {"user": f"cannot {what} yourself"})
    if user.role == "admin" and user.is_active and _active_admins(session) <= 1:
        raise Conflict(f"cannot {what} the last active admin", {"user": "the last active admin"})


def set_role(session: Session, user: User, role: str, actor: User | None) -> bool:
    """Give the user another role; True if it changed."""
    if role not in ROLES:
        raise ValidationFailed("invalid role", {"role": f"must be one of {', '.join(ROLES)}"})
    if role == user.role:
        return False
    if user.role == "admin":
        _guard_admin_removal(session, user, actor, "demote")
    old = user.role
    user.role = role
    audit.record(session, "user.role_changed", user=actor, target=user.email, old=old, new=role)
    return True


def set_active(session: Session, user: User, active: bool, actor: User | None) -> bool:
    """Deactivate (sessions and tokens stop working at once) or reactivate; True if changed."""
    if user.is_active == active:
        return False
    if not active:
        _guard_admin_removal(session, user, actor, "deactivate")
        # Their pending reset links die with the account.
        _revoke_pending(session, Invitation.kind == "reset", Invitation.user_id == user.id)
    user.is_active = active
    audit.record(
        session, "user.activated" if active else "user.deactivated", user=actor, target=user.email
    )
    return True


def set_display_name(session: Session, user: User, name: str, actor: User | None) -> bool:
    name = name.strip()
    if len(name) > 120:
        raise ValidationFailed("name too long", {"display_name": "at most 120 characters"})
    if name == user.display_name:
        return False
    user.display_name = name
    audit.record(session, "user.renamed", user=actor, target=user.email, name=name)
    return True
