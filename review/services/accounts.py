"""Users, passwords and API tokens."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload
from werkzeug.security import check_password_hash, generate_password_hash

from models import ApiToken, User
from models.base import utcnow
from models.user import ROLES
from review.services import audit
from review.services.errors import Conflict, NotFound, ValidationFailed

TOKEN_PREFIX = "rwb_"
# What an API token may be allowed to do. Every API route requires exactly one of these:
# ingest (send items), read (GET anything the user may see), decide (a person's decisions:
# item decisions and policy versions), export (decision exports and dataset snapshots),
# admin (queues, webhooks and other administration).
SCOPES = ("ingest", "read", "decide", "export", "admin")
# The scopes a role's token may hold; admins may hold them all.
ROLE_SCOPES: dict[str, tuple[str, ...]] = {
    "reviewer": ("read", "decide"),
    "policy_owner": ("ingest", "read", "decide"),
    "ml": ("read", "export"),
    "admin": SCOPES,
}
MAX_TOKEN_LIFETIME = timedelta(days=3650)
_DURATION_RE = re.compile(r"(\d{1,7})\s*([dhm]?)")
_DURATION_UNITS = {"d": "days", "h": "hours", "m": "minutes"}
# werkzeug's scrypt with N=2**15, r=8, p=1 (about 32 MiB and tens of ms per check).
PASSWORD_METHOD = "scrypt:32768:8:1"
# A hash of a dummy password, checked when the email is unknown so both paths take equal time.
_DUMMY_HASH = generate_password_hash("not-a-real-password", method=PASSWORD_METHOD)


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
        password_hash=hash_password(password),
    )
    session.add(user)
    session.flush()
    audit.record(session, "user.created", email=email, role=role)
    return user


def hash_password(password: str) -> str:
    return generate_password_hash(password, method=PASSWORD_METHOD)


def needs_rehash(password_hash: str) -> bool:
    """True if the hash was made with another algorithm or weaker parameters than ours."""
    return password_hash.split("$", 1)[0] != PASSWORD_METHOD


def authenticate(session: Session, email: str, password: str) -> User | None:
    """The active user with this email and password, or None.

    A hash made with older parameters is replaced on a good login, the one moment the
    plaintext is at hand, so stored hashes move to the current algorithm over time.
    """
    user = session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None:
        check_password_hash(_DUMMY_HASH, password)
        return None
    if not check_password_hash(user.password_hash, password) or not user.is_active:
        return None
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user


def scopes_for_role(role: str) -> tuple[str, ...]:
    """Every scope a token of a user with this role may carry."""
    return ROLE_SCOPES.get(role, ())


def parse_scopes(user: User, scopes: Iterable[str] | None) -> list[str]:
    """The scopes asked for, checked against the user's role; None means all the role allows.

    Kept in SCOPES order, so the same set is always stored and shown the same way.
    """
    allowed = scopes_for_role(user.role)
    if scopes is None:
        return list(allowed)
    wanted = {s.strip().lower() for s in scopes if s.strip()}
    if not wanted:
        raise ValidationFailed("a token needs a scope", {"scopes": "choose at least one"})
    if unknown := wanted - set(SCOPES):
        problem = f"unknown: {', '.join(sorted(unknown))}; use {', '.join(SCOPES)}"
        raise ValidationFailed("unknown scope", {"scopes": problem})
    if beyond := wanted - set(allowed):
        raise ValidationFailed(
            "scope beyond the user's role",
            {"scopes": f"a {user.role} may not hold {', '.join(sorted(beyond))}"},
        )
    return [s for s in SCOPES if s in wanted]


def parse_expires_in(text: str | None, now: datetime) -> datetime | None:
    """`30d`, `12h`, `90m` (or a bare number of days) from now; empty means never."""
    text = (text or "").strip().lower()
    if not text:
        return None
    match = _DURATION_RE.fullmatch(text)
    amount = int(match.group(1)) if match else 0
    if not match or amount <= 0:
        raise ValidationFailed(
            "bad expiry", {"expires_in": "a number of days, hours or minutes, like 30d, 12h, 90m"}
        )
    delta = timedelta(**{_DURATION_UNITS[match.group(2) or "d"]: amount})
    if delta > MAX_TOKEN_LIFETIME:
        raise ValidationFailed("expiry too far", {"expires_in": "at most 3650 days"})
    return now + delta


def create_token(
    session: Session,
    user: User,
    name: str = "",
    expires_at: datetime | None = None,
    scopes: Iterable[str] | None = None,
    actor: User | None = None,
) -> tuple[ApiToken, str]:
    """A new token for the user. The plaintext is returned once and never stored.

    `scopes` None gives every scope the user's role allows; `actor` is who made it (an
    admin in the UI), the user themself when not given.
    """
    if not user.is_active:
        raise ValidationFailed("deactivated user", {"user": f"{user.email} is deactivated"})
    if len(name) > 120:
        raise ValidationFailed("name too long", {"name": "at most 120 characters"})
    chosen = parse_scopes(user, scopes)
    plaintext = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        user=user,
        name=name,
        prefix=plaintext[: len(TOKEN_PREFIX) + 6],
        token_hash=hash_token(plaintext),
        expires_at=expires_at,
        scopes=chosen,
    )
    session.add(token)
    session.flush()
    audit.record(
        session,
        "token.created",
        user=actor or user,
        token_id=token.id,
        prefix=token.prefix,
        owner=user.email,
        scopes=chosen,
        expires_at=expires_at.isoformat() if expires_at else None,
    )
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


def token_allows(token: ApiToken, scope: str) -> bool:
    """True if the token carries the scope and its user's role (today's, not the role at
    creation) still allows it, so a demoted user's old tokens lose what the role lost."""
    return scope in (token.scopes or ()) and scope in scopes_for_role(token.user.role)


def list_tokens(session: Session) -> list[ApiToken]:
    """Every token, live ones first, newest first within each group."""
    query = (
        select(ApiToken)
        .options(joinedload(ApiToken.user))
        .order_by(ApiToken.revoked_at.is_not(None), ApiToken.created_at.desc(), ApiToken.id.desc())
    )
    return list(session.scalars(query))


def token_by_prefix(session: Session, prefix: str) -> ApiToken:
    """The one token shown in lists with this prefix (the CLI names tokens this way)."""
    found = list(session.scalars(select(ApiToken).where(ApiToken.prefix == prefix.strip())))
    if not found:
        raise NotFound(f"no token {prefix}", {"prefix": "no such token"})
    if len(found) > 1:
        raise Conflict(f"several tokens start {prefix}", {"prefix": "revoke it in the admin UI"})
    return found[0]


def revoke_token(session: Session, token_id: int, actor: User | None) -> ApiToken:
    """Revoke a token at once. Revoking a revoked token changes nothing (and is not audited)."""
    token = session.get(ApiToken, token_id)
    if token is None:
        raise NotFound(f"no token {token_id}", {"token": "no such token"})
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        audit.record(
            session,
            "token.revoked",
            user=actor,
            token_id=token.id,
            prefix=token.prefix,
            owner=token.user.email,
        )
    return token
