"""Background jobs on RQ, or inline when no `REDIS_URL` is configured (the embedded default)."""
from __future__ import annotations

from flask import Flask, current_app
from redis import Redis


def redis_connection() -> Redis | None:
    return current_app.extensions.get("vsync.redis")


def init_app(app: Flask) -> None:
    url = app.config.get("REDIS_URL")
    app.extensions["vsync.redis"] = (
        Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5) if url else None)
