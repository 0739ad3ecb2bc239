"""App-wide error pages: HTML for people, the API's JSON error shape under /api/."""

from __future__ import annotations

from flask import Response, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from review.web.auth import bp

MESSAGES = {
    400: "The request could not be understood.",
    403: "You do not have permission to see this page.",
    404: "There is no page at this address.",
    405: "This page does not accept that kind of request.",
}


def _wants_json() -> bool:
    return request.path.startswith("/api/")


def _error_response(error: HTTPException, message: str) -> tuple[Response | str, int]:
    status = error.code or 500
    if _wants_json():
        code = (error.name or "error").lower().replace(" ", "_")
        return jsonify({"error": {"code": code, "message": message, "fields": {}}}), status
    return render_template(
        "errors/error.html", status=status, title=error.name, message=message
    ), status


@bp.app_errorhandler(403)
@bp.app_errorhandler(404)
@bp.app_errorhandler(405)
def _http_error(error: HTTPException) -> tuple[Response | str, int]:
    return _error_response(error, MESSAGES.get(error.code or 0, error.description or ""))


@bp.app_errorhandler(CSRFError)
def _csrf_error(error: CSRFError) -> tuple[Response | str, int]:
    # Usually a page left open across a logout or a server restart: reloading fixes it.
    return _error_response(error, f"{error.description} Reload the page and try again.")
