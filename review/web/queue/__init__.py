"""Reviewer pages: the queue list, the review screen and the decision endpoint."""

from flask import Blueprint

bp = Blueprint("queue", __name__)

from review.web.queue import (  # noqa: E402,F401
    actions,
    highlight,
    item_page,
    listing,
    payload,
    routes,
)
