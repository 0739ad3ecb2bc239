"""Worker logging: every record stamped with the id of the RQ job being run ("-" outside one)."""

from __future__ import annotations

import logging

from rq import get_current_job

LOG_FORMAT = "%(asctime)s %(levelname)s [job %(job_id)s] %(name)s: %(message)s"


class JobIdFilter(logging.Filter):
    """Adds `job_id` to each record so formatters can print it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            job = get_current_job()
        except Exception:  # no Redis connection bound yet; never lose a log line over it
            job = None
        record.job_id = job.id if job is not None else "-"
        return True


def configure_worker_logging(level: int = logging.INFO) -> None:
    """One stderr handler on the root logger, so our loggers and RQ's share the stamp."""
    root = logging.getLogger()
    if any(isinstance(f, JobIdFilter) for h in root.handlers for f in h.filters):
        return
    handler = logging.StreamHandler()
    handler.addFilter(JobIdFilter())
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root.addHandler(handler)
    root.setLevel(level)
