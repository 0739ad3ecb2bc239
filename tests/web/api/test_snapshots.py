"""The dataset snapshot API: create, watch, download; roles, bad input, expiry."""

from __future__ import annotations

import io
import zipfile
from datetime import timedelta

import pandas as pd
import pytest
from sqlalchemy import select, update

from models import AuditEvent, DatasetSnapshot
from models.base import utcnow
from review.db import db_session
from review.services import datasets
from tests.web.api.helpers import error_fields
from tests.web.exports.helpers import decided, use_export_dir
from tests.workers.helpers import run_worker


@pytest.fixture
def queue(app, factory, tmp_path):
    use_export_dir(app, tmp_path / "exports")
    return factory.queue("support")


def start(client, headers, body, slug="support"):
    return client.post(f"/api/v1/queues/{slug}/exports", json=body, headers=headers)


def test_ml_user_snapshots_overrides_downloads_parquet_and_later_gets_only_new_rows(
    app, client, queue, as_role, factory, tmp_path
):
    reviewer = factory.user("reviewer")
    decided(app, "support", reviewer, 12, prefix="week1")  # 4 overrides
    ml = as_role("ml")

    created = start(
        client, ml, {"format": "parquet", "filter": {"scope": "overrides", "last_days": 7}}
    )
    assert created.status_code == 202
    body = created.get_json()
    assert body["status"] == "queued" and body["version"] == 1 and body["enqueued"] is True
    assert created.headers["Location"] == f"/api/v1/exports/{body['id']}"

    run_worker(app)
    status = client.get(f"/api/v1/exports/{body['id']}", headers=ml).get_json()
    assert status["status"] == "succeeded" and status["row_count"] == 4
    assert status["progress"] == {"rows": 4, "total": 4, "fraction": 1.0}
    assert len(status["sha256"]) == 64
    sheet = status["datasheet"]
    assert sheet["counts"]["counts_per_final_label"] == {"escalate": 4}
    assert sheet["counts"]["override_rate"] == 1.0
    assert sheet["filters"]["scope"] == "overrides" and sheet["filters"]["decided_from"]

    archive = client.get(status["links"]["download"], headers=ml)
    assert archive.status_code == 200 and archive.mimetype == "application/zip"
    folder = tmp_path / "download"
    zipfile.ZipFile(io.BytesIO(archive.data)).extractall(folder)
    data = pd.read_parquet(folder / "support-v1" / "data")
    assert len(data) == 4 and data["final_label"].value_counts().to_dict() == {"escalate": 4}
    assert data["overridden"].all()

    one = client.get(f"/api/v1/exports/{body['id']}/download?file=data/train.parquet", headers=ml)
    assert one.status_code == 200 and one.data[:4] == b"PAR1"
    one.close()  # send_file keeps the file open until the response is closed

    # A week later: only what is new.
    decided(app, "support", reviewer, 6, prefix="week2")  # 2 overrides
    later = start(client, ml, {"format": "parquet", "since_snapshot": body["id"]}).get_json()
    run_worker(app)
    later = client.get(later["links"]["self"], headers=ml).get_json()
    assert later["row_count"] == 2 and later["since_snapshot"]["version"] == 1
    assert later["filter"] == status["filter"]

    with app.app_context():
        downloads = (
            db_session()
            .scalars(
                # In the order they happened: without ORDER BY, PostgreSQL returns rows in
                # heap order, which the sealer's UPDATEs reshuffle.
                select(AuditEvent)
                .where(AuditEvent.action == "dataset.downloaded")
                .order_by(AuditEvent.id)
            )
            .all()
        )
        assert [(e.details["file"], e.details["via"]) for e in downloads] == [
            ("zip", "api"),
            ("data/train.parquet", "api"),
        ]


def test_roles_reviewers_are_refused_and_tokens_required(client, queue, as_role):
    assert start(client, {}, {"format": "jsonl"}).status_code == 401
    refused = start(client, as_role("reviewer"), {"format": "jsonl"})
    assert refused.status_code == 403 and "role" in error_fields(refused)
    assert client.get("/api/v1/exports/1", headers=as_role("reviewer")).status_code == 403
    assert start(client, as_role("admin"), {"format": "jsonl"}).status_code == 202


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"format": "xlsx"}, "format"),
        ({}, "format"),
        ({"format": "csv", "colour": 1}, "colour"),
        ({"format": "csv", "filter": {"scope": "all"}}, "filter.scope"),
        ({"format": "csv", "filter": {"labels": ["nope"]}}, "filter.labels"),
        ({"format": "csv", "filter": {"decided_from": "last tuesday"}}, "filter.decided_from"),
        ({"format": "csv", "filter": {"last_days": 0}}, "filter.last_days"),
        (
            {"format": "csv", "filter": {"decided_from": "2026-02-01", "decided_to": "2026-01-01"}},
            "filter.decided_to",
        ),
        ({"format": "csv", "filter": ["x"]}, "filter"),
        ({"format": "csv", "since_snapshot": 999999}, "since_snapshot"),
        ({"format": "csv", "since_snapshot": "latest"}, "since_snapshot"),
        ({"format": "csv", "reviewer_identity": "x"}, "reviewer_identity"),
        ([1, 2], "body"),
    ],
)
def test_bad_requests_name_the_field_and_create_nothing(app, client, queue, as_role, body, field):
    response = start(client, as_role("ml"), body)
    assert response.status_code == 422, response.get_json()
    assert field in error_fields(response)
    with app.app_context():
        assert db_session().scalars(select(DatasetSnapshot)).all() == []


def test_only_admins_may_export_reviewer_names(app, client, queue, as_role, factory):
    reviewer = factory.user("reviewer", email="named@example.com")
    decided(app, "support", reviewer, 2, prefix="n")
    refused = start(client, as_role("ml"), {"format": "jsonl", "reviewer_identity": "named"})
    assert refused.status_code == 403 and "reviewer_identity" in error_fields(refused)
    made = start(client, as_role("admin"), {"format": "jsonl", "reviewer_identity": "named"})
    run_worker(app)
    url = made.get_json()["links"]["download"] + "?file=data/train.jsonl"
    eval_url = made.get_json()["links"]["download"] + "?file=data/eval.jsonl"
    texts = []
    for file_url in (url, eval_url):
        with client.get(file_url, headers=as_role("admin")) as response:
            texts.append(response.text if response.status_code == 200 else "")
    assert "named@example.com" in "".join(texts)


def test_incremental_refuses_a_different_filter(client, queue, as_role):
    ml = as_role("ml")
    first = start(client, ml, {"format": "csv", "filter": {"scope": "overrides"}}).get_json()
    response = start(
        client, ml, {"format": "csv", "since_snapshot": first["id"], "filter": {"scope": "human"}}
    )
    assert response.status_code == 422 and "filter" in error_fields(response)


def test_unknown_snapshot_and_file_are_404(app, client, queue, as_role, factory):
    ml = as_role("ml")
    assert client.get("/api/v1/exports/424242", headers=ml).status_code == 404
    assert client.get("/api/v1/exports/abc", headers=ml).status_code == 404
    decided(app, "support", factory.user("reviewer"), 3, prefix="f")
    made = start(client, ml, {"format": "csv"}).get_json()
    run_worker(app)
    for bad in ("../../etc/passwd", "data/train.parquet", "/etc/passwd"):
        response = client.get(made["links"]["download"], query_string={"file": bad}, headers=ml)
        assert response.status_code == 404 and "file" in error_fields(response)


def test_not_ready_is_409_and_expired_is_410_with_metadata_kept(
    app, client, queue, as_role, factory
):
    ml = as_role("ml")
    decided(app, "support", factory.user("reviewer"), 3, prefix="e")
    made = start(client, ml, {"format": "jsonl"}).get_json()
    assert client.get(made["links"]["download"], headers=ml).status_code == 409
    run_worker(app)
    with app.app_context():
        session = db_session()
        session.execute(update(DatasetSnapshot).values(expires_at=utcnow() - timedelta(days=1)))
        settings = datasets.ExportSettings.from_config(app.config)
        assert datasets.expire_snapshots(session, settings, utcnow()) == [made["id"]]
        session.commit()
        directory = settings.export_dir / session.get(DatasetSnapshot, made["id"]).storage_dir
    assert not directory.exists()
    status = client.get(made["links"]["self"], headers=ml).get_json()
    assert status["status"] == "expired" and status["row_count"] == 3
    assert status["datasheet"]["counts"]["row_count"] == 3 and status["expired_at"]
    gone = client.get(made["links"]["download"], headers=ml)
    assert gone.status_code == 410 and gone.get_json()["error"]["code"] == "gone"
