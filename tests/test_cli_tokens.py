"""`flask tokens create --scope ... --expires-in ...` and `flask tokens revoke`."""

from __future__ import annotations

from datetime import timedelta

from models.base import utcnow
from review.db import db_session
from review.services import accounts


def _secret(result) -> str:
    assert result.exit_code == 0, result.output
    return result.output.strip().splitlines()[-1]


def test_scopes_and_expiry_are_set_and_printed(app, runner, factory):
    factory.user("policy_owner", email="upstream@example.com")
    result = runner.invoke(
        args=[
            "tokens", "create", "upstream@example.com",
            "--scope", "ingest", "--scope", "read", "--expires-in", "30d",
        ]
    )  # fmt: skip
    secret = _secret(result)
    assert "scopes ingest, read" in result.output and "expires" in result.output
    with app.app_context():
        token = accounts.token_for_secret(db_session(), secret)
        assert token.scopes == ["ingest", "read"]
        left = token.expires_at - utcnow()
        assert timedelta(days=29, hours=23) < left <= timedelta(days=30)


def test_without_scopes_the_token_gets_all_its_role_allows(app, runner, factory):
    factory.user("reviewer", email="rev@example.com")
    secret = _secret(runner.invoke(args=["tokens", "create", "rev@example.com"]))
    with app.app_context():
        token = accounts.token_for_secret(db_session(), secret)
        assert token.scopes == ["read", "decide"] and token.expires_at is None


def test_a_scope_beyond_the_role_or_a_bad_expiry_exits_1_and_stores_nothing(app, runner, factory):
    factory.user("reviewer", email="rev@example.com")
    beyond = runner.invoke(args=["tokens", "create", "rev@example.com", "--scope", "admin"])
    assert beyond.exit_code == 1 and "may not hold admin" in beyond.output
    bad = runner.invoke(args=["tokens", "create", "rev@example.com", "--expires-in", "soon"])
    assert bad.exit_code == 1 and "expires_in" in bad.output
    assert "Traceback" not in beyond.output + bad.output
    with app.app_context():
        assert accounts.list_tokens(db_session()) == []


def test_revoke_by_prefix(app, runner, factory):
    factory.user("ml", email="ml@example.com")
    secret = _secret(runner.invoke(args=["tokens", "create", "ml@example.com"]))
    prefix = secret[: len(accounts.TOKEN_PREFIX) + 6]
    result = runner.invoke(args=["tokens", "revoke", prefix])
    assert result.exit_code == 0, result.output
    assert f"Revoked {prefix}" in result.output
    with app.app_context():
        assert accounts.token_for_secret(db_session(), secret) is None
    missing = runner.invoke(args=["tokens", "revoke", "rwb_nope00"])
    assert missing.exit_code == 1 and "no token" in missing.output
