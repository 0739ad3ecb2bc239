"""Bulk import of items from a CSV or JSON Lines file, in three steps a person can follow.

1. `create_import`: the file is on disk; its columns are read and a mapping is suggested.
2. `begin_validation` + `validate_batches`: every row is checked by the API's own rules
   (services.ingest), plus repeated ids in the file and ids already in the queue with a
   different payload. Nothing but the report is written.
3. `confirm_import` + `import_batches`: the valid rows are written in batches. Rows whose
   external id is already in the queue with the same payload are left alone, so importing
   a file twice changes nothing.

Both passes stream the file and yield after each batch; the caller (a view, the CLI or an
RQ job) commits there, which records progress and keeps memory flat whatever the file's
size. Services never commit.
"""

from __future__ import annotations

import csv
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from sqlalchemy import String, any_, bindparam, insert, inspect, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import MANYTOONE, Session
from sqlalchemy.orm.attributes import set_committed_value

from models import DataImport, Item, Queue, User
from models.base import utcnow
from review.services import audit, ingest, queues, routing
from review.services.errors import Conflict, ValidationFailed
from review.services.import_files import (
    Mapping,
    ProgressFile,
    Row,
    describe_problems,
    file_format,
    iter_rows,
    parse_mapping,
    read_columns,
    shape_row,
    suggest_mapping,
)
from review.services.ingest import ItemInput
from review.services.routing import RecommendationInput

BATCH_SIZE = 1000
# Bad rows kept in the database row for the page; the CSV report beside it has them all.
REPORT_LIMIT = 500
# Statuses from which a new mapping may be validated, and from which an import is discarded.
REMAPPABLE = ("uploaded", "validated", "failed")
ACTIVE = ("validating", "importing")


# --- step 1: the file ----------------------------------------------------------------------


def save_upload(stream: IO[bytes], directory: Path, suffix: str, max_bytes: int) -> Path:
    """Copy an upload to `directory` in chunks (never whole in memory) under a random name.

    Raises ValidationFailed, leaving nothing behind, if it is empty or larger than max_bytes.
    """
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{uuid.uuid4().hex}{suffix}"
    written = 0
    try:
        with path.open("wb") as out:
            while chunk := stream.read(1024 * 1024):
                written += len(chunk)
                if written > max_bytes:
                    raise ValidationFailed(
                        "file too large",
                        {"file": f"must be at most {max_bytes // (1024 * 1024)} MB"},
                    )
                out.write(chunk)
        if written == 0:
            raise ValidationFailed("the file is empty", {"file": "is empty"})
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


def create_import(
    session: Session,
    queue: Queue,
    user: User | None,
    *,
    path: Path,
    original_filename: str,
    source: str = "web",
) -> DataImport:
    """Register a file for import into the queue; reads its columns and suggests a mapping.

    Raises ValidationFailed (field "file") if the file type or its header is unusable.
    """
    fmt = file_format(original_filename)
    columns = read_columns(path, fmt)
    data_import = DataImport(
        queue_id=queue.id,
        created_by_id=user.id if user else None,
        source=source,
        original_filename=original_filename[:255],
        file_path=str(path),
        file_format=fmt,
        file_size=path.stat().st_size,
        columns=columns,
        mapping=suggest_mapping(columns),
        status="uploaded",
    )
    session.add(data_import)
    session.flush()
    audit.record(
        session,
        "import.uploaded",
        user=user,
        queue_id=queue.id,
        import_id=data_import.id,
        filename=data_import.original_filename,
        size=data_import.file_size,
        source=source,
    )
    return data_import


def mapping_of(data_import: DataImport) -> Mapping:
    return parse_mapping(data_import.mapping, data_import.columns)


# --- step 2: validation --------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    line: int
    external_id: str | None
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "external_id": self.external_id, "reason": self.reason}


def begin_validation(
    session: Session,
    data_import: DataImport,
    mapping_data: dict[str, Any],
    report_path: Path,
    user: User | None,
) -> Mapping:
    """Store a checked mapping and mark the import as validating; the report goes to
    report_path. Raises ValidationFailed naming bad mapping fields, Conflict if busy."""
    if data_import.status not in REMAPPABLE:
        raise Conflict(f"the import is {data_import.status}", {"status": data_import.status})
    mapping = parse_mapping(mapping_data, data_import.columns)
    data_import.mapping = mapping.as_dict()
    data_import.report_path = str(report_path)
    _reset_counts(data_import)
    data_import.status = "validating"
    audit.record(
        session,
        "import.mapped",
        user=user,
        queue_id=data_import.queue_id,
        import_id=data_import.id,
        mapping=data_import.mapping,
    )
    return mapping


def _reset_counts(data_import: DataImport) -> None:
    for name in (
        "bytes_done",
        "total_rows",
        "valid_rows",
        "error_rows",
        "created_count",
        "existing_count",
        "skipped_count",
    ):
        setattr(data_import, name, 0)
    data_import.report = []
    data_import.error_message = None
    data_import.finished_at = None


def check_row(row: Row, queue: Queue, mapping: Mapping) -> tuple[ItemInput | None, str | None]:
    """The row as a validated item, or the reason it cannot be one (the API's rules)."""
    if row.problem is not None or row.values is None:
        return None, row.problem
    shaped = shape_row(row.values, mapping)
    if shaped.raw is None:
        return None, shaped.problem
    try:
        [item], _ = ingest.parse_ingest_body(shaped.raw, queue)
    except ValidationFailed as exc:
        return None, describe_problems(exc.fields, row.values, mapping)
    return item, None


class SeenIds:
    """External ids met so far in the file, in a scratch SQLite file on disk, so checking a
    million ids for repeats costs disk, not memory."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.unlink(missing_ok=True)
        self.conn = sqlite3.connect(path)
        self.conn.execute("PRAGMA journal_mode=OFF")
        self.conn.execute("PRAGMA synchronous=OFF")
        self.conn.execute(
            "CREATE TABLE seen (external_id TEXT PRIMARY KEY, sha TEXT, line INTEGER) WITHOUT ROWID"
        )

    def lookup(self, ids: list[str]) -> dict[str, tuple[str, int]]:
        found: dict[str, tuple[str, int]] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for external_id, sha, line in self.conn.execute(
                f"SELECT external_id, sha, line FROM seen WHERE external_id IN ({marks})", chunk
            ):
                found[external_id] = (sha, line)
        return found

    def add(self, rows: list[tuple[str, str, int]]) -> None:
        self.conn.executemany("INSERT INTO seen VALUES (?, ?, ?)", rows)

    def close(self) -> None:
        self.conn.close()
        self.path.unlink(missing_ok=True)


def existing_hashes(session: Session, queue_id: int, ids: list[str]) -> dict[str, str]:
    """{external_id: payload_sha256} of the queue's items among these ids."""
    found: dict[str, str] = {}
    for chunk in _id_chunks(session, ids):
        rows = session.execute(
            select(Item.external_id, Item.payload_sha256).where(Item.queue_id == queue_id, chunk)
        )
        found.update((external_id, sha) for external_id, sha in rows)
    return found


def _id_chunks(session: Session, ids: list[str]) -> Iterator[Any]:
    """Conditions "external_id among `ids`", as few as the database allows.

    PostgreSQL gets one array parameter (= ANY): an IN list of a thousand parameters costs
    the driver more to parse than the query costs to run. SQLite gets IN lists of 500,
    under its limit on parameters."""
    if session.get_bind().dialect.name == "postgresql":
        yield Item.external_id == any_(bindparam("external_ids", ids, type_=ARRAY(String)))
        return
    for start in range(0, len(ids), 500):
        yield Item.external_id.in_(ids[start : start + 500])


class _Report:
    """Collects bad rows: the first REPORT_LIMIT for the page, every one in the CSV file."""

    def __init__(self, data_import: DataImport, handle: Any) -> None:
        self.data_import = data_import
        self.kept: list[dict[str, Any]] = []
        self.writer = csv.writer(handle)
        self.writer.writerow(["line", "external_id", "reason"])

    def add(self, problem: Problem) -> None:
        self.data_import.error_rows += 1
        self.writer.writerow([problem.line, problem.external_id or "", problem.reason])
        if len(self.kept) < REPORT_LIMIT:
            self.kept.append(problem.as_dict())

    def flush(self) -> None:
        self.data_import.report = list(self.kept)  # a new list, so the JSON change is seen


def _check_batch(
    session: Session,
    data_import: DataImport,
    batch: list[tuple[int, ItemInput]],
    seen: SeenIds,
    report: _Report,
) -> None:
    ids = list({item.external_id for _, item in batch})
    earlier = seen.lookup(ids)
    in_queue = existing_hashes(session, data_import.queue_id, ids)
    fresh: list[tuple[str, str, int]] = []
    for line, item in batch:
        prior = earlier.get(item.external_id)
        if prior is not None:
            if prior[0] != item.payload_sha256:
                report.add(
                    Problem(
                        line,
                        item.external_id,
                        f"external id repeats line {prior[1]} with a different payload",
                    )
                )
            else:
                data_import.skipped_count += 1  # the same row twice: imported once
            continue
        earlier[item.external_id] = (item.payload_sha256, line)
        fresh.append((item.external_id, item.payload_sha256, line))
        stored = in_queue.get(item.external_id)
        if stored is not None and stored != item.payload_sha256:
            report.add(
                Problem(
                    line,
                    item.external_id,
                    "external id is already in the queue with a different payload",
                )
            )
            continue
        data_import.valid_rows += 1
        data_import.existing_count += stored is not None
    seen.add(fresh)


def validate_batches(session: Session, import_id: int) -> Iterator[DataImport]:
    """Check every row of a validating import; yield after each batch (commit there).

    Ends with the import `validated` and its report complete, or `failed` with the reason
    when the file cannot be read at all. Writes no items.
    """
    data_import = session.get(DataImport, import_id)
    if data_import is None or data_import.status != "validating":
        return
    queue = session.get(Queue, data_import.queue_id)
    assert queue is not None  # a foreign key
    mapping = mapping_of(data_import)
    _reset_counts(data_import)
    report_path = Path(data_import.report_path or f"{data_import.file_path}.errors.csv")
    seen = SeenIds(report_path.with_suffix(".seen.sqlite"))
    try:
        with (
            open(data_import.file_path, "rb") as handle,
            report_path.open("w", newline="", encoding="utf-8") as report_file,
        ):
            progress = ProgressFile(handle)
            report = _Report(data_import, report_file)
            batch: list[tuple[int, ItemInput]] = []
            for row in iter_rows(progress, data_import.file_format):
                data_import.total_rows += 1
                item, problem = check_row(row, queue, mapping)
                if item is None:
                    report.add(Problem(row.line, _raw_id(row, mapping), problem or "invalid"))
                    continue
                batch.append((row.line, item))
                if len(batch) >= BATCH_SIZE:
                    _check_batch(session, data_import, batch, seen, report)
                    batch = []
                    data_import.bytes_done = progress.bytes_read
                    report.flush()
                    yield data_import
            if batch:
                _check_batch(session, data_import, batch, seen, report)
            report.flush()
    except (ValidationFailed, OSError) as exc:
        _fail(data_import, getattr(exc, "fields", {}).get("file") or str(exc))
        yield data_import
        return
    finally:
        seen.close()
    data_import.bytes_done = data_import.file_size
    data_import.status = "validated"
    audit.record(
        session,
        "import.validated",
        queue_id=data_import.queue_id,
        import_id=data_import.id,
        rows=data_import.total_rows,
        valid=data_import.valid_rows,
        errors=data_import.error_rows,
    )
    yield data_import


def _raw_id(row: Row, mapping: Mapping) -> str | None:
    value = (row.values or {}).get(mapping.id_column)
    return str(value)[:200] if value not in (None, "") else None


def _fail(data_import: DataImport, message: str) -> None:
    data_import.status = "failed"
    data_import.error_message = message
    data_import.finished_at = utcnow()


# --- step 3: the import --------------------------------------------------------------------


def new_rows(data_import: DataImport) -> int:
    """How many items confirming the import would create, as of its validation."""
    return data_import.valid_rows - data_import.existing_count


def confirm_import(session: Session, data_import: DataImport, user: User | None) -> None:
    """Start writing a validated import. Raises Conflict unless it is validated."""
    if data_import.status != "validated":
        raise Conflict(
            f"only a validated import can be confirmed; this one is {data_import.status}",
            {"status": data_import.status},
        )
    data_import.status = "importing"
    data_import.bytes_done = 0
    audit.record(
        session,
        "import.confirmed",
        user=user,
        queue_id=data_import.queue_id,
        import_id=data_import.id,
        new_rows=new_rows(data_import),
        skipped_bad_rows=data_import.error_rows,
    )


def cancel_import(session: Session, data_import: DataImport, user: User | None) -> None:
    """Discard an import that has not started writing; an uploaded file is deleted."""
    if data_import.status not in REMAPPABLE:
        raise Conflict(f"the import is {data_import.status}", {"status": data_import.status})
    data_import.status = "cancelled"
    data_import.finished_at = utcnow()
    remove_upload(data_import)
    audit.record(
        session,
        "import.cancelled",
        user=user,
        queue_id=data_import.queue_id,
        import_id=data_import.id,
    )


def remove_upload(data_import: DataImport) -> None:
    """Delete the stored upload (never a file the CLI was pointed at)."""
    if data_import.source == "web":
        Path(data_import.file_path).unlink(missing_ok=True)


@dataclass
class _Written:
    created: int = 0
    existing: int = 0
    conflicts: int = 0


def write_batch(
    session: Session, queue: Queue, items: list[ItemInput], written: _Written
) -> list[int]:
    """Insert the items not yet in the queue and route those that bring a recommendation,
    as the API's ingest does (the same routing rules, in bulk). Returns the ids of new
    items left pending for the worker."""
    in_queue = existing_hashes(session, queue.id, list({i.external_id for i in items}))
    new: dict[str, ItemInput] = {}
    for item_input in items:
        stored = in_queue.get(item_input.external_id)
        if stored is None and item_input.external_id in new:
            stored = new[item_input.external_id].payload_sha256
        if stored is None:
            new[item_input.external_id] = item_input
        elif stored == item_input.payload_sha256:
            written.existing += 1
        else:
            written.conflicts += 1
    inserted = _insert_items(session, queue, list(new.values()))
    if taken := sorted(new.keys() - inserted.keys()):
        # Inserted by another writer (the API, another import) since our look-up: as above.
        meanwhile = existing_hashes(session, queue.id, taken)
        for external_id in taken:
            if meanwhile.get(external_id) == new[external_id].payload_sha256:
                written.existing += 1
            else:
                written.conflicts += 1
    written.created += len(inserted)
    return _route_new_items(session, queue, [(inserted[k], new[k]) for k in new if k in inserted])


def _route_new_items(
    session: Session, queue: Queue, created: list[tuple[int, ItemInput]]
) -> list[int]:
    """Route what can be routed now; returns the ids left pending for the recommender.

    Each item's route is planned once (routing.plan_route, audit draw included). Items
    sent to review are written in bulk; auto-approvals, which also write audit and
    webhook events, go through routing.route_item with the same plan."""
    policy = queues.current_policy(session, queue)
    pending: list[int] = []
    to_review: list[routing.ReviewRoute] = []
    to_approve: dict[int, tuple[RecommendationInput, routing.RoutePlan]] = {}
    for item_id, item_input in created:
        rec = item_input.recommendation
        if rec is None and queue.recommender_kind != "none":
            pending.append(item_id)
            continue
        plan = routing.plan_route(policy, rec)
        if plan.route == "auto_approve" and rec is not None:
            to_approve[item_id] = (rec, plan)
        else:
            to_review.append(routing.ReviewRoute(item_id, rec, plan))
    routing.route_for_review_in_bulk(session, policy, to_review)
    if to_approve:
        approved = session.scalars(select(Item).where(Item.id.in_(list(to_approve))))
        with session.no_autoflush:
            for item in approved:
                _mark_children_loaded(item)
                rec, plan = to_approve[item.id]
                stored = routing.attach_recommendation(session, item, rec)
                routing.route_item(session, item, queue, stored, policy=policy, plan=plan)
        session.flush()
    return pending


def _insert_items(session: Session, queue: Queue, items: list[ItemInput]) -> dict[str, int]:
    """Insert pending items in one executemany (no per-object ORM flush), skipping any
    external id that is in the queue by now; {external id: item id} of those inserted.

    Every row of the batch carries the same created_at, which tells our rows apart from
    one another writer inserted meanwhile under the same external id."""
    if not items:
        return {}
    now = utcnow()
    rows = [
        {
            "queue_id": queue.id,
            "external_id": i.external_id,
            "payload": i.payload,
            "payload_sha256": i.payload_sha256,
            "priority": i.priority,
            "status": "pending",
            "created_at": now,
            "updated_at": now,
        }
        for i in items
    ]
    session.execute(_insert_ignoring_known_ids(session), rows)
    ours = {i.external_id for i in items}
    # Our rows are the queue's pending items created at `now` (the ix_items_queue_age index).
    stamped = session.execute(
        select(Item.id, Item.external_id).where(
            Item.queue_id == queue.id, Item.status == "pending", Item.created_at == now
        )
    )
    return {external_id: item_id for item_id, external_id in stamped if external_id in ours}


def _insert_ignoring_known_ids(session: Session) -> Any:
    """INSERT INTO items that leaves out rows whose (queue, external id) exists, where the
    database can say so (ON CONFLICT DO NOTHING on PostgreSQL and SQLite)."""
    table = Item.__table__
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing(
            index_elements=["queue_id", "external_id"]
        )
    if dialect == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing(
            index_elements=["queue_id", "external_id"]
        )
    return insert(table)


def _mark_children_loaded(item: Item) -> None:
    """Tell the session a brand-new item has no recommendation, routings or review yet.

    Otherwise attaching a recommendation or a routing record lazy-loads the (empty) old
    value first: one query per item per relationship, which made imports 20 times slower.
    """
    for relationship in inspect(Item).relationships:
        if relationship.direction is not MANYTOONE:
            set_committed_value(item, relationship.key, [] if relationship.uselist else None)


def import_batches(session: Session, import_id: int) -> Iterator[list[int]]:
    """Write the valid rows of a confirmed import, one batch at a time. Each yield hands the
    ids of new pending items to the caller, who commits and then enqueues them.

    Bad rows are skipped (the report named them); rows already in the queue are left as
    they are, so running this again after a crash or on the same file creates nothing twice.
    """
    data_import = session.get(DataImport, import_id)
    if data_import is None or data_import.status != "importing":
        return
    queue = session.get(Queue, data_import.queue_id)
    assert queue is not None
    mapping = mapping_of(data_import)
    written, skipped = _Written(), 0
    try:
        with open(data_import.file_path, "rb") as handle:
            progress = ProgressFile(handle)
            batch: list[ItemInput] = []
            for row in iter_rows(progress, data_import.file_format):
                item, _problem = check_row(row, queue, mapping)
                if item is None:
                    skipped += 1
                    continue
                batch.append(item)
                if len(batch) >= BATCH_SIZE:
                    pending = write_batch(session, queue, batch, written)
                    batch = []
                    _count(data_import, written, skipped, progress.bytes_read)
                    yield pending
            pending = write_batch(session, queue, batch, written) if batch else []
    except (ValidationFailed, OSError) as exc:
        _fail(data_import, getattr(exc, "fields", {}).get("file") or str(exc))
        yield []
        return
    _count(data_import, written, skipped, data_import.file_size)
    data_import.status = "done"
    data_import.finished_at = utcnow()
    remove_upload(data_import)
    audit.record(
        session,
        "import.completed",
        queue_id=data_import.queue_id,
        import_id=data_import.id,
        created=written.created,
        existing=written.existing,
        skipped=skipped + written.conflicts,
    )
    yield pending


def _count(data_import: DataImport, written: _Written, skipped: int, bytes_done: int) -> None:
    data_import.created_count = written.created
    data_import.existing_count = written.existing
    data_import.skipped_count = skipped + written.conflicts
    data_import.bytes_done = bytes_done


def progress_percent(data_import: DataImport) -> int:
    """How far the running pass has read the file, 0 to 100."""
    if data_import.status in ("validated", "done"):
        return 100
    if not data_import.file_size:
        return 0
    return min(100, int(100 * data_import.bytes_done / data_import.file_size))


def list_imports(session: Session, limit: int = 50) -> list[DataImport]:
    return list(session.scalars(select(DataImport).order_by(DataImport.id.desc()).limit(limit)))


def storage_dir(configured: str | None, instance_path: str) -> Path:
    """Where uploads and reports live: UPLOAD_DIR if configured, else instance/uploads."""
    return Path(configured) if configured else Path(instance_path) / "uploads"


# --- background jobs -----------------------------------------------------------------------

# Named by import path: this layer never imports the workers package.
VALIDATE_JOB = "workers.import_jobs.validate_import"
IMPORT_JOB = "workers.import_jobs.run_import"
# A million rows take minutes; the timeout only stops a job that hangs.
JOB_TIMEOUT_SECONDS = 6 * 3600


def enqueue(rq_queue: Any, job_path: str, import_id: int) -> str | None:
    """Start a validation or import job after the commit; the job id, or None if Redis is
    unreachable (the caller marks the import failed so the person can try again)."""
    from redis.exceptions import RedisError

    try:
        job = rq_queue.enqueue(
            job_path,
            import_id,
            job_timeout=JOB_TIMEOUT_SECONDS,
            result_ttl=3600,
            failure_ttl=7 * 24 * 3600,
        )
    except RedisError:
        return None
    return str(job.id)
