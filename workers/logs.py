"""Worker logging: the app's structured logging (review/structured_logging.py), where every
record carries the id of the RQ job being run ("-" outside one)."""

from __future__ import annotations

from flask import current_app

from review.structured_logging import LogContextFilter, configure_logging

# The filter that stamps `job_id` (and `request_id`) on records; kept under its old name.
JobIdFilter = LogContextFilter


def configure_worker_logging() -> None:
    """The app's log format and level (LOG_FORMAT, LOG_LEVEL), for the worker process."""
    fmt = current_app.config.get("LOG_FORMAT", "json")
    configure_logging("text" if fmt == "off" else fmt, current_app.config.get("LOG_LEVEL", "INFO"))
