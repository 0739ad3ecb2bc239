"""Decision webhooks without I/O: the signature receivers check, and when to try again.

A receiver verifies a delivery by recomputing
`sha256=<hex of HMAC-SHA256(secret, timestamp + "." + body)>` over the raw body and the
X-Webhook-Timestamp header, comparing in constant time, and refusing old timestamps.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from urllib.parse import urlsplit

SIGNATURE_PREFIX = "sha256="
MIN_SECRET_LENGTH = 16
MAX_SECRET_LENGTH = 256
MAX_URL_LENGTH = 2000


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The X-Webhook-Signature value for a body sent at `timestamp` (Unix seconds)."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return SIGNATURE_PREFIX + mac.hexdigest()


def signature_matches(secret: str, timestamp: str, body: bytes, header: str) -> bool:
    """True if `header` is the signature of this body and timestamp under `secret`."""
    return hmac.compare_digest(signature(secret, timestamp, body), header)


def retry_delay(intervals: Sequence[float], attempts_made: int) -> float | None:
    """Seconds to wait before the next attempt after `attempts_made` failed ones.

    One retry per interval, so there are len(intervals) + 1 attempts in all; None once
    they are spent (the event is dead). The intervals grow: that is the backoff.
    """
    if attempts_made < 1 or attempts_made > len(intervals):
        return None
    return float(intervals[attempts_made - 1])


def max_attempts(intervals: Sequence[float]) -> int:
    return len(intervals) + 1


def url_problem(url: object) -> str | None:
    """Why `url` cannot be a webhook endpoint, or None if it can."""
    if not isinstance(url, str) or not url.strip():
        return "is required: an http:// or https:// URL"
    if len(url) > MAX_URL_LENGTH:
        return f"must be at most {MAX_URL_LENGTH} characters"
    if any(c.isspace() or ord(c) < 32 for c in url):
        return "must not contain spaces or control characters"
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError for a port that is not a number in range
    except ValueError:
        return "is not a valid URL"
    if parts.scheme not in ("http", "https"):
        return "must start with http:// or https://"
    if not parts.hostname:
        return "must name a host"
    if parts.fragment:
        return "must not have a #fragment"
    del port
    return None


def secret_problem(secret: object) -> str | None:
    """Why `secret` cannot sign webhooks, or None if it can."""
    if not isinstance(secret, str):
        return f"is required: {MIN_SECRET_LENGTH} to {MAX_SECRET_LENGTH} characters"
    if not MIN_SECRET_LENGTH <= len(secret) <= MAX_SECRET_LENGTH:
        return f"must be {MIN_SECRET_LENGTH} to {MAX_SECRET_LENGTH} characters"
    if not all(33 <= ord(c) < 127 for c in secret):
        return "must be printable ASCII without spaces"
    return None
