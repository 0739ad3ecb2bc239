"""Fixtures for the admin pages: a logged-in admin client and a private upload folder."""

from __future__ import annotations

import pytest

from tests.conftest import csrf_from, login


@pytest.fixture(autouse=True)
def upload_dir(app, tmp_path):
    app.config["UPLOAD_DIR"] = str(tmp_path / "uploads")
    return tmp_path / "uploads"


@pytest.fixture
def admin(client, factory):
    """The admin user, logged in on `client`."""
    user = factory.user("admin", email="admin@example.com")
    assert login(client, user.email).status_code == 302
    return user


@pytest.fixture
def csrf(client, admin) -> str:
    return csrf_from(client.get("/admin/").text)
