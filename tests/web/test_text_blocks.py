"""A queue's instructions as reviewers read them: paragraphs, lists and kept line breaks."""

from __future__ import annotations

from review.web.text_blocks import text_blocks
from tests.conftest import login
from tests.web.ui_helpers import add_items, reviewer_in

INSTRUCTIONS = (
    "Pick the team that owns the ticket.\n"
    "- refund: money back\n"
    "* spam: <b>junk</b>\n"
    "\n"
    "When unsure:\n"
    "1. read the whole ticket\n"
    "2) ask in #triage\n"
    "Then decide.\n\n\n"
    "Thanks."
)


def test_lists_paragraphs_and_line_breaks_are_told_apart():
    blocks = [(block.kind, block.lines) for block in text_blocks(INSTRUCTIONS)]
    assert blocks == [
        ("p", ["Pick the team that owns the ticket."]),
        ("ul", ["refund: money back", "spam: <b>junk</b>"]),
        ("p", ["When unsure:"]),
        ("ol", ["read the whole ticket", "ask in #triage"]),
        ("p", ["Then decide."]),
        ("p", ["Thanks."]),
    ]
    assert text_blocks("") == [] and text_blocks(None) == []
    assert [b.lines for b in text_blocks("one\ntwo")] == [["one", "two"]]


def test_the_review_page_shows_the_instructions_as_a_list_and_escaped(app, client, factory):
    support = factory.queue("support", instructions=INSTRUCTIONS)
    add_items(app, "support", 1)
    login(client, reviewer_in(factory, support).email)
    page = client.get("/queues/support/review").text
    assert "<ul><li>refund: money back</li><li>spam: &lt;b&gt;junk&lt;/b&gt;</li></ul>" in page
    assert "<ol><li>read the whole ticket</li><li>ask in #triage</li></ol>" in page
    assert "<b>junk</b>" not in page
