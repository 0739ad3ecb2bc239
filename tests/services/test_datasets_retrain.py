"""Closing the loop: `flask datasets retrain` compares the active model with one retrained
on a snapshot, per label, and the ML page shows the same report; `build` and `cleanup`."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from models import DatasetSnapshot
from models.base import utcnow
from review.db import db_session
from tests.conftest import login
from tests.web.exports.helpers import create, snapshot, use_export_dir
from tests.workers.helpers import seed_decisions


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
