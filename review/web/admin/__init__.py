"""Admin pages: queues, people and bulk imports, without the API.

`bp` (mounted at /admin) is for admins only. `onboarding_bp` (mounted at /account) holds
the pages a one-time invitation or reset link opens; they need no login, only the link.
"""

from flask import Blueprint

bp = Blueprint("admin", __name__)
onboarding_bp = Blueprint("onboarding", __name__)

from review.web.admin import (  # noqa: E402,F401  (registers views on the blueprints)
    audit_views,
    imports_views,
    onboarding,
    ops_views,
    people_views,
    queue_views,
    token_views,
    webhook_views,
)
