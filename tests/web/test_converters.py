"""Page URLs with ids too big for the database are 404, not a crash (review/web/converters)."""

from __future__ import annotations

import pytest

from tests.conftest import login

TOO_BIG = 2**31


@pytest.mark.parametrize(
    "path",
    [
        f"/admin/people/{TOO_BIG}",
        f"/admin/imports/{TOO_BIG}",
        f"/admin/audit/items/{TOO_BIG}",
        f"/ml/datasets/{TOO_BIG}",
        "/ml/datasets/99999999999999999999999",
    ],
)
def test_an_id_beyond_the_column_is_not_found(client, factory, path):
    admin = factory.user("admin")
    login(client, admin.email)
    assert client.get(path).status_code == 404


def test_ids_within_the_column_still_match(client, factory):
    admin = factory.user("admin")
    login(client, admin.email)
    assert client.get(f"/admin/people/{admin.id}").status_code == 200
    assert client.get(f"/admin/people/{TOO_BIG - 1}").status_code == 404
