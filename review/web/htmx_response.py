"""flask_htmx.make_response with its type.

flask_htmx is annotated but ships no py.typed marker, so mypy sees its names as Any; the
views import make_response from here to keep their answers typed.
"""

from __future__ import annotations

from typing import Any, cast

import flask_htmx
from flask import Response


def make_response(*args: Any, **htmx_headers: Any) -> Response:
    """flask.make_response(*args) plus the htmx headers named by keyword (refresh=True ...)."""
    return cast(Response, flask_htmx.make_response(*args, **htmx_headers))
