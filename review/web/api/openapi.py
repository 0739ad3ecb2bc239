"""The OpenAPI 3.1 document of /api/v1, served at /api/v1/openapi.json.

Written by hand next to the routes rather than generated from them: the routes parse JSON
themselves, so only a person can say what a body holds. tests/web/api/test_openapi.py keeps
it honest (every /api/v1 rule must appear here, with its methods), and
tests/web/api/test_fuzz.py has schemathesis send generated requests and check that every
answer matches what is written here.

The document is public: it describes the API, not its data. Every operation but this one
needs a bearer token (`flask tokens create`).
"""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, request

from models.dataset import SNAPSHOT_FORMATS
from review.services.dataset_rows import REVIEWER_IDENTITIES
from review.services.dataset_rows import SCOPES as SNAPSHOT_SCOPES
from review.services.ingest import MAX_BATCH, MAX_EVIDENCE_CHARS, MAX_EVIDENCE_QUOTES
from review.web.api import bp

JSON = "application/json"
Schema = dict[str, Any]


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


def obj(required: list[str] | None = None, **properties: Schema) -> Schema:
    schema: Schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


STRING: Schema = {"type": "string"}
TIME: Schema = {"type": "string", "format": "date-time"}
STRINGS: Schema = {"type": "array", "items": STRING}
NUMBER: Schema = {"type": "number"}
UNIT: Schema = {"type": "number", "minimum": 0, "maximum": 1}
INTEGER: Schema = {"type": "integer"}
BOOLEAN: Schema = {"type": "boolean"}
ANY_OBJECT: Schema = {"type": "object"}

SCHEMAS: dict[str, Schema] = {
    "Error": obj(
        ["error"],
        error=obj(
            ["code", "message", "fields"],
            code={"type": "string", "description": "stable, for clients to branch on"},
            message=STRING,
            fields={
                "type": "object",
                "additionalProperties": STRING,
                "description": "each offending input (e.g. `items[3].payload`) and what is wrong",
            },
        ),
    ),
    "Recommender": obj(
        kind={"type": "string", "enum": ["local", "claude", "none"]},
        model=nullable({"type": "string", "maxLength": 100}),
        daily_budget_usd=nullable({"type": "number", "minimum": 0}),
        redact=BOOLEAN,
        redact_patterns=STRINGS,
        batch=BOOLEAN,
    ),
    "Queue": obj(
        [
            "slug",
            "name",
            "labels",
            "retired_labels",
            "instructions",
            "reason_codes",
            "recommender",
            "display_fields",
            "created_at",
        ],
        slug=STRING,
        name=STRING,
        labels=STRINGS,
        retired_labels={**STRINGS, "description": "kept on past decisions, no longer offered"},
        instructions=STRING,
        reason_codes=STRINGS,
        recommender=ref("Recommender"),
        display_fields={**STRINGS, "description": "payload keys reviewers see first"},
        created_at=TIME,
    ),
    "QueueInput": obj(
        ["slug", "name", "labels"],
        slug={"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,63}$"},
        name={"type": "string", "minLength": 1, "maxLength": 200},
        labels={**STRINGS, "minItems": 2},
        reason_codes={**STRINGS, "minItems": 1},
        instructions=STRING,
        recommender=ref("Recommender"),
        display_fields={**STRINGS, "maxItems": 30},
        escalation_queue=nullable({"type": "string", "description": "another queue's slug"}),
        members={"type": "array", "items": {"type": ["string", "integer"]}},
    ),
    "QueuePatch": obj(
        name={"type": "string", "minLength": 1, "maxLength": 200},
        labels={**STRINGS, "minItems": 2},
        retired_labels={
            **STRINGS,
            "description": "labels to retire: a label in use leaves `labels` only if named here",
        },
        reason_codes={**STRINGS, "minItems": 1},
        instructions=STRING,
        recommender=ref("Recommender"),
        display_fields={**STRINGS, "maxItems": 30},
        escalation_queue=nullable(STRING),
    ),
    "QueueList": obj(["queues"], queues={"type": "array", "items": ref("Queue")}),
    "Policy": obj(
        ["version", "status", "thresholds", "default_threshold", "note", "created_at"],
        version=INTEGER,
        status={"type": "string", "enum": ["pending_approval", "active", "retired", "rejected"]},
        thresholds={"type": "object", "additionalProperties": NUMBER},
        default_threshold=NUMBER,
        audit_rate=NUMBER,
        recalibration=nullable(ANY_OBJECT),
        note=STRING,
        rollback_of=nullable(INTEGER),
        created_at=TIME,
        activated_at=nullable(TIME),
        rerouted={"type": "object", "description": "after an approval that rerouted items"},
    ),
    "PolicyInput": obj(
        ["default_threshold", "note"],
        default_threshold=UNIT,
        thresholds={"type": "object", "additionalProperties": UNIT},
        audit_rate=UNIT,
        recalibration=nullable(ANY_OBJECT),
        note={"type": "string", "minLength": 1, "maxLength": 5000},
    ),
    "PolicyVersions": obj(["versions"], versions={"type": "array", "items": ref("Policy")}),
    "PolicyDiff": obj(
        ["from", "to", "changes"],
        **{"from": INTEGER, "to": INTEGER},
        changes={
            "type": "array",
            "items": obj(["field"], field=STRING, before={}, after={}),
        },
    ),
    "WhatIf": obj(
        ["label"],
        label=STRING,
        threshold=nullable(NUMBER),
        target_precision=NUMBER,
        reason=nullable(STRING),
        automation_rate=nullable(NUMBER),
        precision=nullable(NUMBER),
        ci_low=nullable(NUMBER),
        ci_high=nullable(NUMBER),
        n_labeled=INTEGER,
        expected_errors_per_day=nullable(NUMBER),
    ),
    "RecommendationInput": obj(
        ["label", "confidence", "model"],
        label=STRING,
        confidence=UNIT,
        model={"type": "string", "minLength": 1, "maxLength": 100},
        model_version=nullable({"type": "string", "maxLength": 100}),
        rationale=STRING,
        evidence={
            "type": "array",
            "maxItems": MAX_EVIDENCE_QUOTES,
            "items": {"type": "string", "minLength": 1, "maxLength": MAX_EVIDENCE_CHARS},
            "description": "quotes from the item that support the label; the review "
            "screen highlights them where they occur",
        },
    ),
    "ItemInput": obj(
        ["external_id", "payload"],
        external_id={"type": "string", "minLength": 1, "maxLength": 200},
        payload={"type": "object", "description": "any JSON object, up to 256 KiB"},
        priority={"type": "integer", "minimum": -1_000_000, "maximum": 1_000_000},
        recommendation=nullable(ref("RecommendationInput")),
    ),
    "IngestInput": {
        "description": f"one item, or up to {MAX_BATCH} in `items`",
        "anyOf": [
            ref("ItemInput"),
            obj(
                ["items"],
                items={
                    "type": "array",
                    "items": ref("ItemInput"),
                    "minItems": 1,
                    "maxItems": MAX_BATCH,
                },
            ),
        ],
    },
    "IngestResult": obj(
        ["items"],
        items={
            "type": "array",
            "items": obj(
                ["id", "external_id", "status"], id=INTEGER, external_id=STRING, status=STRING
            ),
        },
    ),
    "Item": obj(
        ["id", "queue", "external_id", "status", "payload", "priority", "created_at"],
        id=INTEGER,
        queue=STRING,
        external_id=STRING,
        status={"type": "string", "enum": ["pending", "needs_review", "auto_approved", "decided"]},
        final_label=nullable(STRING),
        payload=ANY_OBJECT,
        priority=INTEGER,
        created_at=TIME,
        ai_status=nullable(STRING),
        ai_error=nullable(STRING),
        recommendation=nullable(
            obj(
                ["source", "model", "label", "confidence"],
                source=STRING,
                model=STRING,
                model_version=nullable(STRING),
                label=STRING,
                confidence=NUMBER,
                rationale=STRING,
                evidence=STRINGS,
                latency_ms=nullable(NUMBER),
                input_tokens=nullable(INTEGER),
                output_tokens=nullable(INTEGER),
                cache_read_tokens=nullable(INTEGER),
                cost_usd=nullable(NUMBER),
            )
        ),
        route=nullable(
            obj(
                ["route", "policy_version"],
                route=STRING,
                policy_version=INTEGER,
                threshold=nullable(NUMBER),
                reason=STRING,
                inclusion_probability=NUMBER,
                audit=BOOLEAN,
                routed_at=nullable(TIME),
            )
        ),
        decision=nullable(
            obj(
                ["action", "final_label", "by"],
                action=STRING,
                final_label=STRING,
                by=STRING,
                reason_code=nullable(STRING),
                comment=STRING,
                decided_at=nullable(TIME),
            )
        ),
    ),
    "Decision": obj(
        ["cursor", "item_id", "external_id", "final_label", "action", "decided_by", "decided_at"],
        cursor={"type": "string", "description": "pass as `after` to continue after this one"},
        queue=STRING,
        item_id=INTEGER,
        external_id=STRING,
        final_label=STRING,
        action={"type": "string", "enum": ["auto_approved", "approved", "overridden"]},
        decided_by={"type": "string", "enum": ["policy", "reviewer"]},
        reviewer_id=nullable(
            {"type": "string", "description": "a pseudonym, as in webhooks and datasets"}
        ),
        reason_code=nullable(STRING),
        ai_label=nullable(STRING),
        ai_confidence=nullable(UNIT),
        ai_model=nullable(STRING),
        policy_version=nullable(INTEGER),
        decided_at=TIME,
    ),
    "DecisionFeed": obj(
        ["decisions", "cursor", "has_more", "settled_before"],
        decisions={"type": "array", "items": ref("Decision")},
        cursor=nullable(
            {
                "type": "string",
                "description": "keep it and ask again with it as `after`; the one given "
                "when nothing new has settled, null before the queue's first decision",
            }
        ),
        has_more={"type": "boolean", "description": "more settled decisions wait: ask again"},
        settled_before={
            "type": "string",
            "format": "date-time",
            "description": "decisions made before this are final and listed in order; "
            "newer ones (a minute at most) come on a later call",
        },
    ),
    "DecisionInput": obj(
        ["action"],
        action={"type": "string", "enum": ["approve", "override"]},
        label={"type": "string", "description": "required to override"},
        reason_code={"type": "string", "description": "required to override"},
        comment={"type": "string", "maxLength": 5000},
    ),
    "SnapshotInput": {
        **obj(
            ["format"],
            format={"type": "string", "enum": list(SNAPSHOT_FORMATS)},
            filter=obj(
                scope={"type": "string", "enum": list(SNAPSHOT_SCOPES)},
                labels=STRINGS,
                decided_from=TIME,
                decided_to=TIME,
                last_days={"type": "integer", "minimum": 1},
            ),
            since_snapshot={"type": "integer", "description": "id of the snapshot to continue"},
            reviewer_identity={"type": "string", "enum": list(REVIEWER_IDENTITIES)},
        ),
        "additionalProperties": False,
    },
    "Snapshot": obj(
        ["id", "queue", "version", "format", "status", "files", "created_at"],
        id=INTEGER,
        queue=STRING,
        version=INTEGER,
        name=STRING,
        format=STRING,
        status=STRING,
        progress=ANY_OBJECT,
        row_count=nullable(INTEGER),
        sha256=nullable(STRING),
        filter=nullable(ANY_OBJECT),
        files={"type": "array"},
        datasheet=nullable(ANY_OBJECT),
        error=nullable(STRING),
        created_at=TIME,
        links=ANY_OBJECT,
        enqueued={"type": "boolean", "description": "on create and retry"},
    ),
    "SnapshotList": obj(["exports"], exports={"type": "array", "items": ref("Snapshot")}),
    "Webhook": obj(
        ["url", "secret_set", "events"],
        url={**nullable(STRING), "description": "null when no webhook is set up"},
        secret_set=BOOLEAN,
        updated_at=nullable(TIME),
        events={"type": "object", "additionalProperties": INTEGER},
    ),
    "WebhookInput": {
        **obj(
            ["url", "secret"],
            url={"type": "string", "format": "uri"},
            secret={"type": "string", "description": "signs each delivery; never shown again"},
        ),
        "additionalProperties": False,
    },
}


def _param(name: str, where: str, schema: Schema, required: bool, description: str) -> Schema:
    return {
        "name": name,
        "in": where,
        "required": required,
        "schema": schema,
        "description": description,
    }


SLUG = _param("slug", "path", STRING, True, "the queue's slug")
ITEM_ID = _param("item_id", "path", INTEGER, True, "the item's id")
SNAPSHOT_ID = _param("snapshot_id", "path", INTEGER, True, "the snapshot's id")
VERSION_NUMBER = _param("number", "path", INTEGER, True, "the policy version number")


def _body(schema_name: str, required: bool = True) -> Schema:
    return {"required": required, "content": {JSON: {"schema": ref(schema_name)}}}


def _json(description: str, schema_name: str) -> Schema:
    return {"description": description, "content": {JSON: {"schema": ref(schema_name)}}}


def _errors(*statuses: int) -> dict[str, Schema]:
    """The error answers an operation documents; every one has the Error body."""
    reasons = {
        400: "the body is not JSON, or a query parameter is malformed",
        401: "no token, or an unknown, revoked or expired one",
        403: "the token's user lacks the role, queue membership or scope",
        404: "no such queue, item, version or snapshot",
        409: "conflicts with the current state (already decided, a duplicate, a race)",
        410: "the snapshot's files have expired",
        413: "the body is larger than the server accepts",
        422: "a field is invalid; `fields` names each one",
        429: "too many requests for this token; retry after Retry-After seconds",
    }
    always = {400, 401, 403, 404, 413, 429}
    return {str(s): _json(reasons[s], "Error") for s in sorted(always | set(statuses))}


def _op(
    summary: str,
    responses: dict[str, Schema],
    *,
    errors: tuple[int, ...] = (),
    body: Schema | None = None,
    parameters: list[Schema] | None = None,
    tag: str,
) -> Schema:
    operation: Schema = {
        "summary": summary,
        "tags": [tag],
        "responses": {**responses, **_errors(*errors)},
    }
    if body is not None:
        operation["requestBody"] = body
    if parameters:
        operation["parameters"] = parameters
    return operation


def _paths() -> dict[str, Schema]:
    policy_params = [SLUG]
    return {
        "/queues": {
            "get": _op("List queues", {"200": _json("every queue", "QueueList")}, tag="queues"),
            "post": _op(
                "Create a queue (admin)",
                {"201": _json("the new queue; Location names it", "Queue")},
                errors=(409, 422),
                body=_body("QueueInput"),
                tag="queues",
            ),
        },
        "/queues/{slug}": {
            "parameters": [SLUG],
            "get": _op("Read a queue", {"200": _json("the queue", "Queue")}, tag="queues"),
            "patch": _op(
                "Change some of a queue's settings (admin)",
                {"200": _json("the queue after the change", "Queue")},
                errors=(409, 422),
                body=_body("QueuePatch"),
                tag="queues",
            ),
        },
        "/queues/{slug}/policy": {
            "parameters": policy_params,
            "get": _op(
                "The policy in force", {"200": _json("the active version", "Policy")}, tag="policy"
            ),
            "put": _op(
                "Store a new policy version (policy owner)",
                {"201": _json("the new version", "Policy")},
                errors=(409, 422),
                body=_body("PolicyInput"),
                tag="policy",
            ),
        },
        "/queues/{slug}/policy/versions": {
            "parameters": policy_params,
            "get": _op(
                "Every policy version (policy owner)",
                {"200": _json("oldest first", "PolicyVersions")},
                tag="policy",
            ),
        },
        "/queues/{slug}/policy/diff": {
            "parameters": policy_params,
            "get": _op(
                "What changed between two versions (policy owner)",
                {"200": _json("the changes", "PolicyDiff")},
                errors=(422,),
                parameters=[
                    _param("from", "query", INTEGER, True, "the older version"),
                    _param("to", "query", INTEGER, True, "the newer version"),
                ],
                tag="policy",
            ),
        },
        "/queues/{slug}/policy/versions/{number}/approve": {
            "parameters": [SLUG, VERSION_NUMBER],
            "post": _op(
                "Approve a pending version (a second policy owner)",
                {"200": _json("the version, now active", "Policy")},
                errors=(409, 422),
                body={
                    "required": False,
                    "content": {JSON: {"schema": obj(reroute_pending=BOOLEAN)}},
                },
                tag="policy",
            ),
        },
        "/queues/{slug}/policy/versions/{number}/reject": {
            "parameters": [SLUG, VERSION_NUMBER],
            "post": _op(
                "Reject a pending version (a second policy owner)",
                {"200": _json("the rejected version", "Policy")},
                errors=(409, 422),
                body={
                    "required": True,
                    "content": {JSON: {"schema": obj(["reason"], reason=STRING)}},
                },
                tag="policy",
            ),
        },
        "/queues/{slug}/policy/rollback": {
            "parameters": policy_params,
            "post": _op(
                "A new version equal to an earlier one (policy owner)",
                {"201": _json("the new version", "Policy")},
                errors=(409, 422),
                body={
                    "required": True,
                    "content": {
                        JSON: {
                            "schema": obj(
                                ["version", "note"],
                                version={"type": "integer", "minimum": 1},
                                note=STRING,
                            )
                        }
                    },
                },
                tag="policy",
            ),
        },
        "/queues/{slug}/whatif": {
            "parameters": policy_params,
            "get": _op(
                "What a threshold buys, or the threshold a target precision needs",
                {"200": _json("the estimate", "WhatIf")},
                errors=(422,),
                parameters=[
                    _param("label", "query", STRING, True, "one of the queue's labels"),
                    _param("threshold", "query", UNIT, False, "give this or target_precision"),
                    _param("target_precision", "query", UNIT, False, "give this or threshold"),
                ],
                tag="policy",
            ),
        },
        "/queues/{slug}/items": {
            "parameters": [SLUG],
            "post": _op(
                "Send items for review (policy owner)",
                {
                    "202": _json("something new was stored", "IngestResult"),
                    "200": _json(
                        "every item existed already with the same payload", "IngestResult"
                    ),
                },
                errors=(409, 422),
                body=_body("IngestInput"),
                tag="items",
            ),
        },
        "/queues/{slug}/decisions": {
            "parameters": [SLUG],
            "get": _op(
                "Final decisions, oldest first, after a cursor (for polling)",
                {"200": _json("a page of decisions", "DecisionFeed")},
                errors=(422,),
                parameters=[
                    _param("after", "query", STRING, False, "the cursor of the last page"),
                    _param(
                        "limit",
                        "query",
                        {"type": "integer", "minimum": 1, "maximum": 1000},
                        False,
                        "decisions per page (100 unless given)",
                    ),
                ],
                tag="items",
            ),
        },
        "/items/{item_id}": {
            "parameters": [ITEM_ID],
            "get": _op(
                "An item with its recommendation, route and decision",
                {"200": _json("the item", "Item")},
                tag="items",
            ),
        },
        "/items/{item_id}/decision": {
            "parameters": [ITEM_ID],
            "post": _op(
                "Approve or override an item awaiting review (reviewer)",
                {"200": _json("the decided item", "Item")},
                errors=(409, 422),
                body=_body("DecisionInput"),
                tag="items",
            ),
        },
        "/queues/{slug}/export.jsonl": {
            "parameters": [SLUG],
            "get": _op(
                "Human decisions as JSON Lines (ML)",
                {
                    "200": {
                        "description": "one JSON object per decision",
                        "content": {"application/x-ndjson": {"schema": STRING}},
                    }
                },
                parameters=[
                    _param(
                        "overrides_only",
                        "query",
                        {"type": "string", "enum": ["1", "0", "true", "false"]},
                        False,
                        "keep only the overrides",
                    )
                ],
                tag="exports",
            ),
        },
        "/queues/{slug}/exports": {
            "parameters": [SLUG],
            "get": _op(
                "The queue's dataset snapshots (ML)",
                {"200": _json("newest first", "SnapshotList")},
                tag="exports",
            ),
            "post": _op(
                "Start a dataset snapshot (ML); a worker builds it",
                {"202": _json("the snapshot, queued", "Snapshot")},
                errors=(409, 422),
                body=_body("SnapshotInput"),
                tag="exports",
            ),
        },
        "/exports/{snapshot_id}": {
            "parameters": [SNAPSHOT_ID],
            "get": _op(
                "A snapshot's status, progress, hash and datasheet (ML)",
                {"200": _json("the snapshot", "Snapshot")},
                tag="exports",
            ),
        },
        "/exports/{snapshot_id}/retry": {
            "parameters": [SNAPSHOT_ID],
            "post": _op(
                "Build a failed snapshot again (ML)",
                {"202": _json("the snapshot, queued again", "Snapshot")},
                errors=(409,),
                tag="exports",
            ),
        },
        "/exports/{snapshot_id}/download": {
            "parameters": [SNAPSHOT_ID],
            "get": _op(
                "The snapshot's folder as a zip, or one file of it (ML)",
                {
                    "200": {
                        "description": "the zip, or the file named by `file`",
                        "content": {
                            mimetype: {"schema": {"type": "string", "format": "binary"}}
                            for mimetype in (
                                "application/zip",
                                "application/x-ndjson",
                                "text/csv",
                                "application/vnd.apache.parquet",
                                "text/markdown",
                            )
                        },
                    }
                },
                errors=(409, 410),
                parameters=[
                    _param("file", "query", STRING, False, "e.g. data/train.parquet, README.md")
                ],
                tag="exports",
            ),
        },
        "/queues/{slug}/webhook": {
            "parameters": [SLUG],
            "get": _op(
                "The queue's decision webhook, never its secret (policy owner)",
                {"200": _json("the webhook (url null if none) and event counts", "Webhook")},
                tag="webhooks",
            ),
            "put": _op(
                "Send the queue's final decisions to a URL, signed with a secret (policy owner)",
                {
                    "201": _json("the webhook was set up", "Webhook"),
                    "200": _json("the webhook was changed", "Webhook"),
                },
                errors=(422,),
                body=_body("WebhookInput"),
                tag="webhooks",
            ),
            "delete": _op(
                "Stop sending the queue's decisions (policy owner)",
                {"204": {"description": "removed"}},
                tag="webhooks",
            ),
        },
        "/openapi.json": {
            "get": {
                "summary": "This document",
                "tags": ["meta"],
                "security": [],
                "responses": {"200": {"description": "OpenAPI 3.1", "content": {JSON: {}}}},
            }
        },
    }


def document(server_url: str = "/api/v1") -> Schema:
    """The whole OpenAPI document, with `server_url` as the API's base."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Review Workbench API",
            "version": "1",
            "description": "Send items for review, set threshold policies, decide items, "
            "export decisions and datasets. Every error is "
            '`{"error": {"code", "message", "fields"}}`.',
        },
        "servers": [{"url": server_url}],
        "security": [{"bearerAuth": []}],
        "paths": _paths(),
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "an API token: `flask --app app tokens create EMAIL`",
                }
            },
        },
    }


@bp.get("/openapi.json")
def openapi_document() -> Response:
    """The API's OpenAPI document; needs no token."""
    return jsonify(document(request.script_root + "/api/v1"))
