"""The JSON API, version 1 (mounted at /api/v1 by app.py).

Clients authenticate with `Authorization: Bearer <token>`; every response, errors
included, is JSON (the decision export is JSON Lines).
"""

from flask import Blueprint

bp = Blueprint("api", __name__)

# Imported for their side effect of registering error handlers and views on `bp`.
from review.web.api import (  # noqa: E402, F401
    errors,
    export_routes,
    openapi,
    policy_routes,
    routes,
    webhook_routes,
)
