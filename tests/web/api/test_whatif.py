"""GET /queues/<slug>/whatif: selection-corrected estimates, checked against hand-computed
values, and every bad parameter named."""

from __future__ import annotations

import math

import pytest

from tests.web.api.helpers import error_fields
from tests.web.policy.helpers import Row, add_member, seed, set_policy

Z = 1.959963984540054


def wilson(p: float, n: float) -> tuple[float, float]:
    """The Wilson score interval, written out here independently of review/domain."""
    centre = (p + Z * Z / (2 * n)) / (1 + Z * Z / n)
    half = Z / (1 + Z * Z / n) * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n))
    return centre - half, centre + half


@pytest.fixture
def audited_queue(app, factory, as_role, monkeypatch):
    """14 recommended items; two of the eight above the 0.9 threshold audited at rate 0.25."""
    queue = factory.queue()
    owner = as_role.user("policy_owner")
    add_member(app, queue.slug, owner)
    set_policy(app, queue.slug, owner, 0.9, audit_rate=0.25)
    rows = [
        Row("approve", 0.5, "approve"),
        Row("approve", 0.6, "reject"),
        Row("approve", 0.7, "approve"),
        Row("approve", 0.8, "approve"),
        *[Row("approve", 0.95, "reject") for _ in range(4)],  # first one audited: wrong
        *[Row("approve", 0.97, "approve") for _ in range(4)],  # first one audited: right
        Row("reject", 0.3, "approve"),
        Row("reject", 0.3, "approve"),
    ]
    # One draw per would-be auto-approval, in order: 0.1 and 0.2 fall under the 0.25 rate.
    draws = [0.1, 0.9, 0.9, 0.9, 0.2, 0.5, 0.5, 0.5]
    seed(app, monkeypatch, queue.slug, rows, as_role.user("reviewer"), draws)
    return queue


def whatif(client, headers, slug, **params):
    return client.get(f"/api/v1/queues/{slug}/whatif", query_string=params, headers=headers)


def test_estimate_above_the_threshold_rests_on_the_audit_sample(client, as_role, audited_queue):
    response = whatif(
        client, as_role("policy_owner"), audited_queue.slug, label="approve", threshold="0.9"
    )
    assert response.status_code == 200
    body = response.get_json()
    # Two audited items, weight 1/0.25 = 4 each, one right: precision 4/8, Kish n = 8^2/32 = 2.
    low, high = wilson(0.5, 2)
    assert body == {
        "label": "approve",
        "threshold": 0.9,
        "automation_rate": pytest.approx(8 / 14),
        "precision": pytest.approx(0.5),
        "ci_low": pytest.approx(low),
        "ci_high": pytest.approx(high),
        "n_labeled": 2,
        # All 14 items arrived today: 14 a day, 8 of them auto-approved, half wrong.
        "expected_errors_per_day": pytest.approx(4.0),
    }


def test_estimate_over_all_confidences_weights_reviewed_and_audited_items(
    client, as_role, audited_queue
):
    body = whatif(
        client, as_role("admin"), audited_queue.slug, label="approve", threshold="0"
    ).get_json()
    # Reviewed: 3 right of 4 (weight 1 each); audited: one wrong and one right (weight 4).
    low, high = wilson(7 / 12, 144 / 36)
    assert body["precision"] == pytest.approx(7 / 12)
    assert (body["ci_low"], body["ci_high"]) == (pytest.approx(low), pytest.approx(high))
    assert body["automation_rate"] == pytest.approx(12 / 14)  # every `approve` item
    assert body["expected_errors_per_day"] == pytest.approx(5 / 12 * 12)
    assert body["n_labeled"] == 6


def test_item_route_shows_inclusion_probability_and_audit(client, as_role, audited_queue, app):
    from models import Item, RoutingRecord
    from review.db import db_session

    with app.app_context():
        session = db_session()
        audited = (
            session.query(Item)
            .join(RoutingRecord, RoutingRecord.item_id == Item.id)
            .filter(Item.queue_id == audited_queue.id, RoutingRecord.audit.is_(True))
            .count()
        )
        auto_id = (
            session.query(Item.id)
            .filter_by(queue_id=audited_queue.id, status="auto_approved")
            .first()[0]
        )
        first_id = (
            session.query(Item.id).filter_by(queue_id=audited_queue.id, external_id="x-4").scalar()
        )
    assert audited == 2
    audited_route = client.get(f"/api/v1/items/{first_id}", headers=as_role("reviewer")).get_json()
    assert audited_route["route"]["route"] == "review"
    assert audited_route["route"]["audit"] is True
    assert audited_route["route"]["inclusion_probability"] == 0.25
    auto_route = client.get(f"/api/v1/items/{auto_id}", headers=as_role("reviewer")).get_json()
    assert (auto_route["route"]["audit"], auto_route["route"]["inclusion_probability"]) == (
        False,
        0.0,
    )


def test_target_precision_without_enough_evidence_is_null_with_the_reason(
    client, as_role, audited_queue
):
    body = whatif(
        client,
        as_role("policy_owner"),
        audited_queue.slug,
        label="approve",
        target_precision="0.99",
    ).get_json()
    assert body["threshold"] is None
    assert "not enough evidence" in body["reason"]


def test_target_precision_proposes_the_lowest_threshold_that_meets_it(
    app, client, factory, as_role, monkeypatch
):
    queue = factory.queue()
    set_policy(app, queue.slug, as_role.user("admin"), 1.0)
    rows = [Row("reject", 0.3, "approve"), Row("reject", 0.3, "approve")]
    rows += [Row("reject", 0.95, "reject") for _ in range(60)]
    seed(app, monkeypatch, queue.slug, rows, as_role.user("reviewer"))
    body = whatif(
        client, as_role("admin"), queue.slug, label="reject", target_precision="0.9"
    ).get_json()
    # From 0 the two misses pull the lower bound under 0.9 (60/62); the first candidate
    # above 0.3 leaves 60 right of 60, whose Wilson lower bound is 0.9398.
    assert body["threshold"] == pytest.approx(0.301)
    assert body["ci_low"] == pytest.approx(wilson(1.0, 60)[0])
    assert body["ci_low"] >= 0.9 > wilson(60 / 62, 62)[0]
    assert body["automation_rate"] == pytest.approx(60 / 62)


@pytest.mark.parametrize(
    ("params", "status", "field"),
    [
        ({"threshold": "0.5"}, 400, "label"),
        ({"label": "nope", "threshold": "0.5"}, 422, "label"),
        ({"label": "approve"}, 400, "threshold"),
        ({"label": "approve", "threshold": "0.5", "target_precision": "0.9"}, 400, "threshold"),
        ({"label": "approve", "threshold": "high"}, 422, "threshold"),
        ({"label": "approve", "threshold": "1.5"}, 422, "threshold"),
        ({"label": "approve", "threshold": "nan"}, 422, "threshold"),
        ({"label": "approve", "threshold": "-0.1"}, 422, "threshold"),
        ({"label": "approve", "target_precision": "0"}, 422, "target_precision"),
        ({"label": "approve", "target_precision": "1e999"}, 422, "target_precision"),
    ],
)
def test_bad_parameters_are_named(client, factory, as_role, params, status, field):
    queue = factory.queue()
    response = whatif(client, as_role("admin"), queue.slug, **params)
    assert response.status_code == status
    assert field in error_fields(response)


def test_only_policy_owners_of_the_queue(app, client, factory, as_role):
    queue = factory.queue()
    reviewer = whatif(client, as_role("reviewer"), queue.slug, label="approve", threshold="0.5")
    assert reviewer.status_code == 403
    outsider = whatif(
        client, as_role.outsider("policy_owner"), queue.slug, label="approve", threshold="0.5"
    )
    assert outsider.status_code == 403 and "slug" in error_fields(outsider)
    member = whatif(client, as_role("policy_owner"), queue.slug, label="approve", threshold="0.5")
    assert member.status_code == 200
    assert member.get_json()["precision"] is None  # no evidence yet, and it says so


def test_put_policy_takes_an_audit_rate(client, factory, as_role):
    queue = factory.queue()
    url = f"/api/v1/queues/{queue.slug}/policy"
    body = {"default_threshold": 0.9, "audit_rate": 0.02, "note": "audit 2%"}
    assert client.put(url, json=body, headers=as_role("admin")).get_json()["audit_rate"] == 0.02
    # Leaving it out keeps the audit on; a bad one is refused and changes nothing.
    kept = client.put(url, json={"default_threshold": 0.8, "note": "n"}, headers=as_role("admin"))
    assert kept.get_json()["audit_rate"] == 0.02
    for bad in (1.5, -0.1, "2%", True):
        response = client.put(
            url,
            json={"default_threshold": 0.9, "audit_rate": bad, "note": "n"},
            headers=as_role("admin"),
        )
        assert response.status_code == 422 and "audit_rate" in error_fields(response)
    assert client.get(url, headers=as_role("admin")).get_json()["version"] == 3
