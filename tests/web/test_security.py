"""Web security: login lockout, API rate limits, session cookies, the Content Security
Policy and password hashing."""

from __future__ import annotations

import re
from pathlib import Path

from redis import Redis
from sqlalchemy import select
from werkzeug.security import generate_password_hash

from models import AuditEvent, User
from review.db import db_session
from review.services import accounts
from review.web.security import CONTENT_SECURITY_POLICY
from tests.conftest import login

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
STATIC_JS = Path(__file__).resolve().parents[2] / "static" / "js"


def _audited(app, action: str) -> list[dict]:
    with app.app_context():
        rows = db_session().scalars(
            select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
        )
        return [row.details for row in rows]


def _login_error(response) -> str | None:
    match = re.search(r'id="login-error">([^<]+)<', response.text)
    return match.group(1) if match else None


# --- login lockout ----------------------------------------------------------------------


def test_an_account_is_locked_after_repeated_failures_even_for_the_right_password(
    app, client, factory
):
    app.config["LOGIN_FAILURES_PER_ACCOUNT"] = "3 per 15 minutes"
    user = factory.user("reviewer", email="rita@example.com")
    for _ in range(3):
        assert login(client, user.email, "wrong-password").status_code == 422

    locked = login(client, user.email)  # the right password
    assert locked.status_code == 429
    assert "Too many failed logins" in _login_error(locked)
    assert "Try again in 15 minutes" in _login_error(locked)
    assert 0 < int(locked.headers["Retry-After"]) <= 15 * 60
    assert client.get("/").status_code == 302  # still not logged in
    [event] = _audited(app, "auth.login_locked")
    assert (event["email"], event["by"]) == ("rita@example.com", "account")
    assert len(_audited(app, "auth.login_failed")) == 3

    # Someone else, from the same address, is not affected.
    other = factory.user("reviewer", email="sam@example.com")
    assert login(app.test_client(), other.email).status_code == 302
    # The count lives in the test Redis, under the limiter's prefix.
    keys = Redis.from_url(app.config["REDIS_URL"]).keys("workbench-limits*login-failed*")
    assert keys


def test_an_address_is_locked_after_failures_across_accounts(app, factory):
    app.config["LOGIN_FAILURES_PER_ADDRESS"] = "4 per 15 minutes"
    user = factory.user("reviewer", email="real@example.com")
    attacker = app.test_client()
    attacker.environ_base["REMOTE_ADDR"] = "203.0.113.9"
    for n in range(4):
        assert login(attacker, f"guess{n}@example.com", "wrong-password").status_code == 422
    blocked = login(attacker, user.email)
    assert blocked.status_code == 429
    assert _audited(app, "auth.login_locked")[0]["by"] == "address"
    # The real user, from their own address, logs in.
    assert login(app.test_client(), user.email).status_code == 302


def test_a_good_login_clears_the_accounts_failures(app, client, factory):
    app.config["LOGIN_FAILURES_PER_ACCOUNT"] = "3 per 15 minutes"
    user = factory.user("reviewer")
    for _ in range(2):
        login(client, user.email, "wrong-password")
    assert login(client, user.email).status_code == 302
    fresh = app.test_client()
    for _ in range(2):
        assert login(fresh, user.email, "wrong-password").status_code == 422
    assert login(fresh, user.email).status_code == 302


# --- API rate limit ---------------------------------------------------------------------


def test_api_requests_are_limited_per_token_with_a_json_429(app, client, factory):
    app.config["API_RATE_LIMIT"] = "3 per minute"
    queue = factory.queue()
    busy = {"Authorization": f"Bearer {factory.token(factory.user('ml'))}"}
    calm = {"Authorization": f"Bearer {factory.token(factory.user('ml'))}"}
    url = f"/api/v1/queues/{queue.slug}"
    assert [client.get(url, headers=busy).status_code for _ in range(3)] == [200] * 3

    refused = client.get(url, headers=busy)
    assert refused.status_code == 429
    assert refused.get_json()["error"]["code"] == "rate_limited"
    assert "3 per minute" in refused.get_json()["error"]["fields"]["Authorization"]
    assert 0 < int(refused.headers["Retry-After"]) <= 60
    assert client.get(url, headers=calm).status_code == 200


def test_the_limits_fail_open_while_redis_is_unreachable(app, factory, make_app):
    """The counts live in Redis; while it is down nobody is locked out and the API serves
    (logged), instead of every login and API call failing with a 500."""
    queue = factory.queue()
    user = factory.user("reviewer")
    token = factory.token(factory.user("ml"))
    config = {**app.config, "REDIS_URL": "redis://127.0.0.1:1/0"}  # nothing listens on port 1
    config.pop("RATELIMIT_STORAGE_URI", None)  # follows REDIS_URL, as in production
    config.update(LOGIN_FAILURES_PER_ACCOUNT="1 per 15 minutes", API_RATE_LIMIT="1 per minute")
    without_redis = make_app(config)
    client = without_redis.test_client()
    assert login(client, user.email, "wrong-password").status_code == 422
    assert login(client, user.email, "wrong-password").status_code == 422  # not counted
    assert login(client, user.email).status_code == 302
    api = without_redis.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    url = f"/api/v1/queues/{queue.slug}"
    assert [api.get(url, headers=headers).status_code for _ in range(2)] == [200, 200]


# --- cookies and headers ----------------------------------------------------------------


def _session_cookie(response) -> str:
    [cookie] = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("session=")]
    return cookie


def test_session_cookie_is_httponly_samesite_and_secure_only_over_https(app, factory):
    user = factory.user("reviewer")
    plain = _session_cookie(login(app.test_client(), user.email))
    assert "HttpOnly" in plain and "SameSite=Lax" in plain and "Secure" not in plain

    https = app.test_client()
    form = https.get("/login", base_url="https://localhost").text
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', form).group(1)
    secure = https.post(
        "/login",
        data={"email": user.email, "password": "password123", "csrf_token": token},
        base_url="https://localhost",
        headers={"Referer": "https://localhost/login"},  # Flask-WTF's check over https
    )
    assert secure.status_code == 302
    assert "Secure" in _session_cookie(secure)
    assert secure.headers["Strict-Transport-Security"].startswith("max-age=")

    app.config["SESSION_COOKIE_SECURE"] = True  # behind a TLS proxy that speaks http to us
    assert "Secure" in _session_cookie(login(app.test_client(), user.email))


def test_pages_carry_a_strict_content_security_policy(client):
    response = client.get("/login")
    policy = response.headers["Content-Security-Policy"]
    assert policy == CONTENT_SECURITY_POLICY
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert "unsafe" not in policy
    assert directives["frame-ancestors"] == "'none'"


def test_no_template_or_script_needs_inline_code():
    """What the policy forbids is not used: inline scripts, handlers, style attributes,
    htmx's hx-on and its indicator style (turned off in htmx-config.js)."""
    offences = []
    for path in TEMPLATES.rglob("*.html"):
        text = path.read_text()
        for pattern in (
            r"<script(?![^>]*\bsrc=)[^>]*>",
            r"\son[a-z]+\s*=",
            r"\sstyle\s*=",
            r"<style",
            r"hx-on",
            r"javascript:",
        ):
            offences += [f"{path.name}: {m.group(0)}" for m in re.finditer(pattern, text)]
    assert not offences
    config = (STATIC_JS / "htmx-config.js").read_text()
    assert "config.includeIndicatorStyles = false" in config
    assert "config.allowEval = false" in config


# --- passwords --------------------------------------------------------------------------


def test_new_passwords_use_scrypt_and_old_hashes_are_upgraded_on_login(app, client, factory):
    user = factory.user("reviewer")
    with app.app_context():
        session = db_session()
        row = session.get(User, user.id)
        assert row.password_hash.startswith("scrypt:32768:8:1$")
        row.password_hash = generate_password_hash("password123", method="pbkdf2:sha256:1000")
        session.commit()

    assert login(app.test_client(), user.email, "wrong-password").status_code == 422
    with app.app_context():
        assert db_session().get(User, user.id).password_hash.startswith("pbkdf2:")

    assert login(client, user.email).status_code == 302
    with app.app_context():
        upgraded = db_session().get(User, user.id).password_hash
    assert upgraded.startswith(accounts.PASSWORD_METHOD + "$")
    assert login(app.test_client(), user.email).status_code == 302  # still the same password
