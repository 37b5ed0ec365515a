"""Rate limits on /api/v1 (Flask-Limiter), per caller: each API key, each signed-in user, and each
client address for anonymous requests, counted across the whole API. Writes have a tighter limit of
their own (`VSYNC_RATE_LIMIT_WRITE`) than reads (`VSYNC_RATE_LIMIT_READ`).

Counters live in Redis when `REDIS_URL` is set, so every web process shares them, and in process
memory in the embedded default. When Redis cannot be reached, each process counts in its own memory
until Redis answers again (a Redis outage must not take the API's reads down with it), and a Redis that
hangs is given up on after `STORAGE_TIMEOUT` seconds. Over the limit a caller gets 429 with
`Retry-After` in the error envelope. The health check is exempt: load balancers poll it.
"""

from __future__ import annotations

from flask import Flask, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from vsync.api import bp
from vsync.auth.principals import ApiKeyPrincipal, UserPrincipal, current_principal

READ_METHODS = ["GET", "HEAD"]
WRITE_METHODS = ["POST", "PUT", "PATCH", "DELETE"]
STORAGE_TIMEOUT = 0.5


def caller_key() -> str:
    principal = current_principal()
    if isinstance(principal, ApiKeyPrincipal):
        return f"key:{principal.key_id}"
    if isinstance(principal, UserPrincipal):
        return f"user:{principal.id}"
    return f"ip:{get_remote_address()}"


def _exempt() -> bool:
    return request.endpoint == "api.health"


def init_app(app: Flask) -> None:
    """One limiter per app: its counters' storage and limits come from that app's config."""
    app.config.setdefault("RATELIMIT_STORAGE_URI", app.config.get("REDIS_URL") or "memory://")
    app.config.setdefault("RATELIMIT_HEADERS_ENABLED", True)
    app.config.setdefault("RATELIMIT_KEY_PREFIX", "vsync")
    if app.config["RATELIMIT_STORAGE_URI"].startswith("redis"):
        app.config.setdefault("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED", True)
        app.config.setdefault(
            "RATELIMIT_STORAGE_OPTIONS", {"socket_connect_timeout": STORAGE_TIMEOUT, "socket_timeout": STORAGE_TIMEOUT}
        )
    limiter = Limiter(key_func=caller_key, app=app)
    app.extensions["vsync.limiter"] = limiter  # its storage also counts limits of vsync's own (SMS sends)
    limiter.shared_limit(
        app.config["VSYNC_RATE_LIMIT_READ"], scope="api-read", methods=READ_METHODS, exempt_when=_exempt
    )(bp)
    limiter.shared_limit(app.config["VSYNC_RATE_LIMIT_WRITE"], scope="api-write", methods=WRITE_METHODS)(bp)
