"""Users, passwords and API tokens."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from models import ApiToken, User
from models.base import utcnow
from models.user import ROLES
from review.services import audit
from review.services.errors import Conflict, ValidationFailed

TOKEN_PREFIX = "rwb_"
# A hash of a dummy password, checked when the email is unknown so both paths take equal time.
_DUMMY_HASH = generate_password_hash("not-a-real-password")


def hash_token(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def create_user(
    session: Session, email: str, role: str, password: str, display_name: str = ""
) -> User:
    email = email.strip().lower()
    errors = {}
    if "@" not in email or len(email) > 254:
        errors["email"] = "must be an email address"
    if role not in ROLES:
        errors["role"] = f"must be one of {', '.join(ROLES)}"
    if len(password) < 8:
        errors["password"] = "must be at least 8 characters"
    if errors:
        raise ValidationFailed("invalid user", errors)
    if session.scalar(select(User).where(User.email == email)):
        raise Conflict(f"user {email} already exists", {"email": "already exists"})
    user = User(
        email=email,
        role=role,
        display_name=display_name,
        password_hash=generate_password_hash(password),
    )
    session.add(user)
    session.flush()
    audit.record(session, "user.created", email=email, role=role)
    return user


def authenticate(session: Session, email: str, password: str) -> User | None:
    """The active user with this email and password, or None."""
    user = session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None:
        check_password_hash(_DUMMY_HASH, password)
        return None
    if not check_password_hash(user.password_hash, password) or not user.is_active:
        return None
    return user


def create_token(
    session: Session, user: User, name: str = "", expires_at: datetime | None = None
) -> tuple[ApiToken, str]:
    """A new token for the user. The plaintext is returned once and never stored."""
    plaintext = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        user=user,
        name=name,
        prefix=plaintext[: len(TOKEN_PREFIX) + 6],
        token_hash=hash_token(plaintext),
        expires_at=expires_at,
    )
    session.add(token)
    session.flush()
    audit.record(session, "token.created", user=user, token_id=token.id, prefix=token.prefix)
    return token, plaintext


def token_for_secret(session: Session, plaintext: str) -> ApiToken | None:
    """The live token (not revoked, not expired, active user) matching this secret."""
    token = session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(plaintext)))
    if token is None or token.revoked_at is not None or not token.user.is_active:
        return None
    now = utcnow()
    if token.expires_at is not None and token.expires_at <= now:
        return None
    token.last_used_at = now
    return token
