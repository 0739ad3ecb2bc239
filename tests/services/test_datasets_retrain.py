"""Closing the loop: `flask datasets retrain` compares the active model with one retrained
on a snapshot, per label, and the ML page shows the same report; `build` and `cleanup`."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from models import AuditEvent, DatasetSnapshot, ModelVersion, Queue
from models.base import utcnow
from review.db import db_session
from review.domain.promotion import Verdict
from tests.conftest import login
from tests.web.exports.helpers import create, snapshot, use_export_dir
from tests.workers.helpers import seed_decisions
from workers import dataset_eval


@pytest.fixture
def trained_queue(app, factory, tmp_path):
    use_export_dir(app, tmp_path / "exports")
    factory.queue("support")
    reviewer = factory.user("reviewer")
    seed_decisions(app, "support", reviewer, per_label=20)
    seed_decisions(app, "support", reviewer, per_label=20, offset=20)
    return factory.user("ml")


def test_retrain_prints_old_vs_new_per_label_and_the_page_shows_it(app, runner, trained_queue):
    snapshot_id = create(app, "support", trained_queue, format="parquet")
    built = runner.invoke(args=["datasets", "build", str(snapshot_id)])
    assert built.exit_code == 0 and "succeeded" in built.output

    result = runner.invoke(args=["datasets", "retrain", str(snapshot_id)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("support v1 (sha256 ")
    for label in ("approve", "reject", "escalate"):
        assert any(line.startswith(label) for line in lines), result.output
    assert "accuracy: old " in result.output and ", new " in result.output

    report = snapshot(app, snapshot_id).evaluation
    eval_rows = snapshot(app, snapshot_id).datasheet["counts"]["counts_per_split"]["eval"]
    assert report["n_eval"] == eval_rows and report["n_train"] == 120 - eval_rows
    assert report["old"]["model"].startswith("local-v")
    assert {row["label"] for row in report["per_label"]} == {"approve", "reject", "escalate"}
    assert sum(row["support"] for row in report["per_label"]) == eval_rows
    assert 0.5 < report["new"]["accuracy"] <= 1.0  # the tickets' words give labels away

    client = app.test_client()
    login(client, trained_queue.email)
    page = client.get(f"/ml/datasets/{snapshot_id}").text
    assert "Retrained model vs the active one" in page
    assert '<tr data-label="escalate">' in page


def test_retrain_refuses_a_snapshot_that_is_not_built(app, runner, trained_queue):
    snapshot_id = create(app, "support", trained_queue)
    result = runner.invoke(args=["datasets", "retrain", str(snapshot_id)])
    assert result.exit_code == 1 and "queued" in result.output
    assert runner.invoke(args=["datasets", "retrain", "999999"]).exit_code == 1


def test_cleanup_deletes_expired_files_and_keeps_metadata(app, runner, trained_queue, tmp_path):
    snapshot_id = create(app, "support", trained_queue, format="csv")
    runner.invoke(args=["datasets", "build", str(snapshot_id)])
    assert runner.invoke(args=["datasets", "cleanup"]).output.startswith("expired 0")
    with app.app_context():
        session = db_session()
        session.execute(update(DatasetSnapshot).values(expires_at=utcnow() - timedelta(hours=1)))
        session.commit()
    result = runner.invoke(args=["datasets", "cleanup"])
    assert result.output.strip() == f"expired 1 snapshot(s): [{snapshot_id}]"
    gone = snapshot(app, snapshot_id)
    assert gone.status == "expired" and gone.row_count == 120 and gone.datasheet
    assert not (tmp_path / "exports" / gone.storage_dir).exists()


def _models(app) -> list[tuple[int, bool, dict]]:
    with app.app_context():
        rows = db_session().execute(
            select(ModelVersion.version, ModelVersion.is_active, ModelVersion.metrics)
            .join(Queue, Queue.id == ModelVersion.queue_id)
            .where(Queue.slug == "support")
            .order_by(ModelVersion.version)
        )
        return [tuple(row) for row in rows]


def _activations(app) -> list[AuditEvent]:
    with app.app_context():
        session = db_session()
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "model.activated_from_snapshot")
        ).all()
        session.expunge_all()
        return list(events)


def _built(app, runner, ml) -> int:
    snapshot_id = create(app, "support", ml, format="jsonl")
    assert runner.invoke(args=["datasets", "build", str(snapshot_id)]).exit_code == 0
    return snapshot_id


def test_retrain_activate_puts_the_model_in_force_when_the_gate_passes(
    app, runner, trained_queue, monkeypatch
):
    snapshot_id = _built(app, runner, trained_queue)
    before = _models(app)
    monkeypatch.setattr(
        dataset_eval, "promotion_verdict", lambda old, new: Verdict(True, "not worse")
    )

    result = runner.invoke(args=["datasets", "retrain", str(snapshot_id), "--activate"])

    assert result.exit_code == 0, result.output
    assert "promotion gate: passes (not worse)" in result.output
    assert "ECE: old " in result.output
    after = _models(app)
    assert len(after) == len(before) + 1
    version, active, metrics = after[-1]
    assert active and [v for v, a, _ in after if a] == [version]  # the only active one
    assert metrics["snapshot_id"] == snapshot_id and "eval split" in metrics["holdout"]
    assert f"activated support model v{version}" in result.output
    [event] = _activations(app)
    assert event.details["forced"] is False and event.actor == "cli"
    assert snapshot(app, snapshot_id).evaluation["gate"]["passes"] is True


def test_a_held_back_model_is_activated_only_with_force_and_that_is_audited(
    app, runner, trained_queue, monkeypatch
):
    snapshot_id = _built(app, runner, trained_queue)
    before = _models(app)
    monkeypatch.setattr(
        dataset_eval,
        "promotion_verdict",
        lambda old, new: Verdict(False, "accuracy 0.500 below the current 0.900"),
    )

    refused = runner.invoke(args=["datasets", "retrain", str(snapshot_id), "--activate"])
    assert refused.exit_code == 1
    assert "held back by the promotion gate: accuracy 0.500 below" in refused.output
    after_refusal = _models(app)
    assert [a for _, a, _ in after_refusal] == [a for _, a, _ in before] + [False]
    assert _activations(app) == []  # kept as a candidate, not in force
    assert snapshot(app, snapshot_id).evaluation["gate"]["passes"] is False  # report kept

    forced = runner.invoke(args=["datasets", "retrain", str(snapshot_id), "--activate", "--force"])
    assert forced.exit_code == 0, forced.output
    version, active, metrics = _models(app)[-1]
    assert active and metrics["promotion"]["forced"] is True
    [event] = _activations(app)
    assert event.details["forced"] is True and "below the current" in event.details["gate"]


def test_force_without_activate_is_refused(app, runner, trained_queue):
    snapshot_id = _built(app, runner, trained_queue)
    result = runner.invoke(args=["datasets", "retrain", str(snapshot_id), "--force"])
    assert result.exit_code == 2 and "--force only goes with --activate" in result.output
