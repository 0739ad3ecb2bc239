"""Where each role lands, and which redirect targets are safe to follow."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import url_for

from models import User


def home_url(user: User) -> str:
    """The page a user starts on: the ML team's exports, everyone else's queue list."""
    if user.role == "ml":
        return url_for("exports.index")
    return url_for("queue.index")


def safe_next(target: str | None) -> str | None:
    """`target` if it is a path on this site, else None (never follow a link off-site)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or any(ord(char) < 32 for char in target):
        return None
    return target
