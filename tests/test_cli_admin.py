"""`flask items import`, `flask queues apply` and `flask queues export`."""

from __future__ import annotations

import tomllib

import pytest
from redis import Redis
from rq import Queue as RqQueue
from sqlalchemy import func, select

from models import Item
from review.db import db_session

CSV = (
    "id,subject,body,label,confidence\n"
    "A-1,Refund,Please refund,approve,0.6\n"
    "A-2,Spam,Win a prize,reject,0.8\n"
    ",Missing,No id here,approve,0.5\n"
    "A-4,Odd,Too sure,approve,1.5\n"
    "A-5,Fresh,No advice yet,,\n"
)


@pytest.fixture
def upload_dir(app, tmp_path):
    app.config["UPLOAD_DIR"] = str(tmp_path / "uploads")
    return tmp_path / "uploads"


def items(app) -> int:
    with app.app_context():
        return db_session().scalar(select(func.count(Item.id)))


def enqueued(app) -> list[int]:
    connection = Redis.from_url(app.config["REDIS_URL"])
    try:
        rq_queue = RqQueue(app.config["RQ_QUEUE_NAME"], connection=connection)
        return [item_id for job in rq_queue.get_jobs() for item_id in job.args[0]]
    finally:
        connection.close()


def test_import_with_bad_rows_reports_them_and_writes_nothing(
    app, runner, factory, tmp_path, upload_dir
):
    factory.queue("support")
    path = tmp_path / "tickets.csv"
    path.write_text(CSV)
    result = runner.invoke(
        args=["items", "import", str(path), "--queue", "support", "--model", "legacy"]
    )
    assert result.exit_code == 1, result.output
    assert "5 rows: 3 valid (3 new, 0 already in the queue), 2 with problems." in result.output
    assert "line 4: missing external id" in result.output
    assert "line 5 [A-4]: confidence “1.5” (column “confidence”)" in result.output
    assert "nothing imported" in result.output
    assert items(app) == 0
    report = next(upload_dir.glob("import-*-errors.csv")).read_text()
    assert report.splitlines()[1].startswith("4,,missing external id")


def test_skip_invalid_imports_the_good_rows_and_a_rerun_changes_nothing(
    app, runner, factory, tmp_path, upload_dir
):
    factory.queue("support")
    path = tmp_path / "tickets.csv"
    path.write_text(CSV)
    args = [
        "items",
        "import",
        str(path),
        "--queue",
        "support",
        "--model",
        "legacy",
        "--skip-invalid",
    ]
    first = runner.invoke(args=args)
    assert first.exit_code == 0, first.output
    assert "Imported into support: 3 created, 0 already there, 2 skipped." in first.output
    assert items(app) == 3
    with app.app_context():
        fresh = db_session().scalar(select(Item).where(Item.external_id == "A-5"))
        assert fresh.status == "pending" and fresh.payload == {
            "subject": "Fresh",
            "body": "No advice yet",
        }
    assert enqueued(app) == [fresh.id]  # only the item without advice waits for the worker

    again = runner.invoke(args=args)
    assert again.exit_code == 0, again.output
    assert "3 valid (0 new, 3 already in the queue)" in again.output
    assert "0 created, 3 already there" in again.output
    assert items(app) == 3
    assert path.exists()  # the CLI never deletes the file it was given


def test_dry_run_and_explicit_columns(app, runner, factory, tmp_path, upload_dir):
    factory.queue("support")
    path = tmp_path / "t.csv"
    path.write_text("ref,text,extra\nX1,hello,ignored\n")
    result = runner.invoke(
        args=[
            "items",
            "import",
            str(path),
            "--queue",
            "support",
            "--id-column",
            "ref",
            "--payload-column",
            "text",
            "--dry-run",
        ]
    )
    assert result.exit_code == 0, result.output
    assert "1 rows: 1 valid" in result.output and "Dry run" in result.output
    assert items(app) == 0
    result = runner.invoke(
        args=[
            "items",
            "import",
            str(path),
            "--queue",
            "support",
            "--id-column",
            "ref",
            "--payload-column",
            "text",
        ]
    )
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert db_session().scalar(select(Item.payload)) == {"text": "hello"}


def test_import_refuses_unknown_queues_and_columns(app, runner, factory, tmp_path, upload_dir):
    factory.queue("support")
    path = tmp_path / "t.csv"
    path.write_text("id,text\n1,a\n")
    result = runner.invoke(args=["items", "import", str(path), "--queue", "nope"])
    assert result.exit_code == 1 and "no queue 'nope'" in result.output
    result = runner.invoke(
        args=["items", "import", str(path), "--queue", "support", "--label-column", "missing"]
    )
    assert result.exit_code == 1
    assert "label_column: “missing” is not a column of the file" in result.output
    assert "Traceback" not in result.output


QUEUES = """
[[queue]]
slug = "triage"
name = "Triage"
labels = ["bug", "question"]
reason_codes = ["wrong_label"]
members = ["ana@example.com"]

[queue.recommender]
kind = "local"
"""


def test_queues_apply_twice_is_a_no_op_the_second_time(app, runner, factory, tmp_path):
    factory.user("reviewer", email="ana@example.com")
    path = tmp_path / "queues.toml"
    path.write_text(QUEUES)
    first = runner.invoke(args=["queues", "apply", str(path)])
    assert first.exit_code == 0, first.output
    assert first.output.splitlines()[0] == "+ triage (created)"
    assert "    members: ana@example.com" in first.output
    second = runner.invoke(args=["queues", "apply", str(path)])
    assert second.exit_code == 0, second.output
    assert second.output.splitlines() == ["= triage (unchanged)", "No changes."]


def test_queues_apply_dry_run_and_errors_change_nothing(app, runner, factory, tmp_path):
    path = tmp_path / "queues.toml"
    path.write_text(QUEUES)
    bad = runner.invoke(args=["queues", "apply", str(path)])  # ana does not exist yet
    assert bad.exit_code == 1
    assert "members: no users ana@example.com" in bad.output
    factory.user("reviewer", email="ana@example.com")
    dry = runner.invoke(args=["queues", "apply", str(path), "--dry-run"])
    assert dry.exit_code == 0 and "+ triage (created)" in dry.output
    export = runner.invoke(args=["queues", "export"])
    assert tomllib.loads(export.output) == {}


def test_queues_export_writes_what_apply_reads(app, runner, factory, tmp_path):
    factory.user("reviewer", email="ana@example.com")
    path = tmp_path / "queues.toml"
    path.write_text(QUEUES)
    runner.invoke(args=["queues", "apply", str(path)])
    out = tmp_path / "export.toml"
    result = runner.invoke(args=["queues", "export", "-o", str(out)])
    assert result.exit_code == 0, result.output
    [queue] = tomllib.loads(out.read_text())["queue"]
    assert queue["labels"] == ["bug", "question"] and queue["members"] == ["ana@example.com"]
    again = runner.invoke(args=["queues", "apply", str(out)])
    assert again.output.splitlines() == ["= triage (unchanged)", "No changes."]
