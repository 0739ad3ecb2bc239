"""Bulk import from files: the validation report, nothing written before confirmation,
idempotent re-imports, and the same rules as the API."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from models import AuditEvent, DataImport, Item, Recommendation
from review.db import db_session
from review.services import imports, ingest, queues
from review.services.errors import Conflict, ValidationFailed

HEADER = ["ticket_id", "subject", "body", "ai_label", "score", "model"]


def write_csv(path: Path, rows: list[list[str]], header: list[str] = HEADER) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def good_rows(count: int, start: int = 1) -> list[list[str]]:
    return [
        [f"T-{n}", f"Subject {n}", f"Body of ticket {n}", "approve", "0.5", "legacy-v1"]
        for n in range(start, start + count)
    ]


def start(app, path: Path, slug: str, mapping: dict | None = None, name: str | None = None):
    """Register the file and validate it with the suggested (or given) mapping."""
    with app.app_context():
        session = db_session()
        queue = queues.get_queue(session, slug)
        data_import = imports.create_import(
            session, queue, None, path=path, original_filename=name or path.name, source="cli"
        )
        imports.begin_validation(
            session,
            data_import,
            mapping or data_import.mapping,
            path.with_suffix(".errors.csv"),
            None,
        )
        session.commit()
        for _ in imports.validate_batches(session, data_import.id):
            session.commit()
        session.commit()
        return data_import.id


def confirm_and_run(app, import_id: int) -> list[int]:
    pending: list[int] = []
    with app.app_context():
        session = db_session()
        imports.confirm_import(session, session.get(DataImport, import_id), None)
        session.commit()
        for ids in imports.import_batches(session, import_id):
            session.commit()
            pending.extend(ids)
    return pending


def get_import(app, import_id: int) -> DataImport:
    with app.app_context():
        session = db_session()
        row = session.get(DataImport, import_id)
        session.expunge(row)
        return row


def item_count(app) -> int:
    with app.app_context():
        return db_session().scalar(select(func.count(Item.id)))


def test_mixed_file_reports_every_bad_row_with_its_line_and_writes_nothing(app, factory, tmp_path):
    factory.queue("support")
    rows = good_rows(5)
    rows.insert(1, ["", "No id", "body", "approve", "0.5", "m"])  # line 3
    rows.insert(3, ["T-90", "s", "b", "approve", "1.7", "m"])  # line 5
    rows.insert(4, ["T-91", "s", "b", "refnd", "0.4", "m"])  # line 6
    rows.append(["T-92", "s", "b", "approve", "high", "m"])  # line 10
    rows.append(["T-1", "changed", "b", "approve", "0.5", "legacy-v1"])  # line 11: repeat
    path = write_csv(tmp_path / "tickets.csv", rows)

    import_id = start(app, path, "support")

    result = get_import(app, import_id)
    assert result.status == "validated"
    assert (result.total_rows, result.valid_rows, result.error_rows) == (10, 5, 5)
    by_line = {entry["line"]: entry["reason"] for entry in result.report}
    assert sorted(by_line) == [3, 5, 6, 10, 11]
    assert "missing external id" in by_line[3]
    assert "confidence “1.7” (column “score”) must be a number between 0 and 1" in by_line[5]
    assert "label “refnd” (column “ai_label”) must be one of the queue's labels" in by_line[6]
    assert "confidence “high”" in by_line[10]
    assert "repeats line 2 with a different payload" in by_line[11]
    assert item_count(app) == 0  # nothing is written before confirmation
    with (tmp_path / "tickets.errors.csv").open(newline="") as handle:
        lines = [row[0] for row in csv.reader(handle)]
    assert lines == ["line", "3", "5", "6", "10", "11"]


def test_confirming_writes_the_valid_rows_routed_like_the_api(app, factory, tmp_path):
    factory.queue("support")
    rows = good_rows(3) + [["T-9", "s", "b", "nope", "0.4", "m"]]
    import_id = start(app, write_csv(tmp_path / "t.csv", rows), "support")

    assert confirm_and_run(app, import_id) == []  # all bring a recommendation: routed now

    result = get_import(app, import_id)
    assert (result.status, result.created_count, result.skipped_count) == ("done", 3, 1)
    with app.app_context():
        session = db_session()
        items = session.scalars(select(Item).order_by(Item.external_id)).all()
        assert [i.external_id for i in items] == ["T-1", "T-2", "T-3"]
        assert {i.status for i in items} == {"needs_review"}  # new queue: nothing auto
        assert items[0].payload == {"subject": "Subject 1", "body": "Body of ticket 1"}
        rec = session.scalar(select(Recommendation).where(Recommendation.item_id == items[0].id))
        assert (rec.label, rec.confidence, rec.model, rec.source) == (
            "approve",
            0.5,
            "legacy-v1",
            "external",
        )
        actions = set(session.scalars(select(AuditEvent.action)))
        assert {
            "import.uploaded",
            "import.validated",
            "import.confirmed",
            "import.completed",
        } <= actions


def test_reimporting_the_same_file_changes_nothing(app, factory, tmp_path):
    factory.queue("support")
    path = write_csv(tmp_path / "t.csv", good_rows(2500))
    confirm_and_run(app, start(app, path, "support"))
    assert item_count(app) == 2500

    second = start(app, path, "support")
    validated = get_import(app, second)
    assert (validated.valid_rows, validated.existing_count, validated.error_rows) == (2500, 2500, 0)
    assert imports.new_rows(validated) == 0
    confirm_and_run(app, second)
    done = get_import(app, second)
    assert (done.created_count, done.existing_count) == (0, 2500)
    assert item_count(app) == 2500


def test_rows_without_a_recommendation_are_left_for_the_worker(app, factory, tmp_path):
    factory.queue("support")
    path = tmp_path / "t.jsonl"
    path.write_text(
        "\n".join(json.dumps({"id": n, "payload": {"text": f"t{n}"}}) for n in range(3)) + "\n"
    )
    import_id = start(app, path, "support")
    mapping = get_import(app, import_id).mapping
    assert (mapping["id_column"], mapping["payload_json_column"]) == ("id", "payload")

    pending = confirm_and_run(app, import_id)

    with app.app_context():
        rows = db_session().execute(select(Item.id, Item.external_id, Item.status)).all()
    assert sorted(r.external_id for r in rows) == ["0", "1", "2"]
    assert {r.status for r in rows} == {"pending"}
    assert sorted(pending) == sorted(r.id for r in rows)


def test_jsonl_reports_bad_json_and_non_objects_by_line(app, factory, tmp_path):
    factory.queue("support")
    path = tmp_path / "t.jsonl"
    path.write_text(
        '{"id": "a", "payload": {"x": 1}}\n'
        '{"id": "b", "payload": {"x": 2}\n'
        "\n"
        '["not", "an", "object"]\n'
        '{"id": "c", "payload": "text"}\n'
        '{"id": "d", "payload": {"x": 4}}\n'
    )
    import_id = start(app, path, "support")
    result = get_import(app, import_id)
    reasons = {entry["line"]: entry["reason"] for entry in result.report}
    assert sorted(reasons) == [2, 4, 5]
    assert reasons[2].startswith("bad JSON")
    assert "not an object" in reasons[4]
    assert reasons[5].startswith("bad JSON in column “payload”")
    assert (result.valid_rows, result.error_rows) == (2, 3)


def test_an_id_in_the_queue_with_another_payload_is_reported(app, factory, tmp_path):
    factory.queue("support")
    confirm_and_run(app, start(app, write_csv(tmp_path / "a.csv", good_rows(2)), "support"))
    changed = good_rows(2)
    changed[1][1] = "A different subject"
    result = get_import(app, start(app, write_csv(tmp_path / "b.csv", changed), "support"))
    assert result.report == [
        {
            "line": 3,
            "external_id": "T-2",
            "reason": "external id is already in the queue with a different payload",
        }
    ]


def test_wrong_field_count_and_a_bad_mapping_are_refused(app, factory, tmp_path):
    factory.queue("support")
    path = tmp_path / "t.csv"
    path.write_text("ticket_id,subject\nT-1,hello\nT-2,hello,extra\n")
    result = get_import(app, start(app, path, "support"))
    assert result.report[0]["line"] == 3
    assert result.report[0]["reason"] == "has 3 fields, the header has 2"

    with app.app_context():
        session = db_session()
        data_import = session.get(DataImport, result.id)
        with pytest.raises(ValidationFailed) as error:
            imports.begin_validation(
                session,
                data_import,
                {"id_column": "nope", "payload_columns": [], "label_column": "subject"},
                tmp_path / "r.csv",
                None,
            )
        assert set(error.value.fields) >= {"id_column", "payload_columns", "confidence_column"}


def test_unsupported_files_and_unusable_headers_are_refused(app, factory, tmp_path):
    queue = factory.queue("support")
    cases = {
        "data.xlsx": (b"ticket_id\n", "must be a .csv"),
        "dup.csv": (b"id,id\n1,2\n", "repeats id"),
        "blank.csv": (b"id,,x\n", "column 2 has no name"),
        "nothing.jsonl": (b"[1]\n", "no line holding a JSON object"),
    }
    with app.app_context():
        session = db_session()
        for name, (content, expected) in cases.items():
            path = tmp_path / name
            path.write_bytes(content)
            with pytest.raises(ValidationFailed) as error:
                imports.create_import(session, queue, None, path=path, original_filename=name)
            assert expected in error.value.fields["file"]


def test_confirm_needs_a_validated_import(app, factory, tmp_path):
    factory.queue("support")
    import_id = start(app, write_csv(tmp_path / "t.csv", good_rows(1)), "support")
    confirm_and_run(app, import_id)
    with app.app_context():
        session = db_session()
        with pytest.raises(Conflict):
            imports.confirm_import(session, session.get(DataImport, import_id), None)


def test_not_utf8_rows_are_reported_not_fatal(app, factory, tmp_path):
    factory.queue("support")
    path = tmp_path / "t.csv"
    path.write_bytes(b"\xef\xbb\xbfid,text\nA,caf\xc3\xa9\nB,caf\xe9\nC,ok\n")
    result = get_import(app, start(app, path, "support"))
    assert result.report == [{"line": 3, "external_id": None, "reason": "not valid UTF-8 text"}]
    assert result.valid_rows == 2


def test_imported_rows_are_routed_exactly_as_the_api_routes_them(app, factory, tmp_path):
    """The import writes in bulk, but by the same rules: item, recommendation and routing
    record match those of the same rows sent through the API's ingest."""
    made, owner = factory.queue("support"), factory.user("policy_owner")
    with app.app_context():
        session = db_session()
        queue = queues.get_queue(session, made.slug)
        queues.create_policy_version(
            session, queue, {"default_threshold": 0.9, "note": "trust 0.9"}, session.merge(owner)
        )
        session.commit()
    rows = [
        ["T-1", "s1", "b1", "approve", "0.95", "m1"],  # clears the threshold
        ["T-2", "s2", "b2", "reject", "0.5", "m1"],  # does not
    ]
    confirm_and_run(app, start(app, write_csv(tmp_path / "t.csv", rows), "support"))
    with app.app_context():
        session = db_session()
        queue = queues.get_queue(session, "support")
        body = {
            "items": [
                {
                    "external_id": f"API-{n}",
                    "payload": {"subject": f"s{n}", "body": f"b{n}"},
                    "recommendation": {"label": label, "confidence": float(conf), "model": "m1"},
                }
                for n, label, conf in ((1, "approve", "0.95"), (2, "reject", "0.5"))
            ]
        }
        ingest.ingest(session, queue, ingest.parse_ingest_body(body, queue)[0])
        session.commit()

        def shape(external_id: str) -> tuple:
            item = session.scalar(select(Item).where(Item.external_id == external_id))
            rec, [routing] = item.recommendation, item.routings
            return (
                item.status, item.final_label, item.ai_status, item.ai_label,
                item.ai_confidence, item.routed_at is not None, item.decided_at is not None,
                item.payload, rec.label, rec.confidence, rec.model, rec.source,
                routing.route, routing.threshold, routing.confidence, routing.reason,
                routing.inclusion_probability, routing.audit, routing.policy_version_id,
            )  # fmt: skip

        assert shape("T-1") == shape("API-1")
        assert shape("T-2") == shape("API-2")
        assert shape("T-1")[:2] == ("auto_approved", "approve")
        assert shape("T-2")[:2] == ("needs_review", None)
        approvals = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "item.auto_approved")
        ).all()
        assert len(approvals) == 2  # the import's auto-approval is audited like the API's


def test_a_queue_without_recommender_gets_its_imported_rows_in_review_at_once(
    app, factory, tmp_path
):
    factory.queue("support", recommender={"kind": "none"})
    path = tmp_path / "t.jsonl"
    path.write_text(
        "\n".join(json.dumps({"id": n, "payload": {"text": f"t{n}"}}) for n in range(3)) + "\n"
    )

    assert confirm_and_run(app, start(app, path, "support")) == []  # nothing for a worker

    with app.app_context():
        items = db_session().scalars(select(Item)).all()
        assert {(i.status, i.ai_status, i.ai_label) for i in items} == {
            ("needs_review", "none", None)
        }
        assert all(len(i.routings) == 1 and i.routings[0].route == "review" for i in items)
