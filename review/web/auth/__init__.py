"""Logging in and out, the per-role home page, app-wide template helpers and error pages."""

from flask import Blueprint

bp = Blueprint("auth", __name__)

from review.web.auth import errors, routes  # noqa: E402,F401  (registers views on bp)
