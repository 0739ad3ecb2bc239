"""An item opened from the queue page: where it stands, its history, and taking it."""

from __future__ import annotations

import re

from sqlalchemy import select

from models import Item
from review.db import db_session
from tests.conftest import csrf_from, login
from tests.web.ui_helpers import add_items, htmx_headers, reviewer_in, shown_item


def item_ids(app, slug: str) -> dict[str, int]:
    with app.app_context():
        rows = db_session().execute(select(Item.external_id, Item.id)).all()
        return {external_id: item_id for external_id, item_id in rows}


def lease_of(app, item_id: int) -> int | None:
    with app.app_context():
        return db_session().get(Item, item_id).leased_by_id


def take(client, slug: str, item_id: int, token: str | None):
    data = {"csrf_token": token} if token else {}
    return client.post(f"/queues/{slug}/items/{item_id}/take", data=data)


def test_queue_list_links_each_item_to_its_page(app, client, factory):
    support = factory.queue("support")
    add_items(app, "support", 2)
    login(client, reviewer_in(factory, support).email)
    ids = item_ids(app, "support")

    html = client.get("/queues/support").text

    for external_id, item_id in ids.items():
        assert f'href="/queues/support/items/{item_id}">{external_id}</a>' in html


def test_item_page_shows_payload_advice_status_and_full_history(app, client, factory):
    support = factory.queue("support")
    add_items(app, "support", 1, payload={"subject": "Refund <b>now</b>", "body": "Please help"})
    login(client, reviewer_in(factory, support).email)
    item_id = item_ids(app, "support")["item-1"]

    page = client.get(f"/queues/support/items/{item_id}")

    assert page.status_code == 200
    html = page.text
    assert "Refund &lt;b&gt;now&lt;/b&gt;" in html and "Please help" in html
    assert "Status: <strong>awaiting review</strong>" in html
    assert "The customer says the issue is solved." in html  # the AI's rationale
    assert re.search(r'<details class="history" open>', html)
    assert "routed to review" in html
    assert 'id="take-item"' in html and "Review this item" in html
    # Only looking: the page leases nothing.
    assert lease_of(app, item_id) is None


def test_taking_an_item_puts_it_on_the_review_screen_and_returns_the_others(app, client, factory):
    support = factory.queue("support")
    add_items(app, "support", 4)
    login(client, reviewer_in(factory, support).email)
    ids = item_ids(app, "support")
    review = client.get("/queues/support/review")
    on_screen, _ = shown_item(review.text)
    held_before = {i for i in ids.values() if lease_of(app, i) is not None}
    assert on_screen in held_before and len(held_before) == 2  # shown and prefetched
    chosen = next(i for i in ids.values() if i not in held_before)

    answer = take(client, "support", chosen, csrf_from(review.text))

    assert answer.status_code == 303
    assert answer.headers["Location"].endswith("/queues/support/review")
    # The items held before went back to the queue; the chosen one is now on screen.
    for item_id in held_before:
        assert lease_of(app, item_id) is None
    after = client.get("/queues/support/review")
    assert shown_item(after.text)[0] == chosen
    own = client.get(f"/queues/support/items/{chosen}").text
    assert "it is on your review screen" in own and "Back to reviewing it" in own
    # ...and it can be decided from there.
    decision = client.post(
        f"/queues/support/items/{chosen}/decision",
        data={"action": "approve"},
        headers=htmx_headers(csrf_from(after.text)),
    )
    assert decision.status_code == 200
    assert "Saved item-" in decision.text


def test_an_item_someone_else_reviews_names_them_and_cannot_be_taken(app, client, factory):
    support = factory.queue("support")
    add_items(app, "support", 1)
    other = reviewer_in(factory, support, email="ada@example.com")
    other_client = app.test_client()
    login(other_client, other.email)
    held, _ = shown_item(other_client.get("/queues/support/review").text)
    login(client, reviewer_in(factory, support).email)

    page = client.get(f"/queues/support/items/{held}")
    assert "on <strong>ada@example.com</strong>'s review screen (held for them until" in page.text
    assert 'id="take-item"' not in page.text

    answer = take(client, "support", held, csrf_from(page.text))
    assert answer.status_code == 303
    assert answer.headers["Location"].endswith(f"/queues/support/items/{held}")
    followed = client.get(answer.headers["Location"])
    assert "cannot be reviewed now: it is on ada@example.com&#39;s review screen" in followed.text
    assert lease_of(app, held) == other.id  # nothing changed


def test_decided_items_can_be_browsed_and_say_who_decided(app, client, factory):
    support = factory.queue("support")
    add_items(app, "support", 2)
    login(client, reviewer_in(factory, support, email="grace@example.com").email)
    review = client.get("/queues/support/review")
    item_id, external_id = shown_item(review.text)
    client.post(
        f"/queues/support/items/{item_id}/decision",
        data={
            "action": "override",
            "label": "reject",
            "reason_code": "missing_context",
            "comment": "No order number",
        },
        headers=htmx_headers(csrf_from(review.text)),
    )

    listing = client.get("/queues/support?status=decided")
    assert listing.status_code == 200
    assert f">{external_id}</a>" in listing.text
    assert '<th scope="col">Final label, decided (UTC)</th>' in listing.text
    assert '<span class="label-chip small">reject</span>' in listing.text
    waiting = client.get("/queues/support").text
    assert f">{external_id}</a>" not in waiting
    counts = client.get("/queues/support/counts?status=decided")
    assert counts.status_code == 200
    assert 'data-count="matching">1<' in counts.text

    page = client.get(f"/queues/support/items/{item_id}").text
    assert "Status: <strong>decided by a person</strong>" in page
    assert "grace@example.com" in page and "overrode the AI with" in page
    assert '<span class="label-chip">reject</span>' in page
    assert "reason: missing context" in page and "No order number" in page
    # The history words the reason as the form lists it, not as its code.
    assert "overrode to “reject” (missing context): “No order number”" in page
    assert 'id="take-item"' not in page
    answer = take(client, "support", item_id, csrf_from(page))
    followed = client.get(answer.headers["Location"]).text
    assert "cannot be reviewed now: already decided by grace@example.com" in followed


def test_decided_items_are_filtered_by_who_decided_and_how(app, client, factory):
    support = factory.queue("support")
    add_items(app, "support", 3)
    grace = reviewer_in(factory, support, email="grace@example.com")
    other = app.test_client()
    login(other, reviewer_in(factory, support, email="hal@example.com").email)
    login(client, grace.email)
    review = client.get("/queues/support/review")
    graces_item, graces_id = shown_item(review.text)
    client.post(
        f"/queues/support/items/{graces_item}/decision",
        data={"action": "override", "label": "reject", "reason_code": "missing_context"},
        headers=htmx_headers(csrf_from(review.text)),
    )
    hals_review = other.get("/queues/support/review")
    hals_item, hals_id = shown_item(hals_review.text)
    other.post(
        f"/queues/support/items/{hals_item}/decision",
        data={"action": "approve"},
        headers=htmx_headers(csrf_from(hals_review.text)),
    )

    everyone = client.get("/queues/support?status=decided").text
    assert '<th scope="col">Decided by</th>' in everyone
    assert "<td>grace@example.com</td>" in everyone and "<td>hal@example.com</td>" in everyone
    # The form offers the people who may decide, and keeps the choice made.
    assert f'<option value="{grace.id}">grace@example.com</option>' in everyone
    graces = client.get(f"/queues/support?status=decided&decided_by={grace.id}").text
    assert f'<option value="{grace.id}" selected>grace@example.com</option>' in graces
    assert f">{graces_id}</a>" in graces and f">{hals_id}</a>" not in graces
    overridden = client.get("/queues/support?status=decided&outcome=overridden").text
    assert f">{graces_id}</a>" in overridden and f">{hals_id}</a>" not in overridden
    approved = client.get("/queues/support?status=decided&final_label=approve").text
    assert f">{hals_id}</a>" in approved and f">{graces_id}</a>" not in approved
    # The live counts count what the list shows.
    counts = client.get(f"/queues/support/counts?status=decided&decided_by={grace.id}").text
    assert 'data-count="matching">1<' in counts

    # Someone who is not offered: an error next to the field, and the unfiltered list.
    unknown = client.get("/queues/support?status=decided&decided_by=424242")
    assert unknown.status_code == 400
    assert '<p class="field-error" id="f-decided-by-error">choose a person from the list</p>' in (
        unknown.text
    )
    garbage = client.get("/queues/support?status=decided&outcome=%3Cscript%3E")
    assert garbage.status_code == 400 and "<script>" not in garbage.text


def test_policy_owners_may_look_but_not_take(app, client, factory):
    support = factory.queue("support")
    add_items(app, "support", 1)
    login(client, reviewer_in(factory, support, role="policy_owner").email)
    item_id = item_ids(app, "support")["item-1"]

    page = client.get(f"/queues/support/items/{item_id}")

    assert page.status_code == 200
    assert 'id="take-item"' not in page.text
    assert take(client, "support", item_id, csrf_from(page.text)).status_code == 403
    assert lease_of(app, item_id) is None


def test_an_item_of_another_queue_is_not_found(app, client, factory):
    support = factory.queue("support")
    factory.queue("legal")
    add_items(app, "legal", 1, prefix="secret")
    login(client, reviewer_in(factory, support).email)
    secret = item_ids(app, "legal")["secret-1"]

    assert client.get(f"/queues/support/items/{secret}").status_code == 404
    assert client.get(f"/queues/legal/items/{secret}").status_code == 404
    page = client.get("/queues/support")
    assert take(client, "support", secret, csrf_from(page.text)).status_code == 404
    assert lease_of(app, secret) is None


def test_taking_needs_the_csrf_token(app, client, factory):
    support = factory.queue("support")
    add_items(app, "support", 1)
    login(client, reviewer_in(factory, support).email)
    item_id = item_ids(app, "support")["item-1"]

    assert take(client, "support", item_id, None).status_code == 400
    assert lease_of(app, item_id) is None


def test_an_item_is_found_by_its_id(app, client, factory):
    support = factory.queue("support")
    factory.queue("legal")
    add_items(app, "support", 2)
    add_items(app, "legal", 1, prefix="secret")
    login(client, reviewer_in(factory, support).email)
    ids = item_ids(app, "support")

    found = client.get("/queues/support/find?external_id=+item-2+")
    assert found.status_code == 303
    assert found.headers["Location"].endswith(f"/queues/support/items/{ids['item-2']}")

    missing = client.get("/queues/support/find?external_id=secret-1")  # another queue's
    assert missing.status_code == 404
    assert 'id="find-item-error">No item “secret-1” in this queue<' in missing.text
    assert 'value="secret-1"' in missing.text
    assert ">item-1</a>" in missing.text  # the list is still there
    blank = client.get("/queues/support/find?external_id=")
    assert blank.status_code == 400
    assert 'id="find-item-error">Type the item&#39;s id<' in blank.text
    hostile = client.get("/queues/support/find", query_string={"external_id": "<b>x</b>" * 50})
    assert hostile.status_code == 404 and "<b>x</b>" not in hostile.text


def test_an_item_only_lined_up_for_someone_else_can_be_taken(app, client, factory):
    # The review screen leases the next item ahead (prefetch); that is not someone
    # reviewing it. Taken by hand, the other reviewer's screen moves on to another item.
    support = factory.queue("support")
    add_items(app, "support", 4)
    other = reviewer_in(factory, support, email="ada@example.com")
    other_client = app.test_client()
    login(other_client, other.email)
    other_page = other_client.get("/queues/support/review").text
    on_their_screen, _ = shown_item(other_page)
    lined_up = next(
        i for i in item_ids(app, "support").values() if i != on_their_screen and lease_of(app, i)
    )
    me = reviewer_in(factory, support)
    login(client, me.email)

    page = client.get(f"/queues/support/items/{lined_up}").text
    assert "lined up as <strong>ada@example.com</strong>'s next item" in page
    assert "(ada@example.com gets another)" in page
    assert take(client, "support", lined_up, csrf_from(page)).status_code == 303
    assert lease_of(app, lined_up) == me.id
    assert shown_item(client.get("/queues/support/review").text)[0] == lined_up

    # Their next decision: their page had put the lined-up item on screen (the preview);
    # the answer shows another one instead, and their decision is saved.
    answer = other_client.post(
        f"/queues/support/items/{on_their_screen}/decision",
        data={"action": "approve"},
        headers={**htmx_headers(csrf_from(other_page)), "X-Review-Preview": str(lined_up)},
    )
    assert "Saved item-" in answer.text
    next_for_them, _ = shown_item(answer.text)
    assert next_for_them not in (lined_up, on_their_screen)
    assert lease_of(app, next_for_them) == other.id
    assert lease_of(app, lined_up) == me.id
