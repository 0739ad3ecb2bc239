"""Calling a service from a form view: a refusal goes back to the page as a message.

Form views (admin imports, ML snapshots) all ended the same way: when the service refused
(a ServiceError), roll the session back, flash the reason and redirect (303) to the page
the form came from. `or_flash_back_to` is that ending, so a view reads as what it does.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from flask import abort, flash, redirect

from review.db import db_session
from review.services.errors import ServiceError


@contextmanager
def or_flash_back_to(url: str) -> Iterator[None]:
    """Run the block's service calls; on a ServiceError, roll back what they wrote, show the
    error's message as a warning and redirect to `url`. Other errors pass through."""
    try:
        yield
    except ServiceError as exc:
        db_session().rollback()
        flash(exc.message, "warning")
        abort(redirect(url, 303))
