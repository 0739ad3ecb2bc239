"""Rate limits kept in Redis with the `limits` library: failed logins (lockout) per account
and per client address, and API requests per token.

Each app gets its own rate limiter (tests build many apps in one process), stored in
`app.extensions`; the views call the helpers below rather than route decorators, because
only failed logins count toward a lockout, and the API counts per token, not per address.
Flask-Limiter, which wraps the same library, also checked its (here unused) route limits
before every request: a fiftieth of the CPU of a reviewer's decision.

Limits are strings in the `limits` notation ("5 per 15 minutes") from the app config:
LOGIN_FAILURES_PER_ACCOUNT, LOGIN_FAILURES_PER_ADDRESS and API_RATE_LIMIT. A Redis outage
fails open (logged): the limits defend against guessing and floods, and must not lock every
reviewer out while Redis restarts.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

from flask import Flask, current_app
from limits import RateLimitItem, parse
from limits.storage import storage_from_string
from limits.strategies import STRATEGIES, RateLimiter
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

DEFAULTS = {
    "LOGIN_FAILURES_PER_ACCOUNT": "5 per 15 minutes",
    "LOGIN_FAILURES_PER_ADDRESS": "20 per 15 minutes",
    "API_RATE_LIMIT": "600 per minute",
    "RATELIMIT_STRATEGY": "moving-window",
    # Redis keys start workbench-limits:LIMITER/..., apart from the job queue's.
    "RATELIMIT_STORAGE_OPTIONS": {"key_prefix": "workbench-limits"},
}
_EXTENSION = "workbench_limiter"


def init_app(app: Flask) -> None:
    for key, value in DEFAULTS.items():
        app.config.setdefault(key, value)
    # The same Redis as the job queue unless configured apart (tests use their own db).
    app.config.setdefault("RATELIMIT_STORAGE_URI", app.config.get("REDIS_URL") or "memory://")
    storage = storage_from_string(
        app.config["RATELIMIT_STORAGE_URI"], **app.config["RATELIMIT_STORAGE_OPTIONS"]
    )
    app.extensions[_EXTENSION] = STRATEGIES[app.config["RATELIMIT_STRATEGY"]](storage)


def _strategy() -> RateLimiter:
    limiter: RateLimiter = current_app.extensions[_EXTENSION]
    return limiter


def _limit(config_key: str) -> RateLimitItem:
    return parse(current_app.config[config_key])


def _seconds_until_free(item: RateLimitItem, *keys: str) -> int:
    reset_at = _strategy().get_window_stats(item, *keys).reset_time
    return max(1, math.ceil(reset_at - time.time()))


@dataclass(frozen=True)
class Blocked:
    """Why a request is refused and when to try again."""

    reason: str
    retry_after: int  # seconds


def login_lockout(email: str, address: str) -> Blocked | None:
    """Blocked if this account or this address has used up its failed logins."""
    checks = (
        ("account", "LOGIN_FAILURES_PER_ACCOUNT", email),
        ("address", "LOGIN_FAILURES_PER_ADDRESS", address),
    )
    try:
        for reason, config_key, who in checks:
            item = _limit(config_key)
            if not _strategy().test(item, "login-failed", reason, who):
                return Blocked(reason, _seconds_until_free(item, "login-failed", reason, who))
    except RedisError:
        log.warning("login lockout check skipped: Redis is unreachable", exc_info=True)
    return None


def record_login_failure(email: str, address: str) -> None:
    try:
        _strategy().hit(_limit("LOGIN_FAILURES_PER_ACCOUNT"), "login-failed", "account", email)
        _strategy().hit(_limit("LOGIN_FAILURES_PER_ADDRESS"), "login-failed", "address", address)
    except RedisError:
        log.warning("failed login not counted: Redis is unreachable", exc_info=True)


def forget_login_failures(email: str) -> None:
    """After a good login the account starts afresh (the address's count stays)."""
    try:
        _strategy().clear(_limit("LOGIN_FAILURES_PER_ACCOUNT"), "login-failed", "account", email)
    except RedisError:
        log.warning("failed logins not cleared: Redis is unreachable", exc_info=True)


def api_request_blocked(token_id: int) -> Blocked | None:
    """Count one API request for the token; Blocked once it is over API_RATE_LIMIT."""
    item = _limit("API_RATE_LIMIT")
    try:
        if _strategy().hit(item, "api-token", str(token_id)):
            return None
        return Blocked("token", _seconds_until_free(item, "api-token", str(token_id)))
    except RedisError:
        log.warning("API rate limit skipped: Redis is unreachable", exc_info=True)
        return None
