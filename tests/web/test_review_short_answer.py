"""A saved decision's answer leaves out the item the client already previews: the next
item's card and recommendation, which review.js takes from its preview. Anything else (a
different item shown, a refused or invalid decision, a plain form post) is answered in full."""

from __future__ import annotations

import re

from tests.conftest import login
from tests.web.test_review_workbench import PREFETCHED, open_review
from tests.web.ui_helpers import add_items, htmx_headers, idempotency_key, reviewer_in, shown_item

PLACEHOLDERS = ('data-from-preview="item-card"', 'data-from-preview="ai-rec"')


def decide(client, html, token, previewed=None, **form):
    """Submit the decision form of the page `html`, as review.js does: with the id of the
    prefetched item it put on screen (`previewed`), if any."""
    item_id, _ = shown_item(html)
    key = idempotency_key(html)
    headers = htmx_headers(token)
    if previewed is not None:
        headers["X-Review-Preview"] = str(previewed)
    data = {"action": "approve", "idempotency_key": key, **form}
    return client.post(f"/queues/support/items/{item_id}/decision", data=data, headers=headers)


def start(app, client, factory, count=4):
    support = factory.queue("support")
    add_items(app, "support", count)
    login(client, reviewer_in(factory, support).email)
    html, token = open_review(client, "support")
    return html, token, int(PREFETCHED.search(html).group(1))


def is_short(html: str) -> bool:
    return all(placeholder in html for placeholder in PLACEHOLDERS)


def test_the_previewed_item_is_not_drawn_again(app, client, factory):
    html, token, next_id = start(app, client, factory)
    answer = decide(client, html, token, previewed=next_id)
    assert answer.status_code == 200
    assert "X-Review-Preview" in answer.headers["Vary"]
    short = answer.text
    assert is_short(short)
    assert shown_item(short) == (next_id, "item-2")
    # Nothing of item-2's card or recommendation: the client has them.
    assert 'class="item-card"' not in short.split('<template id="prefetched-item"')[0]
    assert 'id="item-heading"' not in short and 'id="ai-heading"' not in short
    # What the client lacks is all there: the saved note with its undo, the item's history,
    # its forms with a fresh idempotency key (the approve button names the AI's label), and
    # the next prefetched item in full.
    assert "Saved item-1: approved" in short and 'id="undo-button"' in short
    assert '<details class="history">' in short and "AI suggested “approve”" in short
    assert f'action="/queues/support/items/{next_id}/decision"' in short
    assert "Approve “approve”" in short and 'id="skip-form"' in short
    assert re.search(r'name="idempotency_key" value="[0-9a-f]{32}"', short)
    upcoming = PREFETCHED.search(short)
    assert upcoming and upcoming.group(2) == "item-3"
    assert 'id="next-item-heading"' in short and "Ticket item 3" in short
    # The next decision from the short answer is saved like any other.
    following = decide(client, short, token, previewed=upcoming.group(1))
    assert "Saved item-2: approved" in following.text and is_short(following.text)


def test_any_other_answer_is_drawn_in_full(app, client, factory):
    html, token, next_id = start(app, client, factory, count=6)
    # The client previews an item the server does not show next.
    answer = decide(client, html, token, previewed=next_id + 1000)
    assert answer.status_code == 200 and not is_short(answer.text)
    assert 'id="item-heading"' in answer.text and 'id="ai-heading"' in answer.text
    html, next_id = answer.text, int(PREFETCHED.search(answer.text).group(1))
    # A header that names no item at all (hostile or huge) is no preview either, and is
    # never written back into the page.
    hostile = "<script>alert(1)</script>" + "9" * 10_000
    answer = decide(client, html, token, previewed=hostile)
    assert answer.status_code == 200 and not is_short(answer.text)
    assert "Saved" in answer.text and "<script>alert(1)" not in answer.text
    html, next_id = answer.text, int(PREFETCHED.search(answer.text).group(1))
    # An invalid decision (422) shows the same item again, with the error.
    invalid = decide(client, html, token, previewed=next_id, action="override")
    assert invalid.status_code == 422 and not is_short(invalid.text)
    # A repeated submit (the decision is refused as already made) shows the next item in full.
    saved = decide(client, html, token, previewed=next_id)
    assert is_short(saved.text)
    repeated = decide(client, html, token, previewed=next_id)
    assert "was not saved" in repeated.text and not is_short(repeated.text)
    # Without JavaScript a decision redirects to the page, whatever the header says.
    html = repeated.text
    item_id, _ = shown_item(html)
    key = idempotency_key(html)
    plain = client.post(
        f"/queues/support/items/{item_id}/decision",
        data={"action": "approve", "idempotency_key": key, "csrf_token": token},
        headers={"X-Review-Preview": PREFETCHED.search(html).group(1)},
    )
    assert plain.status_code == 303


def test_skip_escalate_and_undo_are_drawn_in_full(app, client, factory):
    html, token, next_id = start(app, client, factory)
    saved = decide(client, html, token, previewed=next_id)
    assert is_short(saved.text)
    item_id, _ = shown_item(html)
    headers = {**htmx_headers(token), "X-Review-Preview": str(next_id)}
    undone = client.post(f"/queues/support/items/{item_id}/undo", headers=headers)
    assert "Undone: item-1" in undone.text and not is_short(undone.text)
    skipped = client.post(
        f"/queues/support/items/{item_id}/skip", data={"skip_reason": "unsure"}, headers=headers
    )
    assert "Skipped item-1" in skipped.text and not is_short(skipped.text)
