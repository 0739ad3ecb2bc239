"""The ML page's "Retrain from this snapshot": a job with progress, the per-label report
with accuracy, ECE and the promotion gate, and "Activate" when the gate passes."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from models import AuditEvent, ModelVersion
from review.db import db_session
from review.domain.promotion import Verdict
from tests.conftest import csrf_from, login
from tests.web.exports.helpers import build, create, snapshot, use_export_dir
from tests.workers.helpers import run_worker, seed_decisions
from workers import dataset_eval


@pytest.fixture
def built(app, factory, tmp_path):
    """A queue with a trained local model and a built snapshot; (client, snapshot id)."""
    use_export_dir(app, tmp_path / "exports")
    factory.queue("support")
    reviewer = factory.user("reviewer")
    seed_decisions(app, "support", reviewer, per_label=20)
    seed_decisions(app, "support", reviewer, per_label=20, offset=20)
    ml = factory.user("ml")
    snapshot_id = create(app, "support", ml, format="parquet")
    assert build(app, snapshot_id) == "succeeded"
    client = app.test_client()
    login(client, ml.email)
    return client, snapshot_id


def _active_versions(app) -> list[int]:
    with app.app_context():
        return list(
            db_session().scalars(select(ModelVersion.version).where(ModelVersion.is_active))
        )


def _retrain(client, snapshot_id):
    page = client.get(f"/ml/datasets/{snapshot_id}")
    assert "Retrain from this snapshot" in page.text
    token = csrf_from(page.text)
    started = client.post(
        f"/ml/datasets/{snapshot_id}/retrain",
        data={"csrf_token": token},
        headers={"HX-Request": "true", "HX-Target": "retrain-status", "X-CSRFToken": token},
    )
    assert started.status_code == 200
    assert started.text.lstrip().startswith('<section id="retrain-status"')
    assert 'hx-trigger="every 1s"' in started.text and "<h1>" not in started.text
    poll_url = started.text.split('hx-get="', 1)[1].split('"', 1)[0]
    return token, poll_url


def test_retrain_shows_progress_then_the_report_and_activates_when_the_gate_passes(
    app, built, monkeypatch
):
    client, snapshot_id = built
    monkeypatch.setattr(dataset_eval, "promotion_verdict", lambda old, new: Verdict(True, "fine"))
    before = _active_versions(app)
    token, poll_url = _retrain(client, snapshot_id)
    waiting = client.get(poll_url, headers={"HX-Request": "true"})
    assert "waiting for a worker" in waiting.text and "every 1s" in waiting.text

    run_worker(app)
    done = client.get(poll_url, headers={"HX-Request": "true"})
    assert done.headers["HX-Refresh"] == "true"
    page = client.get(f"/ml/datasets/{snapshot_id}").text
    assert '<tr data-label="escalate">' in page and 'data-metric="ece"' in page
    assert 'data-gate="passes"' in page
    report = snapshot(app, snapshot_id).evaluation
    candidate = report["candidate"]["version"]
    assert f"Activate {candidate}</button>" in page
    assert _active_versions(app) == before  # nothing in force changed yet

    activated = client.post(f"/ml/datasets/{snapshot_id}/activate", data={"csrf_token": token})
    assert activated.status_code == 303
    assert _active_versions(app) == [int(candidate.removeprefix("local-v"))]
    page = client.get(f"/ml/datasets/{snapshot_id}").text
    assert "is now active" in page and f"<strong>{candidate}</strong> is the active model" in page
    with app.app_context():
        actions = set(db_session().scalars(select(AuditEvent.action)))
    assert {"dataset.retrain_requested", "model.activated_from_snapshot"} <= actions


def test_a_held_back_model_needs_the_box_ticked_and_bad_requests_change_nothing(
    app, built, monkeypatch
):
    client, snapshot_id = built
    monkeypatch.setattr(
        dataset_eval, "promotion_verdict", lambda old, new: Verdict(False, "accuracy lower")
    )
    token, _ = _retrain(client, snapshot_id)
    run_worker(app)
    page = client.get(f"/ml/datasets/{snapshot_id}").text
    assert 'data-gate="held-back"' in page and "Activate anyway" in page
    before = _active_versions(app)

    assert client.post(f"/ml/datasets/{snapshot_id}/activate", data={}).status_code == 400
    refused = client.post(
        f"/ml/datasets/{snapshot_id}/activate", data={"csrf_token": token}, follow_redirects=True
    )
    assert "held back by the promotion gate: accuracy lower" in refused.text
    assert _active_versions(app) == before

    forced = client.post(
        f"/ml/datasets/{snapshot_id}/activate", data={"csrf_token": token, "force": "1"}
    )
    assert forced.status_code == 303 and _active_versions(app) != before
    with app.app_context():
        event = db_session().scalar(
            select(AuditEvent).where(AuditEvent.action == "model.activated_from_snapshot")
        )
        assert event.details["forced"] is True and event.actor_user_id is not None


def test_reviewers_cannot_retrain_or_activate(app, built, factory):
    _, snapshot_id = built
    client = app.test_client()
    login(client, factory.user("reviewer", email="r2@example.com").email)
    token = csrf_from(client.get("/").text)
    for action in ("retrain", "activate"):
        response = client.post(f"/ml/datasets/{snapshot_id}/{action}", data={"csrf_token": token})
        assert response.status_code == 403, action
