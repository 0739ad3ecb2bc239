"""The Redis connection and the RQ queue, one of each per app."""

from __future__ import annotations

from typing import cast

from flask import Flask, current_app
from redis import Redis
from rq import Queue


def init_app(app: Flask) -> None:
    connection = Redis.from_url(app.config["REDIS_URL"], socket_connect_timeout=2, socket_timeout=5)
    app.extensions["redis"] = connection
    app.extensions["rq_queue"] = Queue(app.config["RQ_QUEUE_NAME"], connection=connection)


def get_redis() -> Redis:
    return cast(Redis, current_app.extensions["redis"])


def get_rq_queue() -> Queue:
    return cast(Queue, current_app.extensions["rq_queue"])
