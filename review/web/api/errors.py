"""JSON errors for the API: every failure is `{"error": {"code", "message", "fields"}}`."""

from __future__ import annotations

from flask import Response, current_app, jsonify, request
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from review.db import db_session
from review.services.errors import ServiceError
from review.web.api import bp

# Every method an API endpoint answers; the fallback route below takes all of them.
API_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
# Stable codes for the HTTP errors clients are likely to branch on.
HTTP_ERROR_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
}


def error_response(
    status: int, code: str, message: str, fields: dict[str, str] | None = None
) -> Response:
    """The one error shape of the API. `fields` maps each offending input to what is wrong."""
    response = jsonify({"error": {"code": code, "message": message, "fields": fields or {}}})
    response.status_code = status
    return response


@bp.errorhandler(ServiceError)
def _service_error(exc: ServiceError) -> Response:
    db_session().rollback()
    return error_response(exc.status, exc.code, exc.message, exc.fields)


@bp.errorhandler(IntegrityError)
def _integrity_error(_exc: IntegrityError) -> Response:
    # Services check uniqueness first, so this is a concurrent request that won a race
    # for the same unique key (a slug, a policy version): the client may retry.
    db_session().rollback()
    return error_response(409, "conflict", "the change collided with a concurrent change; retry")


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> Response:
    """Werkzeug's errors (bad JSON, 413, and the 500 for a crash) as JSON, never HTML."""
    status = exc.code or 500
    code = HTTP_ERROR_CODES.get(status, (exc.name or "error").lower().replace(" ", "_"))
    response = error_response(status, code, exc.description or exc.name)
    if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
        response.allow.update(exc.valid_methods)
    return response


def _methods_of_other_endpoints() -> list[str]:
    """The methods that reach a real endpoint at this URL (empty if the URL has none)."""
    adapter = current_app.create_url_adapter(request)
    # Flask builds an adapter whenever it is given a request; None is for no request at all.
    assert adapter is not None
    allowed = []
    for method in API_METHODS:
        try:
            endpoint, _ = adapter.match(method=method)
        except HTTPException:
            continue
        if endpoint != request.endpoint:
            allowed.append(method)
    return allowed


@bp.route("/", defaults={"path": ""}, methods=API_METHODS)
@bp.route("/<path:path>", methods=API_METHODS)
def no_such_endpoint(path: str) -> Response:
    """Unknown API URLs and wrong methods get JSON 404 and 405 too.

    Flask sends routing errors to app-level handlers only (no blueprint is known until a
    rule matches), so this least specific rule of the blueprint catches them instead.
    """
    allowed = _methods_of_other_endpoints()
    if allowed:
        response = error_response(
            405,
            "method_not_allowed",
            f"{request.method} is not allowed on {request.path}; use {', '.join(allowed)}",
        )
        response.allow.update(allowed)
        return response
    return error_response(404, "not_found", f"no API endpoint at {request.path}")
