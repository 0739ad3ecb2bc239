"""Numbers too big for the database's 32-bit id columns are "not found", never a 500.

Found by the fuzzer (tests/web/api/test_fuzz.py) on PostgreSQL, where comparing an
INTEGER column with 2**31 or more fails inside the database.
"""

from __future__ import annotations

import pytest

from tests.web.api.helpers import error_fields

TOO_BIG = 2**31


@pytest.fixture
def queue(factory, as_role):
    return factory.queue("numbers")


@pytest.mark.parametrize(
    "path",
    [f"/api/v1/items/{TOO_BIG}", f"/api/v1/exports/{TOO_BIG}", "/api/v1/items/99999999999999"],
)
def test_ids_beyond_the_column_are_404(client, as_role, path):
    response = client.get(path, headers=as_role("admin"))
    assert response.status_code == 404
    assert error_fields(response)


def test_a_policy_version_beyond_the_column_is_not_found(client, as_role, queue):
    approve = client.post(
        f"/api/v1/queues/numbers/policy/versions/{TOO_BIG}/approve", headers=as_role("admin")
    )
    assert approve.status_code == 404
    rollback = client.post(
        "/api/v1/queues/numbers/policy/rollback",
        json={"version": TOO_BIG, "note": "back"},
        headers=as_role("admin"),
    )
    assert rollback.status_code == 422
    assert "version" in error_fields(rollback)


@pytest.mark.parametrize("since", [TOO_BIG, "v9999999999"])
def test_an_incremental_snapshot_of_a_snapshot_beyond_the_column_is_refused(
    client, as_role, queue, since
):
    response = client.post(
        "/api/v1/queues/numbers/exports",
        json={"format": "jsonl", "since_snapshot": since},
        headers=as_role("admin"),
    )
    assert response.status_code == 422
    assert "since_snapshot" in error_fields(response)
