"""Policy owners' pages: what-if thresholds, policy versions, calibration, the dashboard."""

from flask import Blueprint

bp = Blueprint("policy", __name__)

from review.web.policy import (  # noqa: E402,F401  (registers views)
    calibration_routes,
    dashboard_routes,
    routes,
    version_routes,
)
