"""Logging for the web app and the workers, configured in one place.

Every record carries `request_id` (inside a web request) and `job_id` (inside an RQ job),
"-" elsewhere, so one request or one job can be followed through the logs of every
process. The default output is JSON Lines, one object per record, for log shippers;
`LOG_FORMAT=text` gives a readable line for a terminal.

The request id is the caller's `X-Request-Id` when it looks like an id (a proxy or the
client's own tracing set it), otherwise a fresh one; the response echoes it either way.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, g, has_request_context, request

REQUEST_ID_HEADER = "X-Request-Id"
# Letters, digits and a few separators, so a hostile header cannot forge log lines.
REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")
TEXT_FORMAT = "%(asctime)s %(levelname)s [req %(request_id)s job %(job_id)s] %(name)s: %(message)s"
# LogRecord's own attributes; anything else on a record came from `extra=` and is logged.
_RECORD_FIELDS = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}
access_log = logging.getLogger("review.access")


def current_request_id() -> str | None:
    """The id of the request being served, or None outside a request."""
    return g.get("request_id") if has_request_context() else None


class LogContextFilter(logging.Filter):
    """Stamps each record with the request id and RQ job id it was logged under."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id() or "-"
        try:
            from rq import get_current_job

            job = get_current_job()
        except Exception:  # no Redis connection bound yet: never lose a log line over it
            job = None
        record.job_id = job.id if job is not None else "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, ids, extras, traceback."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
            "job_id": getattr(record, "job_id", "-"),
        }
        for key, value in record.__dict__.items():
            if key not in _RECORD_FIELDS and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure_logging(fmt: str = "json", level: str | int = "INFO") -> None:
    """One stderr handler on the root logger, so ours, Flask's and RQ's records share it.

    Idempotent: a second call (another app in the same process, a worker's child) keeps
    the handler already installed.
    """
    root = logging.getLogger()
    if any(isinstance(f, LogContextFilter) for h in root.handlers for f in h.filters):
        return
    handler = logging.StreamHandler()
    handler.addFilter(LogContextFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root.addHandler(handler)
    root.setLevel(level)


def _incoming_request_id() -> str:
    given = request.headers.get(REQUEST_ID_HEADER, "")
    return given if REQUEST_ID_RE.fullmatch(given) else uuid.uuid4().hex


def init_app(app: Flask) -> None:
    """Request ids on every request and response, an access line per request, and the
    process's log handler (unless LOG_FORMAT is "off", which leaves logging alone)."""
    if app.config.get("LOG_FORMAT", "json") != "off":
        configure_logging(app.config.get("LOG_FORMAT", "json"), app.config.get("LOG_LEVEL", "INFO"))

    @app.before_request
    def _start_request() -> None:
        g.request_id = _incoming_request_id()
        g.request_started = time.perf_counter()

    @app.after_request
    def _finish_request(response: Response) -> Response:
        request_id = g.get("request_id")
        if request_id:
            response.headers[REQUEST_ID_HEADER] = request_id
        started = g.get("request_started")
        access_log.info(
            "%s %s %s",
            request.method,
            request.path,
            response.status_code,
            extra={
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": round((time.perf_counter() - started) * 1000, 1)
                if started
                else None,
            },
        )
        return response
