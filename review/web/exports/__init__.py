"""The ML team's page: decision counts per queue and JSONL downloads of the feedback."""

from flask import Blueprint

bp = Blueprint("exports", __name__)

from review.web.exports import describe, routes, snapshots  # noqa: E402,F401  (registers views on bp)
