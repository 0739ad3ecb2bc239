"""The ML pages for dataset snapshots: start one, watch it build, read it, download it."""

from __future__ import annotations

import io
import re
import zipfile

import pytest
from sqlalchemy import select

from models import AuditEvent, DatasetSnapshot
from review.db import db_session
from tests.conftest import csrf_from, login
from tests.web.exports.helpers import decided, use_export_dir
from tests.workers.helpers import run_worker


@pytest.fixture
def ml_client(app, factory, tmp_path):
    use_export_dir(app, tmp_path / "exports")
    factory.queue("support", name="Support tickets")
    client = app.test_client()
    login(client, factory.user("ml").email)
    return client


def poll(client, snapshot_id, token):
    return client.get(
        f"/ml/datasets/{snapshot_id}",
        headers={"HX-Request": "true", "HX-Target": "snapshot-status", "X-CSRFToken": token},
    )


def test_ml_user_creates_watches_and_downloads_a_snapshot(app, factory, ml_client):
    decided(app, "support", factory.user("reviewer"), 9, prefix="p")  # 3 overrides
    page = ml_client.get("/ml/")
    assert 'href="/ml/queues/support/datasets"' in page.text
    form = ml_client.get("/ml/queues/support/datasets")
    assert form.status_code == 200 and "No snapshots yet" in form.text
    token = csrf_from(form.text)

    created = ml_client.post(
        "/ml/queues/support/datasets",
        data={"csrf_token": token, "format": "parquet", "scope": "overrides", "last_days": "7"},
    )
    assert created.status_code == 303
    snapshot_id = int(created.headers["Location"].rsplit("/", 1)[1])

    building = ml_client.get(f"/ml/datasets/{snapshot_id}").text
    assert 'data-status="queued"' in building and 'hx-trigger="every 1s"' in building
    fragment = poll(ml_client, snapshot_id, token)
    assert fragment.text.lstrip().startswith('<section id="snapshot-status"')
    assert "<h1>" not in fragment.text and "HX-Request" in fragment.headers["Vary"]

    run_worker(app)
    done = poll(ml_client, snapshot_id, token)
    assert done.headers["HX-Refresh"] == "true"
    page = ml_client.get(f"/ml/datasets/{snapshot_id}").text
    assert 'data-status="succeeded"' in page and "every 1s" not in page
    assert 'data-count="rows">3<' in page
    assert re.search(r'<th scope="row">escalate</th><td class="num">3</td>', page)
    # The filters read as the form asked them, not as stored JSON.
    assert re.search(
        r"<dd data-filters>Overrides only; every final label; decided from "
        r"\d{4}-\d\d-\d\d \d\d:\d\d UTC</dd>",
        page,
    )

    archive = ml_client.get(f"/ml/datasets/{snapshot_id}/download")
    names = zipfile.ZipFile(io.BytesIO(archive.data)).namelist()
    assert "support-v1/README.md" in names and "support-v1/datasheet.json" in names
    assert any(name.startswith("support-v1/data/") for name in names)
    with app.app_context():
        event = db_session().scalar(
            select(AuditEvent).where(AuditEvent.action == "dataset.downloaded")
        )
        assert event.details["via"] == "web" and event.details["snapshot_id"] == snapshot_id

    listing = ml_client.get("/ml/queues/support/datasets").text
    assert f'<tr data-snapshot="{snapshot_id}">' in listing and 'data-status="succeeded"' in listing


def test_bad_form_input_is_shown_next_to_the_field_and_creates_nothing(app, ml_client):
    token = csrf_from(ml_client.get("/ml/queues/support/datasets").text)
    response = ml_client.post(
        "/ml/queues/support/datasets",
        data={
            "csrf_token": token,
            "format": "parquet",
            "scope": "overrides",
            "last_days": "a week",
        },
    )
    assert response.status_code == 422
    assert 'id="last_days-error"' in response.text and "whole number" in response.text
    response = ml_client.post(
        "/ml/queues/support/datasets",
        data={
            "csrf_token": token,
            "format": "parquet",
            "scope": "overrides",
            "decided_from": "yesterday-ish",
        },
    )
    assert response.status_code == 422 and 'id="decided_from-error"' in response.text
    response = ml_client.post(
        "/ml/queues/support/datasets",
        data={"csrf_token": token, "format": "xlsx", "scope": "overrides"},
    )
    assert response.status_code == 422 and 'id="format-error"' in response.text
    assert (
        ml_client.post(
            "/ml/queues/support/datasets", data={"format": "csv", "scope": "human"}
        ).status_code
        == 400
    )
    with app.app_context():
        assert db_session().scalars(select(DatasetSnapshot)).all() == []


def test_reviewers_cannot_see_or_start_snapshots(app, factory, ml_client):
    token = csrf_from(ml_client.get("/ml/queues/support/datasets").text)
    ml_client.post(
        "/ml/queues/support/datasets", data={"csrf_token": token, "format": "csv", "scope": "human"}
    )
    reviewer = app.test_client()
    login(reviewer, factory.user("reviewer").email)
    assert reviewer.get("/ml/queues/support/datasets").status_code == 403
    assert reviewer.get("/ml/datasets/1").status_code == 403
    assert reviewer.get("/ml/datasets/1/download").status_code == 403
    assert ml_client.get("/ml/datasets/999999").status_code == 404
    assert ml_client.get("/ml/queues/nope/datasets").status_code == 404
