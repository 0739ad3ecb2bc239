"""The OpenAPI document describes every /api/v1 route, and is served without a token."""

from __future__ import annotations

import re

import schemathesis

from review.web.api.openapi import document

# The catch-all that answers unknown API URLs with a JSON 404/405 is not an operation.
NOT_OPERATIONS = {"api.no_such_endpoint"}


def _api_operations(app) -> set[tuple[str, str]]:
    found = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/") or rule.endpoint in NOT_OPERATIONS:
            continue
        path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule.removeprefix("/api/v1"))
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            found.add((method.lower(), path))
    return found


def _documented_operations() -> set[tuple[str, str]]:
    return {
        (method, path)
        for path, item in document()["paths"].items()
        for method in item
        if method != "parameters"
    }


def test_every_api_route_is_documented_and_nothing_else(app):
    routes = _api_operations(app)
    documented = _documented_operations()
    assert routes - documented == set(), "routes missing from review/web/api/openapi.py"
    assert documented - routes == set(), "documented operations without a route"


def test_served_without_a_token_and_loads_as_openapi_31(app, client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    body = response.get_json()
    assert body["openapi"] == "3.1.0"
    assert body["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    # schemathesis refuses a document that breaks the OpenAPI schema.
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    loaded = {(op.ok().method, op.ok().path) for op in schema.get_all_operations()}
    # schemathesis leaves out the document's own operation.
    assert loaded == _documented_operations() - {("get", "/openapi.json")}


def test_every_operation_documents_its_errors_with_the_error_body():
    for path, item in document()["paths"].items():
        for method, operation in item.items():
            if method == "parameters" or path == "/openapi.json":
                continue
            for status in ("401", "403", "404"):
                error = operation["responses"][status]["content"]["application/json"]["schema"]
                assert error == {"$ref": "#/components/schemas/Error"}, (method, path, status)
