"""/metrics: who may scrape it, and figures that match what happened."""

from __future__ import annotations

from datetime import timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select, update

from models import AiCall, Item, Recommendation
from models.base import utcnow
from tests.web.api.helpers import ingest, put_policy, recommended


def samples(response) -> dict[tuple[str, frozenset], float]:
    """{(sample name, labels): value} of a Prometheus text exposition."""
    assert response.status_code == 200, response.text[:300]
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    found = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(found, name: str, **labels) -> float | None:
    return found.get((name, frozenset(labels.items())))


def test_anonymous_and_non_admin_tokens_are_refused(client, as_role):
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers=as_role("reviewer")).status_code == 403
    assert client.get("/metrics", headers={"Authorization": "Bearer guess"}).status_code == 401


def test_configured_scrape_token(app, client):
    app.config["METRICS_TOKEN"] = "s3cret-for-prometheus"
    ok = client.get("/metrics", headers={"Authorization": "Bearer s3cret-for-prometheus"})
    assert value(samples(ok), "workbench_redis_up") == 1
    wrong = client.get("/metrics", headers={"Authorization": "Bearer s3cret-for-prometheuz"})
    assert wrong.status_code == 401


def test_figures_follow_the_items_and_decisions(client, as_role, in_db, factory):
    admin = as_role("admin")
    queue = factory.queue("tickets")
    assert put_policy(client, admin, "tickets", 0.9).status_code == 201
    body = {
        "items": [
            recommended("A-1", "approve", 0.97),
            recommended("A-2", "approve", 0.95),
            recommended("R-1", "reject", 0.5),
            recommended("R-2", "reject", 0.6),
            {"external_id": "P-1", "payload": {"text": "no recommendation yet"}},
        ]
    }
    items = ingest(client, admin, "tickets", body).get_json()["items"]
    by_external = {i["external_id"]: i["id"] for i in items}
    decision = client.post(
        f"/api/v1/items/{by_external['R-1']}/decision",
        json={"action": "override", "label": "approve", "reason_code": "wrong_label"},
        headers=admin,
    )
    assert decision.status_code == 200, decision.get_json()

    def add_ai_facts(session):
        session.execute(
            update(Recommendation)
            .where(Recommendation.item_id.in_([by_external["A-1"], by_external["R-2"]]))
            # Folded into the histogram once settled (services.metrics.SETTLE).
            .values(latency_ms=800.0, created_at=utcnow() - timedelta(minutes=2))
        )
        session.add_all(
            AiCall(
                queue_id=queue.id,
                provider="anthropic",
                model="claude-haiku-4-5",
                mode="interactive",
                outcome=outcome,
                input_tokens=1000,
                output_tokens=50,
                cache_read_tokens=10,
                cost_usd=0.0015,
                latency_ms=800.0,
            )
            for outcome in ("ok", "ok", "invalid")
        )

    in_db(add_ai_facts)
    found = samples(client.get("/metrics", headers=admin))

    assert value(found, "workbench_items", queue="tickets", status="needs_review") == 1
    assert value(found, "workbench_items", queue="tickets", status="auto_approved") == 2
    assert value(found, "workbench_items", queue="tickets", status="decided") == 1
    assert value(found, "workbench_items", queue="tickets", status="pending") == 1
    assert value(found, "workbench_oldest_waiting_seconds", queue="tickets", status="pending") >= 0
    kinds = {"auto_approved": 2, "overridden": 1}
    for kind, n in kinds.items():
        assert value(found, "workbench_decisions_total", queue="tickets", kind=kind) == n
    assert value(found, "workbench_automation_ratio", queue="tickets") == pytest.approx(2 / 4)

    latency = {"queue": "tickets", "source": "external"}
    assert value(found, "workbench_ai_latency_seconds_count", **latency) == 2
    assert value(found, "workbench_ai_latency_seconds_sum", **latency) == pytest.approx(1.6)
    assert value(found, "workbench_ai_latency_seconds_bucket", le="0.5", **latency) == 0
    assert value(found, "workbench_ai_latency_seconds_bucket", le="1.0", **latency) == 2

    model = {"queue": "tickets", "model": "claude-haiku-4-5"}
    assert value(found, "workbench_ai_calls_total", outcome="ok", **model) == 2
    assert value(found, "workbench_ai_calls_total", outcome="invalid", **model) == 1
    assert value(found, "workbench_ai_tokens_total", kind="input", **model) == 3000
    assert value(found, "workbench_ai_tokens_total", kind="cache_read", **model) == 30
    assert value(found, "workbench_ai_cost_usd_total", **model) == pytest.approx(0.0045)

    # The item without a recommendation was handed to the workers: one queued job.
    assert value(found, "workbench_jobs", rq_queue="workbench-test", state="queued") == 1
    assert value(found, "workbench_oldest_queued_job_seconds", rq_queue="workbench-test") >= 0
    assert value(found, "workbench_workers", heartbeat="alive") == 0
    assert value(found, "workbench_webhook_oldest_pending_seconds") is not None


def test_workers_and_their_failures_are_counted(client, as_role, live_worker):
    found = samples(client.get("/metrics", headers=as_role("admin")))
    assert value(found, "workbench_workers", heartbeat="alive") == 1
    assert value(found, "workbench_worker_failed_jobs", worker="test-worker") == 0


def test_latencies_are_counted_once_across_scrapes(client, as_role, in_db, factory):
    admin = as_role("admin")
    factory.queue("fast")
    assert put_policy(client, admin, "fast", 0.9).status_code == 201

    def settle(latency_ms):
        def run(session):
            session.execute(
                update(Recommendation)
                .where(Recommendation.latency_ms.is_(None))
                .values(latency_ms=latency_ms, created_at=utcnow() - timedelta(minutes=2))
            )

        return run

    labels = {"queue": "fast", "source": "external"}
    ingest(client, admin, "fast", recommended("L-1", "approve", 0.5))
    in_db(settle(20.0))
    for _ in range(2):  # the second scrape adds nothing new
        found = samples(client.get("/metrics", headers=admin))
        assert value(found, "workbench_ai_latency_seconds_count", **labels) == 1
    ingest(client, admin, "fast", recommended("L-2", "approve", 0.5))
    ingest(client, admin, "fast", recommended("L-3", "approve", 0.5))  # not settled yet
    in_db(settle(3000.0))
    in_db(
        lambda s: s.execute(
            update(Recommendation)
            .where(
                Recommendation.item_id == s.scalar(select(Item.id).where(Item.external_id == "L-3"))
            )
            .values(created_at=utcnow())
        )
    )
    found = samples(client.get("/metrics", headers=admin))
    assert value(found, "workbench_ai_latency_seconds_count", **labels) == 2
    assert value(found, "workbench_ai_latency_seconds_bucket", le="0.05", **labels) == 1
    assert value(found, "workbench_ai_latency_seconds_bucket", le="5.0", **labels) == 2
    assert value(found, "workbench_ai_latency_seconds_sum", **labels) == pytest.approx(3.02)
