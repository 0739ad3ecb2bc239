"""Every registered route, walked by anonymous and by every role, member and not.

The expected answer comes from RULES below, one row per `METHOD /rule` of app.url_map. A
route without a row fails `test_every_route_has_a_rule`, so a new route cannot land
without someone deciding who may use it.

Adding a route: add one row to RULES, keyed exactly as the failure message prints it.

    page(*roles, queue=None)            a browser page or htmx fragment (login session)
    api(*roles, scope=..., queue=None)  a /api/v1 route (bearer token with that scope)
    public()                            no login at all (login page, health, static files)

`roles` are the roles that may use it besides admin (admins may use everything); none
means any logged-in user. `queue` says what a user of an allowed role who is not a member
of the queue named in the URL gets: HIDDEN (404, as if it did not exist) or DENIED (403).
If the route's URL has a new kind of parameter, add a value for it to PARAM_VALUES.

Each route is then checked for each principal: anonymous is sent to the login page (pages)
or gets 401 (API); a role that is not allowed gets 403; a non-member gets the rule's
queue answer; everyone else gets past the access checks (for a route that names a queue
or item, that includes not getting 404). API routes are also called with an admin token
that lacks the route's scope (403) and one that has only that scope (passes).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pytest
from itsdangerous import URLSafeTimedSerializer

from models import Item
from review.db import db_session
from review.services import accounts
from tests.web.ui_helpers import add_items, reviewer_in

ROLES = ("reviewer", "policy_owner", "ml", "admin")
HIDDEN, DENIED = 404, 403
ANY_ROLE = ROLES


@dataclass(frozen=True)
class Rule:
    kind: str  # "page", "api" or "public"
    roles: tuple[str, ...] = ANY_ROLE
    scope: str | None = None
    queue: int | None = None  # status for a non-member of the queue in the URL
    absent_ok: bool = False  # 404 is a fine answer (what the URL names may not exist yet)


def page(*roles: str, queue: int | None = None) -> Rule:
    return Rule("page", tuple(roles) or ANY_ROLE, queue=queue)


def api(*roles: str, scope: str, queue: int | None = None, absent_ok: bool = False) -> Rule:
    assert scope in accounts.SCOPES, scope
    return Rule("api", tuple(roles) or ANY_ROLE, scope=scope, queue=queue, absent_ok=absent_ok)


def public() -> Rule:
    return Rule("public")


REVIEWER_PAGE = page("reviewer", queue=HIDDEN)
QUEUE_PAGE = page("reviewer", "policy_owner", queue=HIDDEN)
POLICY_PAGE = page("policy_owner", queue=DENIED)
ML_PAGE = page("ml")
ADMIN_PAGE = page("admin")

RULES: dict[str, Rule] = {
    # --- no login --------------------------------------------------------------------
    "GET /login": public(),
    "POST /login": public(),
    "GET /account/link/<secret>": public(),
    "POST /account/link/<secret>": public(),
    "GET /static/<path:filename>": public(),
    "GET /healthz": public(),
    "GET /api/v1/openapi.json": public(),
    # Unknown API paths answer a JSON 404 to everyone, before any authentication.
    **{
        f"{method} {rule}": public()
        for rule in ("/api/v1/", "/api/v1/<path:path>")
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE")
    },
    # --- any logged-in user -------------------------------------------------------------
    "GET /": page(),
    "POST /logout": page(),
    # --- reviewers (queue members) ------------------------------------------------------
    "GET /queues/<slug>": QUEUE_PAGE,
    "GET /queues/<slug>/counts": QUEUE_PAGE,
    "GET /queues/<slug>/system-status": QUEUE_PAGE,
    "GET /queues/<slug>/items/<int:item_id>": QUEUE_PAGE,
    "GET /queues/<slug>/find": QUEUE_PAGE,
    "GET /queues/<slug>/review": REVIEWER_PAGE,
    "GET /queues/<slug>/review/status": REVIEWER_PAGE,
    "POST /queues/<slug>/items/<int:item_id>/decision": REVIEWER_PAGE,
    "POST /queues/<slug>/items/<int:item_id>/escalate": REVIEWER_PAGE,
    "POST /queues/<slug>/items/<int:item_id>/heartbeat": REVIEWER_PAGE,
    "POST /queues/<slug>/items/<int:item_id>/release": REVIEWER_PAGE,
    "POST /queues/<slug>/items/<int:item_id>/skip": REVIEWER_PAGE,
    "POST /queues/<slug>/items/<int:item_id>/take": REVIEWER_PAGE,
    "POST /queues/<slug>/items/<int:item_id>/undo": REVIEWER_PAGE,
    # --- policy owners (queue members) --------------------------------------------------
    "GET /policy/": page("policy_owner"),
    "GET /policy/queues/<slug>/": POLICY_PAGE,
    "GET /policy/queues/<slug>/calibration": POLICY_PAGE,
    "POST /policy/queues/<slug>/calibration": POLICY_PAGE,
    "GET /policy/queues/<slug>/dashboard": POLICY_PAGE,
    "POST /policy/queues/<slug>/reroute": POLICY_PAGE,
    "POST /policy/queues/<slug>/settings": POLICY_PAGE,
    "GET /policy/queues/<slug>/versions": POLICY_PAGE,
    "POST /policy/queues/<slug>/versions": POLICY_PAGE,
    "POST /policy/queues/<slug>/versions/<int:number>/approve": POLICY_PAGE,
    "POST /policy/queues/<slug>/versions/<int:number>/reject": POLICY_PAGE,
    "POST /policy/queues/<slug>/versions/<int:number>/rollback": POLICY_PAGE,
    # --- ML (every queue) ---------------------------------------------------------------
    "GET /ml/": ML_PAGE,
    "GET /ml/queues/<slug>/export.jsonl": ML_PAGE,
    "GET /ml/queues/<slug>/datasets": ML_PAGE,
    "POST /ml/queues/<slug>/datasets": ML_PAGE,
    "GET /ml/datasets/<int:snapshot_id>": ML_PAGE,
    "GET /ml/datasets/<int:snapshot_id>/download": ML_PAGE,
    "POST /ml/datasets/<int:snapshot_id>/retry": ML_PAGE,
    "POST /ml/datasets/<int:snapshot_id>/retrain": ML_PAGE,
    "GET /ml/datasets/<int:snapshot_id>/retrain/<job_id>": ML_PAGE,
    "POST /ml/datasets/<int:snapshot_id>/activate": ML_PAGE,
    # --- admin pages --------------------------------------------------------------------
    "GET /admin/": ADMIN_PAGE,
    "GET /admin/queues/new": ADMIN_PAGE,
    "POST /admin/queues/new": ADMIN_PAGE,
    "POST /admin/queues/preview": ADMIN_PAGE,
    "GET /admin/queues/<slug>/edit": ADMIN_PAGE,
    "POST /admin/queues/<slug>/edit": ADMIN_PAGE,
    "GET /admin/queues/<slug>/import": ADMIN_PAGE,
    "POST /admin/queues/<slug>/import": ADMIN_PAGE,
    "GET /admin/imports/<int:import_id>": ADMIN_PAGE,
    "POST /admin/imports/<int:import_id>/mapping": ADMIN_PAGE,
    "POST /admin/imports/<int:import_id>/confirm": ADMIN_PAGE,
    "POST /admin/imports/<int:import_id>/cancel": ADMIN_PAGE,
    "GET /admin/imports/<int:import_id>/report.csv": ADMIN_PAGE,
    "GET /admin/people/": ADMIN_PAGE,
    "POST /admin/people/": ADMIN_PAGE,
    "GET /admin/people/<int:user_id>": ADMIN_PAGE,
    "POST /admin/people/<int:user_id>": ADMIN_PAGE,
    "POST /admin/people/invitations/<int:invitation_id>/revoke": ADMIN_PAGE,
    "GET /admin/tokens/": ADMIN_PAGE,
    "POST /admin/tokens/": ADMIN_PAGE,
    "POST /admin/tokens/<int:token_id>/revoke": ADMIN_PAGE,
    "GET /admin/audit/": ADMIN_PAGE,
    "GET /admin/audit/status": ADMIN_PAGE,
    "GET /admin/audit/export.jsonl": ADMIN_PAGE,
    "GET /admin/audit/export.csv": ADMIN_PAGE,
    "GET /admin/audit/items/<int:item_id>": ADMIN_PAGE,
    "POST /admin/audit/verify": ADMIN_PAGE,
    "GET /admin/webhooks/": ADMIN_PAGE,
    "POST /admin/webhooks/events/<int:event_pk>/replay": ADMIN_PAGE,
    "POST /admin/webhooks/replay-dead": ADMIN_PAGE,
    "GET /admin/ops": ADMIN_PAGE,
    "POST /admin/ops/failed/<job_id>/requeue": ADMIN_PAGE,
    # --- API ----------------------------------------------------------------------------
    "GET /api/v1/queues": api(scope="read"),
    "POST /api/v1/queues": api("admin", scope="admin"),
    "GET /api/v1/queues/<slug>": api(scope="read", queue=DENIED),
    "PATCH /api/v1/queues/<slug>": api("admin", scope="admin"),
    "PUT /api/v1/queues/<slug>/webhook": api("policy_owner", scope="decide", queue=DENIED),
    # 404 is a fine answer here: the queue has no webhook yet.
    "GET /api/v1/queues/<slug>/webhook": api(
        "policy_owner", scope="read", queue=DENIED, absent_ok=True
    ),
    "DELETE /api/v1/queues/<slug>/webhook": api(
        "policy_owner", scope="decide", queue=DENIED, absent_ok=True
    ),
    # Prometheus scrapes with METRICS_TOKEN (tests/web/ops) or an admin's API token.
    "GET /metrics": api("admin", scope="read"),
    "GET /api/v1/queues/<slug>/policy": api(scope="read", queue=DENIED),
    "PUT /api/v1/queues/<slug>/policy": api("policy_owner", scope="decide", queue=DENIED),
    "GET /api/v1/queues/<slug>/policy/versions": api("policy_owner", scope="read", queue=DENIED),
    "GET /api/v1/queues/<slug>/policy/diff": api("policy_owner", scope="read", queue=DENIED),
    "POST /api/v1/queues/<slug>/policy/rollback": api("policy_owner", scope="decide", queue=DENIED),
    "POST /api/v1/queues/<slug>/policy/versions/<number>/approve": api(
        "policy_owner", scope="decide", queue=DENIED
    ),
    "POST /api/v1/queues/<slug>/policy/versions/<number>/reject": api(
        "policy_owner", scope="decide", queue=DENIED
    ),
    "GET /api/v1/queues/<slug>/whatif": api("policy_owner", scope="read", queue=DENIED),
    "POST /api/v1/queues/<slug>/items": api("policy_owner", scope="ingest", queue=DENIED),
    "GET /api/v1/queues/<slug>/decisions": api(scope="read", queue=DENIED),
    "GET /api/v1/items/<item_id>": api(scope="read", queue=HIDDEN),
    "POST /api/v1/items/<item_id>/decision": api("reviewer", scope="decide", queue=HIDDEN),
    "GET /api/v1/queues/<slug>/export.jsonl": api("ml", scope="export"),
    "POST /api/v1/queues/<slug>/exports": api("ml", scope="export"),
    "GET /api/v1/queues/<slug>/exports": api("ml", scope="read"),
    "GET /api/v1/exports/<snapshot_id>": api("ml", scope="read"),
    "GET /api/v1/exports/<snapshot_id>/download": api("ml", scope="export"),
    "POST /api/v1/exports/<snapshot_id>/retry": api("ml", scope="export"),
}

CSRF_RAW = "0123456789abcdef0123456789abcdef01234567"  # Flask-WTF's per-session secret
MISSING_ID = "999999"  # ids of rows the walk does not need to exist (admin-only routes)
PARAM_VALUES = {
    "slug": lambda w: w.queue_slug,
    "item_id": lambda w: str(w.item_id),
    "number": lambda w: "1",
    "user_id": lambda w: str(w.target_user_id),
    "secret": lambda w: "not-a-real-link",
    "filename": lambda w: "js/htmx-config.js",
    "path": lambda w: "no/such/endpoint",
    "import_id": lambda w: MISSING_ID,
    "invitation_id": lambda w: MISSING_ID,
    "snapshot_id": lambda w: MISSING_ID,
    "token_id": lambda w: MISSING_ID,
    "event_pk": lambda w: MISSING_ID,
    "job_id": lambda w: "no-such-job",
}
# Parameters that name a queue or an item: a route that has one must be reachable (not
# 404) for those allowed, since the queue and item exist.
QUEUE_PARAMS = {"slug", "item_id"}
PARAM_RE = re.compile(r"<(?:[a-z]+:)?([a-z_]+)>")


@dataclass
class Principal:
    name: str
    role: str | None  # None: anonymous
    member: bool
    user_id: int | None = None
    token: str | None = None


@dataclass
class World:
    queue_slug: str
    item_id: int
    target_user_id: int
    principals: list[Principal] = field(default_factory=list)
    admin_user: object = None
    scoped_tokens: dict[tuple[str, ...], str] = field(default_factory=dict)


def route_keys(app) -> dict[str, str]:
    """`METHOD /rule` -> endpoint, for every registered route and method."""
    keys = {}
    for rule in app.url_map.iter_rules():
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            keys[f"{method} {rule.rule}"] = rule.endpoint
    return keys


@pytest.fixture
def world(app, factory) -> World:
    """Queue `alpha` with an item awaiting review; members and outsiders of every role."""
    alpha, beta = factory.queue("alpha"), factory.queue("beta")
    add_items(app, "alpha", 1)
    with app.app_context():
        item_id = db_session().query(Item.id).scalar()
    target = factory.user("reviewer", email="target@example.com")
    found = World("alpha", item_id, target.id)
    found.principals.append(Principal("anonymous", None, False))
    for role in ROLES:
        if role in ("reviewer", "policy_owner"):
            inside = reviewer_in(factory, alpha, role=role)
            outside = reviewer_in(factory, beta, role=role)  # works another queue
            found.principals.append(Principal(f"{role}", role, True, inside.id))
            found.principals.append(Principal(f"{role} of another queue", role, False, outside.id))
            for principal, user in (
                (found.principals[-2], inside),
                (found.principals[-1], outside),
            ):
                principal.token = factory.token(user)
        else:
            user = factory.user(role)
            found.principals.append(Principal(role, role, True, user.id, factory.token(user)))
            if role == "admin":
                found.admin_user = user
    return found


def url_for_rule(rule: str, world: World) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        assert name in PARAM_VALUES, f"add a value for <{name}> to PARAM_VALUES"
        return PARAM_VALUES[name](world)

    return PARAM_RE.sub(value, rule)


def call(app, method: str, url: str, principal: Principal, kind: str, token: str | None = None):
    """One request as the principal: a login session for pages, a bearer token for the API."""
    client = app.test_client()
    headers = {}
    if kind == "api":
        token = token or principal.token
        if token:
            headers["Authorization"] = f"Bearer {token}"
        body = {"json": {}} if method in ("POST", "PUT", "PATCH") else {}
    else:
        # A logged-in browser session with a valid CSRF token, as a real page would send it.
        with client.session_transaction() as browser:
            browser["csrf_token"] = CSRF_RAW
            if principal.user_id is not None:
                browser["_user_id"] = str(principal.user_id)
                browser["_fresh"] = True
        headers["X-CSRFToken"] = URLSafeTimedSerializer(
            app.config["SECRET_KEY"], salt="wtf-csrf-token"
        ).dumps(CSRF_RAW)
        body = {"data": {}} if method in ("POST", "PUT", "PATCH") else {}
    response = client.open(url, method=method, headers=headers, **body)
    response.close()
    return response


def is_login_redirect(response) -> bool:
    """Sent to log in first (Flask-Login adds ?next=), not e.g. home after logging out."""
    location = response.headers.get("Location", "")
    return response.status_code in (301, 302, 303) and "/login?next=" in location


def expected(rule: Rule, principal: Principal, names_queue: bool) -> str:
    """What the principal should get: a status code, or "pass" (past every access check)."""
    if rule.kind == "public":
        return "pass"
    if principal.role is None:
        return "login" if rule.kind == "page" else "401"
    if principal.role != "admin" and principal.role not in rule.roles:
        return "403"
    if rule.queue is not None and not principal.member:
        return str(rule.queue)
    return "pass-reachable" if names_queue and not rule.absent_ok else "pass"


def outcome(response, want: str) -> bool:
    status = response.status_code
    if want == "login":
        return is_login_redirect(response)
    if want.startswith("pass"):
        refused = status in (401, 403) or is_login_redirect(response)
        return not refused and not (want == "pass-reachable" and status == 404)
    return str(status) == want


def test_every_route_has_a_rule_and_every_rule_a_route(app):
    keys = route_keys(app)
    missing = sorted(set(keys) - set(RULES))
    assert not missing, (
        "routes without an access rule; add a row for each to RULES in "
        f"tests/web/test_access_matrix.py: {missing}"
    )
    stale = sorted(set(RULES) - set(keys))
    assert not stale, f"rules for routes that no longer exist (remove them): {stale}"


def test_every_route_answers_every_principal_as_its_rule_says(app, world):
    wrong = []
    for key in sorted(route_keys(app)):
        if key not in RULES:
            continue  # reported by the test above
        method, rule_path = key.split(" ", 1)
        rule = RULES[key]
        url = url_for_rule(rule_path, world)
        names_queue = bool(QUEUE_PARAMS & set(PARAM_RE.findall(rule_path)))
        for principal in world.principals:
            want = expected(rule, principal, names_queue)
            response = call(app, method, url, principal, rule.kind)
            if not outcome(response, want):
                wrong.append(f"{key} as {principal.name}: want {want}, got {response.status_code}")
    assert not wrong, "access holes or wrong answers:\n" + "\n".join(wrong)


def test_every_api_route_needs_its_scope(app, world):
    admin = next(p for p in world.principals if p.role == "admin")
    wrong = []
    for key, rule in sorted(RULES.items()):
        if rule.kind != "api" or key not in route_keys(app):
            continue
        method, rule_path = key.split(" ", 1)
        url = url_for_rule(rule_path, world)
        others = [s for s in accounts.SCOPES if s != rule.scope]
        without = scoped_token(app, world, others)
        refused = call(app, method, url, admin, "api", token=without)
        if refused.status_code != 403 or "scope" not in refused.get_json()["error"]["fields"]:
            wrong.append(f"{key} without {rule.scope}: got {refused.status_code}")
        only = call(app, method, url, admin, "api", token=scoped_token(app, world, [rule.scope]))
        if not outcome(only, "pass"):
            wrong.append(f"{key} with only {rule.scope}: got {only.status_code}")
    assert not wrong, "\n".join(wrong)


def scoped_token(app, world: World, scopes: list[str]) -> str:
    """An admin token with exactly these scopes (made once per world)."""
    key = tuple(scopes)
    if key not in world.scoped_tokens:
        with app.app_context():
            session = db_session()
            user = session.merge(world.admin_user)
            _, plaintext = accounts.create_token(session, user, scopes=scopes)
            session.commit()
        world.scoped_tokens[key] = plaintext
    return world.scoped_tokens[key]


# --- guessing ids -------------------------------------------------------------------------


def _alpha_item_status(app, item_id: int) -> str:
    with app.app_context():
        return db_session().get(Item, item_id).status


def test_a_reviewer_cannot_open_or_decide_another_queues_item_on_the_web(app, world):
    """Through their own queue's URL or the other queue's: 404 both ways, nothing changes."""
    outsider = next(p for p in world.principals if p.name == "reviewer of another queue")
    item = world.item_id
    for slug in ("beta", "alpha"):
        for action in ("decision", "skip", "escalate", "release", "heartbeat", "undo"):
            url = f"/queues/{slug}/items/{item}/{action}"
            response = call(app, "POST", url, outsider, "page")
            assert response.status_code == 404, (url, response.status_code)
    assert call(app, "GET", "/queues/alpha/review", outsider, "page").status_code == 404
    assert _alpha_item_status(app, item) == "needs_review"


def test_a_reviewer_cannot_read_or_decide_another_queues_item_over_the_api(app, world):
    """The same answer as for an id that does not exist, so ids cannot be probed."""
    outsider = next(p for p in world.principals if p.name == "reviewer of another queue")
    client = app.test_client()
    headers = {"Authorization": f"Bearer {outsider.token}"}
    for item_id in (world.item_id, 999999):
        read = client.get(f"/api/v1/items/{item_id}", headers=headers)
        assert read.status_code == 404
        assert read.get_json()["error"]["message"] == f"no item {item_id}"
        decided = client.post(
            f"/api/v1/items/{item_id}/decision", json={"action": "approve"}, headers=headers
        )
        assert decided.status_code == 404
    assert _alpha_item_status(app, world.item_id) == "needs_review"
    listed = client.get("/api/v1/queues", headers=headers).get_json()["queues"]
    assert [q["slug"] for q in listed] == ["beta"]

    member = next(p for p in world.principals if p.name == "reviewer")
    member_headers = {"Authorization": f"Bearer {member.token}"}
    assert client.get(f"/api/v1/items/{world.item_id}", headers=member_headers).status_code == 200
