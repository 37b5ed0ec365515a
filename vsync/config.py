"""Settings, read from the environment once, in `create_app`.

With no environment at all vsync runs its embedded default: a SQLite file under `instance/`, jobs
run inline, and a secret key and an encryption key generated into `instance/` (mode 0600) on first
start. `VSYNC_ENV=production` refuses to start without real secrets and a server database, because
a production instance that silently falls back to generated keys or SQLite loses data on redeploy.
"""
from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet

log = logging.getLogger(__name__)

ENVIRONMENTS = ("development", "production", "test")


class ConfigError(RuntimeError):
    """The configuration cannot run; the message says what to set."""


def _bool(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


def _numbers(env, name: str, default: str, count: int | None = None) -> tuple[float, ...]:
    """Comma-separated non-negative numbers (`count` of them, when given)."""
    value = env.get(name, default)
    try:
        parts = tuple(float(p) for p in value.split(","))
    except ValueError:
        parts = ()
    if not parts or (count is not None and len(parts) != count) or any(p < 0 for p in parts):
        raise ConfigError(f"{name} must be {count or 'some'} comma-separated non-negative numbers, not {value!r}.")
    return parts


def _database_url(raw: str | None) -> str:
    if not raw:
        # Flask-SQLAlchemy resolves a relative SQLite path against the instance folder.
        return "sqlite:///vsync.db"
    if raw.startswith("postgres://"):  # the scheme Heroku-style providers hand out
        return "postgresql://" + raw[len("postgres://"):]
    return raw


def _instance_secret(instance_path: str, name: str, make) -> str:
    """Read or create a secret file under instance/, readable by the owner only."""
    path = Path(instance_path) / name
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = make()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
    log.warning("Generated %s at %s for the embedded default; set it in the environment in production.",
                name, path)
    return value


def load_config(instance_path: str, environ=None, overrides: dict | None = None) -> dict:
    """The app config from `environ` (default `os.environ`); `overrides` (config keys) win over it."""
    env = os.environ if environ is None else environ
    overrides = overrides or {}
    vsync_env = overrides.get("VSYNC_ENV") or env.get("VSYNC_ENV", "development")
    if vsync_env not in ENVIRONMENTS:
        raise ConfigError(f"VSYNC_ENV must be one of {', '.join(ENVIRONMENTS)}, not {vsync_env!r}.")
    production = vsync_env == "production"
    database_url = overrides.get("SQLALCHEMY_DATABASE_URI") or _database_url(env.get("DATABASE_URL"))
    secret_key = overrides.get("SECRET_KEY") or env.get("SECRET_KEY")
    encryption_keys = overrides.get("VSYNC_ENCRYPTION_KEYS") or env.get("VSYNC_ENCRYPTION_KEYS")
    if isinstance(encryption_keys, (list, tuple)):
        encryption_keys = ",".join(encryption_keys)

    if production:
        missing = [name for name, value in (("SECRET_KEY", secret_key),
                                            ("VSYNC_ENCRYPTION_KEYS", encryption_keys)) if not value]
        if database_url.startswith("sqlite"):
            missing.append("DATABASE_URL (a PostgreSQL URL)")
        if missing:
            raise ConfigError("VSYNC_ENV=production refuses to start without " + ", ".join(missing) + ".")
    secret_key = secret_key or _instance_secret(
        instance_path, "secret_key", lambda: secrets.token_urlsafe(48))
    encryption_keys = encryption_keys or _instance_secret(
        instance_path, "encryption_key", lambda: Fernet.generate_key().decode())

    config = {
        "VSYNC_ENV": vsync_env,
        "SECRET_KEY": secret_key,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "REDIS_URL": env.get("REDIS_URL") or None,
        "VSYNC_ENCRYPTION_KEYS": [k.strip() for k in encryption_keys.split(",") if k.strip()],
        "PORT": int(env.get("PORT", "5000")),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": _bool(env.get("SESSION_COOKIE_SECURE"), production),
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SECURE": _bool(env.get("SESSION_COOKIE_SECURE"), production),
        "PERMANENT_SESSION_LIFETIME": int(env.get("VSYNC_SESSION_HOURS", "12")) * 3600,
        "VSYNC_LOGIN_MAX_FAILURES": int(env.get("VSYNC_LOGIN_MAX_FAILURES", "10")),
        "VSYNC_LOGIN_WINDOW_SECONDS": int(env.get("VSYNC_LOGIN_WINDOW_SECONDS", "900")),
        "VSYNC_LOG_LEVEL": env.get("VSYNC_LOG_LEVEL", "INFO"),
        # MightyCall client: (connect, read) timeouts, retries inside one request, backoff (base, cap).
        "VSYNC_MIGHTYCALL_TIMEOUT": _numbers(env, "VSYNC_MIGHTYCALL_TIMEOUT", "5,30", 2),
        "VSYNC_MIGHTYCALL_MAX_RETRIES": int(env.get("VSYNC_MIGHTYCALL_MAX_RETRIES", "4")),
        "VSYNC_MIGHTYCALL_BACKOFF": _numbers(env, "VSYNC_MIGHTYCALL_BACKOFF", "0.5,30", 2),
        # Sync jobs: job-level retries and their spacing (seconds), page size, windows, dead-worker detection.
        "VSYNC_SYNC_RETRY_INTERVALS": [int(x) for x in _numbers(env, "VSYNC_SYNC_RETRY_INTERVALS", "10,60,300")],
        "VSYNC_SYNC_PAGE_SIZE": int(env.get("VSYNC_SYNC_PAGE_SIZE", "1000")),
        "VSYNC_SYNC_OVERLAP_MINUTES": int(env.get("VSYNC_SYNC_OVERLAP_MINUTES", "60")),
        "VSYNC_SYNC_INITIAL_DAYS": int(env.get("VSYNC_SYNC_INITIAL_DAYS", "7")),
        "VSYNC_SYNC_STALE_SECONDS": int(env.get("VSYNC_SYNC_STALE_SECONDS", "900")),
        # Webhook processing: job-level retries of a failing event and their spacing (seconds).
        "VSYNC_WEBHOOK_RETRY_INTERVALS": [int(x) for x in _numbers(env, "VSYNC_WEBHOOK_RETRY_INTERVALS", "5,60,600")],
        "WTF_CSRF_TIME_LIMIT": None,  # the token lives as long as the session
    }
    config.update({k: v for k, v in overrides.items() if k != "VSYNC_ENCRYPTION_KEYS"})
    return config
