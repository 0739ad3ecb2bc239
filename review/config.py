"""Settings. This is the only module that reads the process environment.

`settings_from_env()` is called by `create_app()` when no config is passed, and by
command-line entry points; nothing here runs at import time.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
INSTANCE_DIR = REPO_ROOT / "instance"
DEFAULT_DATABASE_URL = f"sqlite:///{INSTANCE_DIR / 'workbench.db'}"
DEFAULT_EXPORT_DIR = INSTANCE_DIR / "exports"
# Days a dataset snapshot's files are kept; its metadata and datasheet stay for good.
DEFAULT_EXPORT_RETENTION_DAYS = 90


def _secret_key() -> str:
    """SECRET_KEY from the environment, else one kept in instance/ so sessions survive restarts."""
    if key := os.environ.get("SECRET_KEY"):
        return key
    INSTANCE_DIR.mkdir(exist_ok=True)
    key_file = INSTANCE_DIR / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_hex(32))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


RATE_LIMIT_SETTINGS = ("LOGIN_FAILURES_PER_ACCOUNT", "LOGIN_FAILURES_PER_ADDRESS", "API_RATE_LIMIT")


def database_url() -> str:
    return os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)


def settings_from_env() -> dict[str, object]:
    """The app's configuration as read from the environment, with development defaults."""
    return {
        "SECRET_KEY": _secret_key(),
        # Earlier keys, comma-separated, while SECRET_KEY is rotated: sessions signed and
        # webhook secrets sealed under them still open (review/sealed_secrets.py).
        "SECRET_KEY_FALLBACKS": [
            key for key in os.environ.get("SECRET_KEY_FALLBACKS", "").split(",") if key
        ],
        "DATABASE_URL": database_url(),
        "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        "RQ_QUEUE_NAME": os.environ.get("RQ_QUEUE_NAME", "workbench"),
        "ANTHROPIC_API_KEY": os.environ.get("ANTHROPIC_API_KEY"),
        "ANTHROPIC_BASE_URL": os.environ.get("ANTHROPIC_BASE_URL"),
        "AI_TIMEOUT_SECONDS": float(os.environ.get("AI_TIMEOUT_SECONDS", "30")),
        "AI_MAX_CONCURRENT_CALLS": int(os.environ.get("AI_MAX_CONCURRENT_CALLS", "8")),
        "AI_SLOT_WAIT_SECONDS": float(os.environ.get("AI_SLOT_WAIT_SECONDS", "10")),
        # The per-queue circuit breaker: failures in a row that open it, seconds it stays open.
        "AI_BREAKER_FAILURES": int(os.environ.get("AI_BREAKER_FAILURES", "5")),
        "AI_BREAKER_COOLDOWN_SECONDS": float(os.environ.get("AI_BREAKER_COOLDOWN_SECONDS", "60")),
        # Seconds between attempts of a failing Claude call; one retry per entry.
        "AI_RETRY_INTERVALS": [
            int(s) for s in os.environ.get("AI_RETRY_INTERVALS", "5,15,45,120").split(",") if s
        ],
        # Batch mode (workers/claude_batch.py): how long items gather before a batch is
        # sent, how often a running batch is checked, and the most items one batch holds.
        "AI_BATCH_COLLECT_SECONDS": float(os.environ.get("AI_BATCH_COLLECT_SECONDS", "60")),
        "AI_BATCH_POLL_SECONDS": float(os.environ.get("AI_BATCH_POLL_SECONDS", "60")),
        "AI_BATCH_MAX_ITEMS": int(os.environ.get("AI_BATCH_MAX_ITEMS", "1000")),
        "SESSION_COOKIE_SECURE": os.environ.get("SESSION_COOKIE_SECURE", "0") == "1",
        # Rate limits in the `limits` notation ("5 per 15 minutes"); unset keeps the defaults
        # in review/web/rate_limits.py.
        **{key: os.environ[key] for key in RATE_LIMIT_SETTINGS if os.environ.get(key)},
        "LEASE_SECONDS": int(os.environ.get("LEASE_SECONDS", "300")),
        "COUNTS_CACHE_SECONDS": float(os.environ.get("COUNTS_CACHE_SECONDS", "2")),
        "SWEEP_INTERVAL_SECONDS": int(os.environ.get("SWEEP_INTERVAL_SECONDS", "30")),
        "SWEEP_PENDING_AFTER_SECONDS": int(os.environ.get("SWEEP_PENDING_AFTER_SECONDS", "60")),
        "AUDIT_SEAL_GRACE_SECONDS": int(os.environ.get("AUDIT_SEAL_GRACE_SECONDS", "300")),
        "AUDIT_INLINE_VERIFY_MAX": int(os.environ.get("AUDIT_INLINE_VERIFY_MAX", "50000")),
        "EXPORT_DIR": os.environ.get("EXPORT_DIR", str(DEFAULT_EXPORT_DIR)),
        "WEBHOOK_TIMEOUT_SECONDS": float(os.environ.get("WEBHOOK_TIMEOUT_SECONDS", "10")),
        # Seconds between attempts of a failing webhook delivery; one retry per entry.
        "WEBHOOK_RETRY_INTERVALS": [
            int(s)
            for s in os.environ.get("WEBHOOK_RETRY_INTERVALS", "10,60,300,1800,7200").split(",")
            if s
        ],
        # Logs as JSON Lines (default) or "text" lines; review/structured_logging.py.
        "LOG_FORMAT": os.environ.get("LOG_FORMAT", "json"),
        "LOG_LEVEL": os.environ.get("LOG_LEVEL", "INFO"),
        # The bearer secret Prometheus sends to /metrics (unset: only admin API tokens).
        "METRICS_TOKEN": os.environ.get("METRICS_TOKEN") or None,
        "EXPORT_RETENTION_DAYS": int(
            os.environ.get("EXPORT_RETENTION_DAYS", str(DEFAULT_EXPORT_RETENTION_DAYS))
        ),
    }
