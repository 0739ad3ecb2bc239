"""/healthz: 200 when the database, Redis and a worker are up, 503 naming what is down."""

from __future__ import annotations

from datetime import timedelta

from rq.utils import utcformat


def test_healthy_with_a_live_worker(client, live_worker):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok" and body["down"] == []
    assert body["checks"]["workers"] == {"ok": True, "detail": "1 alive"}
    assert response.headers["Cache-Control"] == "no-store"


def test_no_worker_is_503_naming_the_workers(client):
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["down"] == ["workers"]
    assert body["checks"]["database"]["ok"] and body["checks"]["redis"]["ok"]


def test_a_worker_whose_heartbeat_stopped_counts_as_down(client, app, live_worker):
    # A worker SIGKILLed keeps its registration until the key expires; only the heartbeat
    # tells. Backdate it past the worker's ttl.
    stale = live_worker.last_heartbeat - timedelta(seconds=live_worker.worker_ttl + 120)
    live_worker.connection.hset(live_worker.key, "last_heartbeat", utcformat(stale))
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["workers"]["detail"] == "no live worker (1 stale)"


def test_redis_down_is_503_and_reveals_no_address(database_url, make_app):
    app = make_app(
        {
            "TESTING": True,
            "SECRET_KEY": "test",
            "DATABASE_URL": database_url,
            "REDIS_URL": "redis://:hunter2@127.0.0.1:1/0",  # nothing listens on port 1
            "LOG_FORMAT": "off",
        }
    )
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["down"] == ["redis", "workers"]
    assert body["checks"]["database"]["ok"]
    assert "127.0.0.1" not in response.text and "hunter2" not in response.text


def test_database_down_is_503(redis_url, tmp_path, make_app):
    missing = tmp_path / "no-such-dir" / "db.sqlite"  # SQLite cannot create it
    app = make_app(
        {
            "TESTING": True,
            "SECRET_KEY": "test",
            "DATABASE_URL": f"sqlite:///{missing}",
            "REDIS_URL": redis_url,
            "LOG_FORMAT": "off",
        }
    )
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert "database" in response.get_json()["down"]
    assert str(tmp_path) not in response.text
