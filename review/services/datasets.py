"""Dataset snapshots: immutable, numbered, content-addressed exports of a queue's decisions.

Life of a snapshot: `create_snapshot` fixes its rows (a watermark on review ids plus a
filter) and numbers it; the view commits and `enqueue_build` hands its id to the RQ job
(workers/dataset_jobs.py), which claims it, writes the files into a temporary folder
through `write_snapshot`, renames the folder into place and marks it succeeded, or marks
it failed with the error. `expire_snapshots` deletes the files of old snapshots and keeps
their metadata. Downloads go through `download_target`, which writes the audit log.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from models import DatasetSnapshot, Queue, User
from models.dataset import SNAPSHOT_FORMATS
from review.config import DEFAULT_EXPORT_DIR, DEFAULT_EXPORT_RETENTION_DAYS
from review.domain.datasets import DatasheetStats
from review.gc_pause import garbage_collection_paused
from review.heap_reuse import freed_memory_reused
from review.services import audit
from review.services.dataset_rows import (
    REVIEWER_IDENTITIES,
    RowBuilder,
    RowCount,
    SnapshotFilter,
    Watermark,
    capture_watermark,
    count_query,
    iter_column_batches,
    parse_filter,
    rows_query,
)
from review.services.dataset_writers import InOrderThread, WrittenFile, canonical_lines, open_writer
from review.services.datasheet import build_datasheet, render_card
from review.services.errors import Conflict, Forbidden, NotFound, ServiceError, ValidationFailed
from review.services.statements import rowcount

if TYPE_CHECKING:
    from rq import Queue as RqQueue

log = logging.getLogger(__name__)

BUILD_JOB = "workers.dataset_jobs.build_snapshot"
BUILD_JOB_TIMEOUT_SECONDS = 3 * 3600
# A snapshot "running" for longer than its job may live was left by a dead worker.
STALE_RUNNING = timedelta(seconds=BUILD_JOB_TIMEOUT_SECONDS + 300)
# Rows per fetch: large enough that per-batch costs vanish, small enough that the batches
# in flight (two read ahead, one being encoded: rows, columns, lines, bytes) stay a few
# tens of MB. 5,000 put the JSONL build at 198 MB of its 200 MB budget; 2,500 measured
# no slower. Parquet also holds a row group being gathered and one being written: its
# batches are half as large (201 MB at 2,500 a batch, 186 MB at 1,250; the machine too
# loaded to tell their speeds apart).
BATCH_ROWS = 2_500
PARQUET_BATCH_ROWS = 1_250
# First key of the PostgreSQL advisory lock that numbers snapshots (the queue id is the second).
ADVISORY_LOCK_CLASS = 7007
REQUEST_KEYS = {"format", "filter", "since_snapshot", "reviewer_identity"}


class Gone(ServiceError):
    status = 410
    code = "gone"


@dataclass(frozen=True)
class ExportSettings:
    export_dir: Path
    retention_days: int  # 0 keeps files forever
    secret_key: str

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ExportSettings:
        """From the app's config: EXPORT_DIR, EXPORT_RETENTION_DAYS, SECRET_KEY."""
        return cls(
            export_dir=Path(config.get("EXPORT_DIR") or DEFAULT_EXPORT_DIR),
            retention_days=int(config.get("EXPORT_RETENTION_DAYS", DEFAULT_EXPORT_RETENTION_DAYS)),
            secret_key=str(config["SECRET_KEY"]),
        )


@dataclass(frozen=True)
class SnapshotRequest:
    format: str
    filter: SnapshotFilter
    since: DatasetSnapshot | None
    reviewer_identity: str


def may_see_reviewer_names(user: User) -> bool:
    """Admins may export reviewers' emails; everyone else gets pseudonyms."""
    return user.role == "admin"


# --- creating -------------------------------------------------------------------------


def _since_snapshot(session: Session, queue: Queue, raw: Any) -> DatasetSnapshot:
    """The snapshot named by `since_snapshot`: its id, or "v<N>" for version N of the queue."""
    snapshot = None
    # Ids and versions are 32-bit columns on PostgreSQL: a larger number names nothing, and
    # the database would refuse to compare with it (a 500).
    if isinstance(raw, int) and not isinstance(raw, bool):
        snapshot = session.get(DatasetSnapshot, raw) if 0 < raw < 2**31 else None
    elif isinstance(raw, str) and raw[:1] == "v" and raw[1:].isdigit() and len(raw) < 11:
        snapshot = session.scalar(
            select(DatasetSnapshot).where(
                DatasetSnapshot.queue_id == queue.id, DatasetSnapshot.version == int(raw[1:])
            )
        )
    else:
        raise ValidationFailed(
            "since_snapshot must be a snapshot id or a version such as v3",
            {"since_snapshot": "must be a snapshot id (integer) or a version such as v3"},
        )
    if snapshot is None or snapshot.queue_id != queue.id:
        raise ValidationFailed(
            "no such snapshot of this queue", {"since_snapshot": "no such snapshot of this queue"}
        )
    if snapshot.status == "failed":
        raise ValidationFailed(
            f"v{snapshot.version} failed; continue from a snapshot that succeeded",
            {"since_snapshot": f"v{snapshot.version} failed"},
        )
    return snapshot


def parse_request(
    session: Session, queue: Queue, user: User, data: Any, now: datetime
) -> SnapshotRequest:
    """Validate a snapshot request (API body or form values).

    An incremental snapshot (`since_snapshot`) keeps the filter of the one it continues,
    so that the incrementals add up to the full snapshot; a different filter is refused.
    Only admins may ask for reviewer names (`reviewer_identity: named`).
    """
    if not isinstance(data, dict):
        raise ValidationFailed("body must be a JSON object", {"body": "must be an object"})
    errors: dict[str, str] = {}
    for key in sorted(set(data) - REQUEST_KEYS):
        errors[key] = f"unknown; use {', '.join(sorted(REQUEST_KEYS))}"
    fmt = data.get("format")
    if fmt not in SNAPSHOT_FORMATS:
        errors["format"] = f"must be one of: {', '.join(SNAPSHOT_FORMATS)}"
    identity = data.get("reviewer_identity") or "pseudonymous"
    if identity not in REVIEWER_IDENTITIES:
        errors["reviewer_identity"] = f"must be one of: {', '.join(REVIEWER_IDENTITIES)}"
    # A format that is not a string is among the errors already; the second test is for
    # the type checker.
    if errors or not isinstance(fmt, str):
        raise ValidationFailed("invalid snapshot request", errors)
    if identity == "named" and not may_see_reviewer_names(user):
        raise Forbidden(
            "only admins may export reviewer names",
            {"reviewer_identity": "only admins may ask for named reviewers"},
        )
    since = None
    if data.get("since_snapshot") is not None:
        since = _since_snapshot(session, queue, data["since_snapshot"])
    if since is not None and data.get("filter") is None:
        return SnapshotRequest(fmt, SnapshotFilter.from_dict(since.filters), since, identity)
    flt = parse_filter(data.get("filter"), queue, now)
    if since is not None and flt.as_dict() != since.filters:
        raise ValidationFailed(
            "an incremental snapshot keeps the filter of the snapshot it continues",
            {"filter": f"must be omitted or equal to the filter of v{since.version}"},
        )
    return SnapshotRequest(fmt, flt, since, identity)


def _lock_queue(session: Session, queue: Queue) -> None:
    """Serialise version numbering per queue until the transaction ends. An advisory lock
    blocks nothing but other snapshot creations (SQLite's single writer does it already)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(ADVISORY_LOCK_CLASS, queue.id)))


def create_snapshot(
    session: Session, queue: Queue, user: User, request: SnapshotRequest, now: datetime
) -> DatasetSnapshot:
    """Number a new snapshot and fix its rows at this moment. Does not commit or enqueue."""
    _lock_queue(session, queue)
    high_review, high_routing = capture_watermark(session)
    latest = session.scalar(
        select(func.max(DatasetSnapshot.version)).where(DatasetSnapshot.queue_id == queue.id)
    )
    version = (latest or 0) + 1
    snapshot = DatasetSnapshot(
        queue_id=queue.id,
        version=version,
        format=request.format,
        status="queued",
        filters=request.filter.as_dict(),
        reviewer_identity=request.reviewer_identity,
        since_snapshot_id=request.since.id if request.since else None,
        low_review_id=request.since.high_review_id if request.since else 0,
        high_review_id=max(high_review, request.since.high_review_id if request.since else 0),
        high_routing_id=high_routing,
        storage_dir=f"{queue.id}-{queue.slug}/v{version}",
        progress_rows=0,
        created_by_id=user.id,
        created_at=now,
    )
    session.add(snapshot)
    session.flush()
    audit.record(
        session,
        "dataset.snapshot_requested",
        user=user,
        queue_id=queue.id,
        snapshot_id=snapshot.id,
        version=version,
        format=request.format,
        filters=snapshot.filters,
        since_version=request.since.version if request.since else None,
        reviewer_identity=request.reviewer_identity,
    )
    return snapshot


def enqueue_build(rq_queue: RqQueue, snapshot_id: int) -> bool:
    """Hand the snapshot to a worker. False (logged) when Redis is unreachable: the
    snapshot stays queued and can be retried."""
    # Imported here: building a snapshot, which imports this module, never talks to RQ.
    from redis.exceptions import RedisError

    try:
        rq_queue.enqueue(
            BUILD_JOB,
            snapshot_id,
            job_timeout=BUILD_JOB_TIMEOUT_SECONDS,
            result_ttl=24 * 3600,
            failure_ttl=7 * 24 * 3600,
        )
    except RedisError as exc:
        log.warning("could not enqueue snapshot %d: %s", snapshot_id, exc)
        return False
    return True


def requeue_snapshot(session: Session, snapshot: DatasetSnapshot, user: User) -> None:
    """Make a failed (or never started) snapshot buildable again; the caller enqueues it."""
    if snapshot.status not in ("failed", "queued"):
        raise Conflict(
            f"v{snapshot.version} is {snapshot.status}; only a failed or queued snapshot "
            "can be retried",
            {"status": snapshot.status},
        )
    snapshot.status = "queued"
    snapshot.error = None
    audit.record(
        session,
        "dataset.snapshot_retried",
        user=user,
        queue_id=snapshot.queue_id,
        snapshot_id=snapshot.id,
        version=snapshot.version,
    )


# --- retraining from a snapshot (the ML page) --------------------------------------------

RETRAIN_JOB = "workers.dataset_jobs.retrain_snapshot"
RETRAIN_JOB_TIMEOUT_SECONDS = 3600


@dataclass(frozen=True)
class RetrainStatus:
    """Where a retrain job is: queued, started, finished or failed (RQ's words), the step
    it reported, and the error if it failed."""

    state: str
    step: str
    done: int
    steps: int
    error: str | None = None


def request_retrain(
    session: Session, rq_queue: RqQueue, snapshot: DatasetSnapshot, user: User, now: datetime
) -> str | None:
    """Audit the request and hand the snapshot to a worker that retrains the local model
    on it; the RQ job id, or None when Redis is unreachable. The caller commits first only
    if it wants the audit kept either way."""
    if snapshot.status != "succeeded":
        raise Conflict(
            f"v{snapshot.version} is {snapshot.status}; only a built snapshot can train a model",
            {"status": snapshot.status},
        )
    audit.record(
        session,
        "dataset.retrain_requested",
        user=user,
        queue_id=snapshot.queue_id,
        snapshot_id=snapshot.id,
        version=snapshot.version,
    )
    from redis.exceptions import RedisError

    try:
        job = rq_queue.enqueue(
            RETRAIN_JOB,
            snapshot.id,
            now.isoformat(),
            job_timeout=RETRAIN_JOB_TIMEOUT_SECONDS,
            result_ttl=24 * 3600,
            failure_ttl=7 * 24 * 3600,
        )
    except RedisError as exc:
        log.warning("could not enqueue the retrain of snapshot %d: %s", snapshot.id, exc)
        return None
    return str(job.id)


def retrain_status(rq_queue: RqQueue, job_id: str, snapshot_id: int) -> RetrainStatus | None:
    """The retrain job's progress from its RQ metadata; None if there is no such job for
    this snapshot (expired, or an id that is not ours)."""
    from redis.exceptions import RedisError
    from rq.exceptions import NoSuchJobError
    from rq.job import Job, JobStatus

    try:
        job = Job.fetch(job_id, connection=rq_queue.connection)
    except (NoSuchJobError, RedisError, ValueError):
        return None
    if job.func_name != RETRAIN_JOB or tuple(job.args[:1]) != (snapshot_id,):
        return None
    state = job.get_status(refresh=False)
    meta = job.get_meta(refresh=False) or {}
    error = None
    if state == JobStatus.FAILED:
        result = job.latest_result()
        error = (result.exc_string if result else None) or "failed"
        error = error.strip().splitlines()[-1][:500]
    return RetrainStatus(
        state=str(state.value if hasattr(state, "value") else state),
        step=str(meta.get("step", "waiting for a worker")),
        done=int(meta.get("done", 0)),
        steps=int(meta.get("steps", 4)),
        error=error,
    )


# --- building (called by the job) -----------------------------------------------------


def claim_for_build(session: Session, snapshot_id: int, now: datetime) -> bool:
    """Mark the snapshot running if it is queued, failed or stale; False if it is done,
    expired, gone or being built by a live worker. The caller commits."""
    claimed = session.execute(
        update(DatasetSnapshot)
        .where(
            DatasetSnapshot.id == snapshot_id,
            or_(
                DatasetSnapshot.status.in_(("queued", "failed")),
                and_(
                    DatasetSnapshot.status == "running",
                    DatasetSnapshot.started_at < now - STALE_RUNNING,
                ),
            ),
        )
        .values(status="running", started_at=now, error=None, progress_rows=0)
        .execution_options(synchronize_session=False)
    )
    return rowcount(claimed) == 1


def begin_consistent_read(session: Session) -> None:
    """Start the session's transaction as REPEATABLE READ on PostgreSQL, so the count and
    every batch of the export see one point in time. Call before the first query."""
    if session.get_bind().dialect.name == "postgresql":
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})


@dataclass(frozen=True)
class BuildResult:
    rows: int
    total: int
    sha256: str
    files: list[WrittenFile]
    datasheet: dict[str, Any]


ProgressCallback = Callable[[int, int], None]


def snapshot_dir(settings: ExportSettings, snapshot: DatasetSnapshot) -> Path:
    return settings.export_dir / snapshot.storage_dir


def write_snapshot(
    session: Session,
    snapshot: DatasetSnapshot,
    settings: ExportSettings,
    on_progress: ProgressCallback,
    batch_rows: int | None = None,
) -> BuildResult:
    """Write the snapshot's folder (data files, README card, datasheet.json) and return
    what was written. Files go to a temporary folder renamed into place at the end, so a
    crash never leaves a half-written snapshot where a finished one belongs.
    `batch_rows`: rows per fetch, by default the format's (BATCH_ROWS, PARQUET_BATCH_ROWS)."""
    if batch_rows is None:
        batch_rows = PARQUET_BATCH_ROWS if snapshot.format == "parquet" else BATCH_ROWS
    named = snapshot.reviewer_identity == "named"
    mark = Watermark(snapshot.low_review_id, snapshot.high_review_id, snapshot.high_routing_id)
    flt = SnapshotFilter.from_dict(snapshot.filters)
    on_postgresql = session.get_bind().dialect.name == "postgresql"
    query = rows_query(snapshot.queue_id, flt, mark, named, postgresql=on_postgresql)
    final = snapshot_dir(settings, snapshot)
    temporary = final.parent / f".{final.name}.tmp-{uuid.uuid4().hex}"
    count = RowCount(session, count_query(snapshot.queue_id, flt, mark))
    try:
        on_progress(0, count.known() or 0)
        temporary.mkdir(parents=True)
        rows, digest, files, stats = _write_rows(
            session, snapshot, query, settings, temporary, on_progress, count, batch_rows
        )
        total = count.result()
        if rows != total:
            raise RuntimeError(f"counted {total} rows but read {rows}; nothing was published")
        datasheet = build_datasheet(snapshot, stats, digest, files)
        (temporary / "datasheet.json").write_text(
            json.dumps(datasheet, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        (temporary / "README.md").write_text(render_card(datasheet), encoding="utf-8")
        if final.exists():  # left by a run that crashed after its rename, never published
            shutil.rmtree(final)
        os.replace(temporary, final)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        count.wait()  # its connection goes back to the pool before the error goes up
        raise
    return BuildResult(rows, total, digest, files, datasheet)


def _write_rows(
    session: Session,
    snapshot: DatasetSnapshot,
    query: Any,
    settings: ExportSettings,
    directory: Path,
    on_progress: ProgressCallback,
    count: RowCount,
    batch_rows: int,
) -> tuple[int, str, list[WrittenFile], DatasheetStats]:
    """Write the data files; (rows, content hash, files, counts). Progress is reported
    against a total of 0 until the count, running alongside, is known."""
    build = RowBuilder(
        snapshot.queue.slug, settings.secret_key, snapshot.reviewer_identity == "named"
    )
    writer = open_writer(snapshot.format, directory)
    digest = hashlib.sha256()
    hashing = InOrderThread()  # the content hash is taken off the encoding thread
    stats = DatasheetStats()
    done = 0
    try:
        # The batches' rows make no cycles (gc_pause.py); each batch's buffers reuse the
        # memory the previous one freed, not fresh pages (heap_reuse.py).
        with garbage_collection_paused(), freed_memory_reused():
            for columns in iter_column_batches(session, query, build, batch_rows):
                lines = canonical_lines(columns)
                hashing.submit(digest.update, "".join(lines).encode("utf-8"))
                stats.add_columns(columns)
                writer.write(columns, lines)
                done += len(lines)
                on_progress(done, count.known() or 0)
        hashing.close()
    except BaseException:
        try:
            hashing.close()
        finally:
            writer.abort()
        raise
    return done, digest.hexdigest(), writer.close(), stats


def finish_snapshot(
    session: Session,
    snapshot: DatasetSnapshot,
    result: BuildResult,
    settings: ExportSettings,
    now: datetime,
) -> None:
    """Record a successful build: counts, hash, files, datasheet, when the files expire."""
    snapshot.status = "succeeded"
    snapshot.row_count = result.rows
    snapshot.total_rows = result.total
    snapshot.progress_rows = result.rows
    snapshot.sha256 = result.sha256
    snapshot.files = [f.as_dict() for f in result.files]
    snapshot.datasheet = result.datasheet
    snapshot.finished_at = now
    snapshot.error = None
    if settings.retention_days > 0:
        snapshot.expires_at = now + timedelta(days=settings.retention_days)
    audit.record(
        session,
        "dataset.snapshot_built",
        queue_id=snapshot.queue_id,
        snapshot_id=snapshot.id,
        version=snapshot.version,
        rows=result.rows,
        sha256=result.sha256,
    )


def fail_snapshot(session: Session, snapshot_id: int, error: str, now: datetime) -> None:
    """Mark the snapshot failed with the error; its files were never published."""
    session.execute(
        update(DatasetSnapshot)
        .where(DatasetSnapshot.id == snapshot_id)
        .values(status="failed", error=error[:4000], finished_at=now)
        .execution_options(synchronize_session=False)
    )


def record_progress(session: Session, snapshot_id: int, done: int, total: int) -> None:
    session.execute(
        update(DatasetSnapshot)
        .where(DatasetSnapshot.id == snapshot_id, DatasetSnapshot.status == "running")
        .values(progress_rows=done, total_rows=total)
        .execution_options(synchronize_session=False)
    )


# --- retention ------------------------------------------------------------------------


def expire_snapshots(session: Session, settings: ExportSettings, now: datetime) -> list[int]:
    """Delete the files of snapshots past their expiry and mark them expired (metadata,
    hash and datasheet stay). Returns their ids. The caller commits."""
    due = session.scalars(
        select(DatasetSnapshot).where(
            DatasetSnapshot.status == "succeeded", DatasetSnapshot.expires_at <= now
        )
    ).all()
    for snapshot in due:
        shutil.rmtree(snapshot_dir(settings, snapshot), ignore_errors=True)
        snapshot.status = "expired"
        snapshot.expired_at = now
        audit.record(
            session,
            "dataset.expired",
            queue_id=snapshot.queue_id,
            snapshot_id=snapshot.id,
            version=snapshot.version,
        )
    return [snapshot.id for snapshot in due]


# --- reading --------------------------------------------------------------------------


def get_snapshot(session: Session, snapshot_id: int) -> DatasetSnapshot:
    snapshot = session.get(DatasetSnapshot, snapshot_id)
    if snapshot is None:
        raise NotFound(f"no snapshot {snapshot_id}", {"snapshot_id": "no such snapshot"})
    return snapshot


def list_snapshots(session: Session, queue: Queue) -> list[DatasetSnapshot]:
    """The queue's snapshots, newest first."""
    return list(
        session.scalars(
            select(DatasetSnapshot)
            .where(DatasetSnapshot.queue_id == queue.id)
            .order_by(DatasetSnapshot.version.desc())
        )
    )


def progress_fraction(snapshot: DatasetSnapshot) -> float | None:
    if snapshot.status in ("succeeded", "expired"):
        return 1.0
    if not snapshot.total_rows:
        return 0.0 if snapshot.status == "running" and snapshot.total_rows == 0 else None
    return min(1.0, snapshot.progress_rows / snapshot.total_rows)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def snapshot_as_dict(snapshot: DatasetSnapshot) -> dict[str, Any]:
    """The API's view of a snapshot (links are added by the web layer)."""
    base = snapshot.since_snapshot
    return {
        "id": snapshot.id,
        "queue": snapshot.queue.slug,
        "version": snapshot.version,
        "name": f"v{snapshot.version}",
        "format": snapshot.format,
        "status": snapshot.status,
        "progress": {
            "rows": snapshot.progress_rows,
            "total": snapshot.total_rows,
            "fraction": progress_fraction(snapshot),
        },
        "row_count": snapshot.row_count,
        "sha256": snapshot.sha256,
        "filter": snapshot.filters,
        "reviewer_identity": snapshot.reviewer_identity,
        "since_snapshot": ({"id": base.id, "version": base.version} if base is not None else None),
        "watermark": {
            "low_review_id_exclusive": snapshot.low_review_id,
            "high_review_id": snapshot.high_review_id,
        },
        "files": snapshot.files or [],
        "datasheet": snapshot.datasheet,
        "evaluation": snapshot.evaluation,
        "error": snapshot.error,
        "created_by": snapshot.created_by.email if snapshot.created_by else None,
        "created_at": _iso(snapshot.created_at),
        "started_at": _iso(snapshot.started_at),
        "finished_at": _iso(snapshot.finished_at),
        "expires_at": _iso(snapshot.expires_at),
        "expired_at": _iso(snapshot.expired_at),
    }


# --- downloading ----------------------------------------------------------------------

METADATA_FILES = ("README.md", "datasheet.json")
MIMETYPES = {
    "jsonl": "application/x-ndjson",
    "csv": "text/csv",
    "parquet": "application/vnd.apache.parquet",
    "md": "text/markdown",
    "json": "application/json",
    "zip": "application/zip",
}


@dataclass(frozen=True)
class DownloadTarget:
    """What to send: one file (`path`), or the whole folder as a zip (`path` is None)."""

    filename: str
    mimetype: str
    directory: Path
    path: Path | None
    members: tuple[str, ...]


def download_target(
    session: Session,
    snapshot: DatasetSnapshot,
    user: User,
    settings: ExportSettings,
    now: datetime,
    *,
    file: str | None,
    via: str,
) -> DownloadTarget:
    """Check the snapshot can be downloaded, record the download, say what to send.

    `file` is one of the snapshot's files (e.g. data/train.parquet, README.md); None
    means the whole dataset folder as a zip. Raises Gone once the files have expired.
    """
    if snapshot.status == "expired" or (snapshot.expires_at and snapshot.expires_at <= now):
        raise Gone(
            f"v{snapshot.version} expired; its files were deleted (the datasheet remains)",
            {"snapshot": "expired"},
        )
    if snapshot.status != "succeeded":
        raise Conflict(
            f"v{snapshot.version} is {snapshot.status}, not ready to download",
            {"status": snapshot.status},
        )
    directory = snapshot_dir(settings, snapshot)
    if not directory.is_dir():
        raise Gone(
            f"the files of v{snapshot.version} are missing from the export folder",
            {"snapshot": "files missing"},
        )
    members = (*METADATA_FILES, *(f["path"] for f in snapshot.files or []))
    if file is not None and file not in members:
        raise NotFound(
            f"v{snapshot.version} has no file {file[:100]!r}",
            {"file": f"must be one of: {', '.join(members)}"},
        )
    stem = f"{snapshot.queue.slug}-v{snapshot.version}"
    audit.record(
        session,
        "dataset.downloaded",
        user=user,
        queue_id=snapshot.queue_id,
        snapshot_id=snapshot.id,
        version=snapshot.version,
        file=file or "zip",
        via=via,
    )
    if file is None:
        return DownloadTarget(f"{stem}.zip", MIMETYPES["zip"], directory, None, members)
    name = f"{stem}-{file.replace('/', '-')}"
    return DownloadTarget(
        name, MIMETYPES[file.rsplit(".", 1)[-1]], directory, directory / file, (file,)
    )
