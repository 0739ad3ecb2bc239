"""The policy owner's pages: what-if figures and fragments, versions, calibration, dashboard."""

from __future__ import annotations

import re

import pytest

from review.db import db_session
from review.services import queues
from tests.conftest import csrf_from, login
from tests.web.policy.helpers import Row, add_member, seed, set_policy


@pytest.fixture
def owner(app, factory):
    return factory.user("policy_owner")


@pytest.fixture
def tuned_queue(app, factory, owner, monkeypatch):
    """A queue whose `approve` label is right 40 of 40 times at 0.95 and 6 of 10 at 0.5."""
    queue = factory.queue()
    add_member(app, queue.slug, owner)
    reviewer = factory.user("reviewer")
    rows = [Row("approve", 0.95, "approve") for _ in range(40)]
    rows += [Row("approve", 0.5, "approve" if i < 6 else "reject") for i in range(10)]
    seed(app, monkeypatch, queue.slug, rows, reviewer)
    return queue


def figure(html: str, name: str) -> str:
    match = re.search(rf'data-figure="{name}">([^<]*)<', html)
    assert match, f"no figure {name}"
    return match.group(1).strip()


def test_whatif_page_shows_figures_for_the_thresholds_in_the_url(client, owner, tuned_queue):
    login(client, owner.email)
    page = client.get(f"/policy/queues/{tuned_queue.slug}/?t_approve=0.9")
    assert page.status_code == 200
    # 40 of 50 recommended items are at 0.95: 80% automation, all 40 right.
    assert figure(page.text, "automation") == "80.0%"
    assert figure(page.text, "precision") == "100.00%"
    assert "<svg" in page.text and "Wilson interval on the Kish effective sample size" in page.text


def test_slider_fragment_updates_one_label_and_the_totals(client, owner, tuned_queue):
    login(client, owner.email)
    page = client.get(f"/policy/queues/{tuned_queue.slug}/")
    headers = {"HX-Request": "true", "HX-Target": "figures-0", "X-CSRFToken": csrf_from(page.text)}
    fragment = client.get(
        f"/policy/queues/{tuned_queue.slug}/?t_approve=0.4&t_reject=1&t_escalate=1",
        headers=headers,
    )
    assert fragment.status_code == 200
    assert "<html" not in fragment.text and "HX-Request" in fragment.headers["Vary"]
    assert figure(fragment.text, "automation") == "100.0%"
    assert figure(fragment.text, "precision") == "92.00%"  # 46 right of 50
    assert 'hx-swap-oob="true"' in fragment.text
    assert figure(fragment.text, "total-automation") == "100.0%"


def test_target_mode_proposes_thresholds_and_says_when_it_cannot(client, owner, tuned_queue):
    login(client, owner.email)
    page = client.get(f"/policy/queues/{tuned_queue.slug}/?target_precision=90%25")
    assert page.status_code == 200
    rows = dict(
        re.findall(
            r'data-proposal="(\w+)">.*?data-figure="proposed-threshold">([^<]*)<', page.text, re.S
        )
    )
    # Above 0.5 the 40 right answers give a Wilson lower bound of 0.912 >= 0.9.
    assert rows["approve"] == "0.501"
    assert rows["reject"] == "none" and "no human-labeled items" in page.text


def test_bad_target_is_shown_next_to_the_field(client, owner, tuned_queue):
    login(client, owner.email)
    page = client.get(f"/policy/queues/{tuned_queue.slug}/?target_precision=lots")
    assert page.status_code == 422
    assert 'id="target-error"' in page.text


def test_new_version_from_the_page_needs_a_note_and_valid_numbers(app, client, owner, tuned_queue):
    login(client, owner.email)
    page = client.get(f"/policy/queues/{tuned_queue.slug}/")
    form = {
        "csrf_token": csrf_from(page.text),
        "threshold:approve": "0.9",
        "threshold:reject": "2",
        "threshold:escalate": "1",
        "default_threshold": "1",
        "audit_rate_percent": "2",
        "note": "",
    }
    rejected = client.post(f"/policy/queues/{tuned_queue.slug}/versions", data=form)
    assert rejected.status_code == 422
    assert 'id="note-error"' in rejected.text
    form["note"] = "evidence says 0.9"
    rejected = client.post(f"/policy/queues/{tuned_queue.slug}/versions", data=form)
    assert rejected.status_code == 422 and 'id="version-1-error"' in rejected.text
    form["threshold:reject"] = "1"
    saved = client.post(f"/policy/queues/{tuned_queue.slug}/versions", data=form)
    assert saved.status_code == 303
    with app.app_context():
        policy = queues.current_policy(db_session(), tuned_queue)
        assert (policy.version, policy.thresholds["approve"], policy.audit_rate) == (2, 0.9, 0.02)
        assert policy.note == "evidence says 0.9"


def test_policy_pages_need_a_policy_owner_who_is_a_member(app, client, factory, tuned_queue):
    reviewer = factory.user("reviewer")
    login(client, reviewer.email)
    assert client.get(f"/policy/queues/{tuned_queue.slug}/").status_code == 403
    outsider = factory.user("policy_owner")
    client.post("/logout", data={"csrf_token": csrf_from(client.get("/").text)})
    login(client, outsider.email)
    for page in ("", "versions", "calibration", "dashboard"):
        assert client.get(f"/policy/queues/{tuned_queue.slug}/{page}").status_code == 403
    assert tuned_queue.slug not in client.get("/policy/").text


def test_versions_page_diffs_and_rolls_back(app, client, owner, tuned_queue):
    set_policy(app, tuned_queue.slug, owner, 0.95, audit_rate=0.05, approve=0.9)
    login(client, owner.email)
    page = client.get(f"/policy/queues/{tuned_queue.slug}/versions?from=1&to=2")
    assert page.status_code == 200
    diff = page.text.split("data-diff>")[1].split("</div>")[0]
    assert "approve</strong> threshold:" in diff and "1.000 → 0.900" in diff  # no space before ":"
    assert "0% → 5%" in diff
    token = csrf_from(page.text)
    refused = client.post(
        f"/policy/queues/{tuned_queue.slug}/versions/1/rollback", data={"csrf_token": token}
    )
    assert refused.status_code == 303
    with app.app_context():
        assert queues.current_policy(db_session(), tuned_queue).version == 2
    client.post(
        f"/policy/queues/{tuned_queue.slug}/versions/1/rollback",
        data={"csrf_token": token, "note": "too aggressive"},
    )
    with app.app_context():
        policy = queues.current_policy(db_session(), tuned_queue)
        assert (policy.version, policy.rollback_of, policy.thresholds, policy.audit_rate) == (
            3,
            1,
            {},
            0.0,
        )


def test_compare_form_offers_the_previous_version_against_the_newest(
    app, client, owner, tuned_queue
):
    set_policy(app, tuned_queue.slug, owner, 0.95)
    set_policy(app, tuned_queue.slug, owner, 0.9)
    login(client, owner.email)
    page = client.get(f"/policy/queues/{tuned_queue.slug}/versions").text

    def selected(name: str) -> str:
        select = page.split(f'<select id="{name}"')[1].split("</select>")[0]
        return re.search(r'value="(\d+)" selected', select).group(1)

    # Three versions: comparing 2 with 3 is the question a new owner has; 3 with 3 says nothing.
    assert (selected("from"), selected("to")) == ("2", "3")


def test_calibration_page_and_recalibration(app, client, owner, tuned_queue):
    login(client, owner.email)
    page = client.get(f"/policy/queues/{tuned_queue.slug}/calibration")
    assert page.status_code == 200
    assert 'data-calibration-label="approve"' in page.text and "ECE" in page.text
    token = csrf_from(page.text)
    missing_note = client.post(
        f"/policy/queues/{tuned_queue.slug}/calibration",
        data={"csrf_token": token, "method": "platt"},
    )
    assert missing_note.status_code == 422 and 'id="recal-note-error"' in missing_note.text
    saved = client.post(
        f"/policy/queues/{tuned_queue.slug}/calibration",
        data={"csrf_token": token, "method": "isotonic", "note": "0.5 means 60%"},
    )
    assert saved.status_code == 303
    with app.app_context():
        policy = queues.current_policy(db_session(), tuned_queue)
        assert policy.recalibration["method"] == "isotonic"
        assert list(policy.recalibration["labels"]) == ["approve"]


def test_recalibration_fits_only_the_model_recommending_now(
    app, client, factory, owner, tuned_queue, monkeypatch
):
    # tuned_queue's 50 labeled items came from model "m"; now "tfidf" recommends, with
    # only 3 labeled items of its own: too few to fit, whatever "m" had.
    rows = [Row("approve", 0.7, "approve", model="tfidf") for _ in range(3)]
    seed(app, monkeypatch, tuned_queue.slug, rows, factory.user("reviewer"), prefix="new")
    login(client, owner.email)
    page = client.get(f"/policy/queues/{tuned_queue.slug}/calibration")
    assert "<strong>tfidf</strong>" in page.text and figure(page.text, "fit-items") == "3"
    refused = client.post(
        f"/policy/queues/{tuned_queue.slug}/calibration",
        data={"csrf_token": csrf_from(page.text), "method": "platt", "note": "refit"},
    )
    assert refused.status_code == 422
    error = re.search(r'id="method-error">([^<]*)<', refused.text).group(1)
    assert "nothing to fit on tfidf&#39;s labeled items" in error
    with app.app_context():
        assert queues.current_policy(db_session(), tuned_queue).recalibration is None


def test_dashboard_renders_every_chart(client, owner, tuned_queue):
    login(client, owner.email)
    page = client.get(f"/policy/queues/{tuned_queue.slug}/dashboard")
    assert page.status_code == 200
    assert page.text.count("<svg") == 7
    assert 'data-alarm="audit precision"' in page.text


def test_whatif_page_warns_when_the_evidence_comes_from_another_model(
    app, client, factory, owner, monkeypatch
):
    monkeypatch.setitem(app.config, "POLICY_STATS_MAX_STALE_SECONDS", 0)  # no cached evidence
    queue = factory.queue()
    add_member(app, queue.slug, owner)
    reviewer = factory.user("reviewer")
    old = [Row("approve", 0.9, "approve", model="rules-v1") for _ in range(30)]
    seed(app, monkeypatch, queue.slug, old, reviewer, prefix="old")
    login(client, owner.email)
    # All evidence from the model that recommends now: nothing to warn about.
    page = client.get(f"/policy/queues/{queue.slug}/")
    assert 'data-warning="other-models"' not in page.text

    # A new model takes over; two of its items are labeled, one waits.
    new = [Row("approve", 0.8, "approve", model="tfidf") for _ in range(2)]
    new.append(Row("approve", 0.7, None, model="tfidf"))
    seed(app, monkeypatch, queue.slug, new, reviewer, prefix="new")
    page = client.get(f"/policy/queues/{queue.slug}/")
    warning = re.search(r'data-warning="other-models">(.*?)</p>', page.text, re.S)
    assert warning, "no warning about evidence from another model"
    text = " ".join(re.sub(r"<[^>]+>", "", warning.group(1)).split())
    assert "The AI recommending now, tfidf, has 2 of these 32 labeled items" in text
    assert "scored by rules-v1 (30)" in text
