"""Operations endpoints for machines: /healthz for load balancers and orchestrators,
/metrics for Prometheus. Mounted at the site root by app.py."""

from flask import Blueprint

bp = Blueprint("ops", __name__)

from review.web.ops import routes  # noqa: E402,F401  (registers the views on bp)
