"""Settings, read from the environment once, in `create_app`.

With no environment at all vsync runs its embedded default: a SQLite file under `instance/`, jobs
run inline, and a secret key and an encryption key generated into `instance/` (mode 0600) on first
start. `VSYNC_ENV=production` refuses to start without real secrets and a server database, because
a production instance that silently falls back to generated keys or SQLite loses data on redeploy.
`VSYNC_ENV=test` turns on Flask's `TESTING` (errors reach the test instead of a 500 page).

A value that cannot be used raises `ConfigError` with one line naming the variable and what it
accepts; `wsgi.py` prints that line and exits, so neither the CLI nor a web server starts.
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet
from limits import parse_many
from werkzeug.security import generate_password_hash

log = logging.getLogger(__name__)

ENVIRONMENTS = ("development", "production", "test")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
SMTP_SECURITY = ("starttls", "tls", "none")
# Werkzeug's default. A test suite sets a cheap one (e.g. `pbkdf2:sha256:1`); production refuses that.
DEFAULT_PASSWORD_HASH = "scrypt"
# The Flask-SQLAlchemy bind of `DATABASE_REPLICA_URL`, and the seconds a connection to it may take: a
# replica that does not answer sends reads to the primary instead of holding them.
REPLICA_BIND = "replica"
REPLICA_CONNECT_TIMEOUT = 2


class ConfigError(RuntimeError):
    """The configuration cannot run; the message says what to set."""


def _bool(env, name: str, default: bool) -> bool:
    value = (env.get(name) or "").strip().lower()
    if not value:
        return default
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false (1/0, yes/no, on/off), not {env.get(name)!r}.")


def _int(env, name: str, default: int, minimum: int = 0, maximum: int | None = None) -> int:
    """A whole number from `minimum` to `maximum`."""
    value = env.get(name)
    if value is None or value.strip() == "":
        return default
    try:
        number = int(value)
    except ValueError:
        number = None
    if number is None or number < minimum or (maximum is not None and number > maximum):
        bounds = f"from {minimum} to {maximum}" if maximum is not None else f"of at least {minimum}"
        raise ConfigError(f"{name} must be a whole number {bounds}, not {value!r}.")
    return number


def _choice(env, name: str, default: str, choices: tuple[str, ...]) -> str:
    value = env.get(name) or default
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, not {value!r}.")
    return value


def _password_hash(env, name: str, production: bool) -> str:
    value = env.get(name) or DEFAULT_PASSWORD_HASH
    if value == DEFAULT_PASSWORD_HASH:
        return value
    if production:
        raise ConfigError(f"{name} is a test setting; VSYNC_ENV=production uses {DEFAULT_PASSWORD_HASH}.")
    try:
        generate_password_hash("probe", method=value)
    except ValueError:
        raise ConfigError(
            f"{name} must be a Werkzeug hash method such as scrypt or pbkdf2:sha256:1, not {value!r}."
        ) from None
    return value


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


def _rate(env, name: str, default: str) -> str:
    """A rate limit such as `600 per minute` or `10/second;1000/hour`."""
    value = (env.get(name) or default).strip()
    try:
        parse_many(value)
    except ValueError:
        raise ConfigError(f"{name} must be a rate such as '600 per minute' or '10/second', not {value!r}.") from None
    return value


def _mail(env, instance_path: str, production: bool) -> dict:
    """Flask-Mailman's settings. With no `VSYNC_SMTP_HOST`, every message is written as an `.eml` file
    under `instance/outbox/` (the embedded default); with one, messages go to that SMTP server, over
    STARTTLS unless `VSYNC_SMTP_SECURITY` says `tls` (implicit TLS, port 465) or `none` (loopback only)."""
    host = (env.get("VSYNC_SMTP_HOST") or "").strip()
    security = _choice(env, "VSYNC_SMTP_SECURITY", "starttls", SMTP_SECURITY)
    default_port = {"starttls": 587, "tls": 465, "none": 25}[security]
    sender = (env.get("VSYNC_MAIL_SENDER") or "vsync <vsync@localhost>").strip()
    if "@" not in sender:
        raise ConfigError(f"VSYNC_MAIL_SENDER must be an email address (optionally 'Name <address>'), not {sender!r}.")
    if production and not host:
        log.warning("No VSYNC_SMTP_HOST: email is written to instance/outbox/ and never leaves this machine.")
    return {
        "MAIL_BACKEND": "smtp" if host else "vsync.services.notifications.mail.OutboxFilesEmailBackend",
        "MAIL_FILE_PATH": str(Path(instance_path) / "outbox"),
        "MAIL_SERVER": host or None,
        "MAIL_PORT": _int(env, "VSYNC_SMTP_PORT", default_port, 1, 65535),
        "MAIL_USE_TLS": security == "starttls",
        "MAIL_USE_SSL": security == "tls",
        "MAIL_USERNAME": env.get("VSYNC_SMTP_USER") or None,
        "MAIL_PASSWORD": env.get("VSYNC_SMTP_PASSWORD") or None,
        "MAIL_DEFAULT_SENDER": sender,
        "MAIL_TIMEOUT": _int(env, "VSYNC_SMTP_TIMEOUT", 10, 1),
        "VSYNC_MAIL_RETRY_INTERVALS": [int(x) for x in _numbers(env, "VSYNC_MAIL_RETRY_INTERVALS", "30,300,1800")],
        "VSYNC_PUBLIC_URL": (env.get("VSYNC_PUBLIC_URL") or "http://127.0.0.1:5000").rstrip("/"),
    }


def _alerts(env) -> dict:
    """Outbound alert webhooks (`vsync.services.notifications.alert_webhooks`) and the platform's own
    checks of every org (`vsync.services.notifications.alerts`)."""
    bundle = (env.get("VSYNC_ALERT_WEBHOOK_CA_BUNDLE") or "").strip()
    return {
        "VSYNC_ALERT_WEBHOOK_ALLOW_PRIVATE": _bool(env, "VSYNC_ALERT_WEBHOOK_ALLOW_PRIVATE", False),
        "VSYNC_ALERT_WEBHOOK_TIMEOUT": _int(env, "VSYNC_ALERT_WEBHOOK_TIMEOUT", 10, 1, 120),
        "VSYNC_ALERT_WEBHOOK_RETRY_INTERVALS": [
            int(x) for x in _numbers(env, "VSYNC_ALERT_WEBHOOK_RETRY_INTERVALS", "30,300,1800")
        ],
        "VSYNC_ALERT_WEBHOOK_CA_BUNDLE": bundle or None,
        "VSYNC_PLATFORM_SYNC_FAILING_MINUTES": _int(env, "VSYNC_PLATFORM_SYNC_FAILING_MINUTES", 240, 0, 1440),
        "VSYNC_PLATFORM_WEBHOOK_SILENCE_MINUTES": _int(env, "VSYNC_PLATFORM_WEBHOOK_SILENCE_MINUTES", 60, 0, 1440),
    }


def _database_url(raw: str | None) -> str:
    if not raw:
        # Flask-SQLAlchemy resolves a relative SQLite path against the instance folder.
        return "sqlite:///vsync.db"
    if raw.startswith("postgres://"):  # the scheme Heroku-style providers hand out
        return "postgresql://" + raw[len("postgres://") :]
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
    log.warning("Generated %s at %s for the embedded default; set it in the environment in production.", name, path)
    return value


def load_config(instance_path: str, environ=None, overrides: dict | None = None) -> dict:
    """The app config from `environ` (default `os.environ`); `overrides` (config keys) win over it."""
    env = os.environ if environ is None else environ
    overrides = overrides or {}
    source = {"VSYNC_ENV": overrides["VSYNC_ENV"]} if overrides.get("VSYNC_ENV") else env
    vsync_env = _choice(source, "VSYNC_ENV", "development", ENVIRONMENTS)
    production = vsync_env == "production"
    database_url = overrides.get("SQLALCHEMY_DATABASE_URI") or _database_url(env.get("DATABASE_URL"))
    secret_key = overrides.get("SECRET_KEY") or env.get("SECRET_KEY")
    encryption_keys = overrides.get("VSYNC_ENCRYPTION_KEYS") or env.get("VSYNC_ENCRYPTION_KEYS")
    if isinstance(encryption_keys, (list, tuple)):
        encryption_keys = ",".join(encryption_keys)

    if production:
        missing = [
            name
            for name, value in (("SECRET_KEY", secret_key), ("VSYNC_ENCRYPTION_KEYS", encryption_keys))
            if not value
        ]
        if database_url.startswith("sqlite"):
            missing.append("DATABASE_URL (a PostgreSQL URL)")
        if missing:
            raise ConfigError("VSYNC_ENV=production refuses to start without " + ", ".join(missing) + ".")

    config = {
        "VSYNC_ENV": vsync_env,
        "TESTING": vsync_env == "test",
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "REDIS_URL": env.get("REDIS_URL") or None,
        # A streaming replica for KPI reads (`vsync.services.replica`), left when its replay lags more.
        "DATABASE_REPLICA_URL": _database_url(env.get("DATABASE_REPLICA_URL"))
        if env.get("DATABASE_REPLICA_URL")
        else None,
        "VSYNC_REPLICA_MAX_LAG_SECONDS": _int(env, "VSYNC_REPLICA_MAX_LAG_SECONDS", 5, 0),
        "PORT": _int(env, "PORT", 5000, 1, 65535),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": _bool(env, "SESSION_COOKIE_SECURE", production),
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SECURE": _bool(env, "SESSION_COOKIE_SECURE", production),
        "PERMANENT_SESSION_LIFETIME": _int(env, "VSYNC_SESSION_HOURS", 12, 1) * 3600,
        "VSYNC_LOGIN_MAX_FAILURES": _int(env, "VSYNC_LOGIN_MAX_FAILURES", 10, 1),
        "VSYNC_LOGIN_WINDOW_SECONDS": _int(env, "VSYNC_LOGIN_WINDOW_SECONDS", 900, 1),
        # Platform admins hold every org's keys: in production they must have two-factor sign-in on.
        "VSYNC_TWO_FACTOR_PLATFORM_ADMINS": _bool(env, "VSYNC_TWO_FACTOR_PLATFORM_ADMINS", production),
        "VSYNC_LOG_LEVEL": _choice(env, "VSYNC_LOG_LEVEL", "INFO", LOG_LEVELS),
        "VSYNC_PASSWORD_HASH": _password_hash(env, "VSYNC_PASSWORD_HASH", production),
        # Your account: the shortest password taken, how long a forgot-password link and an email-change
        # link last, how many reset requests an address or a client address may make per login window,
        # and how long a browser keeps the cookie that tells a known device from a new one.
        "VSYNC_PASSWORD_MIN_LENGTH": _int(env, "VSYNC_PASSWORD_MIN_LENGTH", 12, 8, 128),
        "VSYNC_RESET_LINK_MINUTES": _int(env, "VSYNC_RESET_LINK_MINUTES", 60, 5),
        "VSYNC_EMAIL_CHANGE_HOURS": _int(env, "VSYNC_EMAIL_CHANGE_HOURS", 24, 1),
        "VSYNC_RESET_MAX_REQUESTS": _int(env, "VSYNC_RESET_MAX_REQUESTS", 5, 1),
        "VSYNC_DEVICE_COOKIE_DAYS": _int(env, "VSYNC_DEVICE_COOKIE_DAYS", 400, 1),
        # MightyCall client: (connect, read) timeouts, retries inside one request, backoff (base, cap).
        "VSYNC_MIGHTYCALL_TIMEOUT": _numbers(env, "VSYNC_MIGHTYCALL_TIMEOUT", "5,30", 2),
        "VSYNC_MIGHTYCALL_MAX_RETRIES": _int(env, "VSYNC_MIGHTYCALL_MAX_RETRIES", 4),
        "VSYNC_MIGHTYCALL_BACKOFF": _numbers(env, "VSYNC_MIGHTYCALL_BACKOFF", "0.5,30", 2),
        # Sync jobs: job-level retries and their spacing (seconds), page size, windows, dead-worker detection.
        "VSYNC_SYNC_RETRY_INTERVALS": [int(x) for x in _numbers(env, "VSYNC_SYNC_RETRY_INTERVALS", "10,60,300")],
        "VSYNC_SYNC_PAGE_SIZE": _int(env, "VSYNC_SYNC_PAGE_SIZE", 1000, 1),
        "VSYNC_SYNC_OVERLAP_MINUTES": _int(env, "VSYNC_SYNC_OVERLAP_MINUTES", 60),
        "VSYNC_SYNC_INITIAL_DAYS": _int(env, "VSYNC_SYNC_INITIAL_DAYS", 7, 1),
        "VSYNC_SYNC_STALE_SECONDS": _int(env, "VSYNC_SYNC_STALE_SECONDS", 900, 1),
        "VSYNC_LIVE_STALE_MINUTES": _int(env, "VSYNC_LIVE_STALE_MINUTES", 30, 1),
        # API rate limits per key or user (Flask-Limiter notation), reads and writes counted apart.
        "VSYNC_RATE_LIMIT_READ": _rate(env, "VSYNC_RATE_LIMIT_READ", "600 per minute"),
        # The calls CSV through PostgreSQL's COPY (off: the Python export, as on SQLite).
        "VSYNC_CSV_COPY": _bool(env, "VSYNC_CSV_COPY", True),
        "VSYNC_RATE_LIMIT_WRITE": _rate(env, "VSYNC_RATE_LIMIT_WRITE", "60 per minute"),
        # Text messages an org may send (console and API together), whoever sends them.
        "VSYNC_SMS_SEND_LIMIT": _rate(env, "VSYNC_SMS_SEND_LIMIT", "30 per minute"),
        # Webhook processing: job-level retries of a failing event and their spacing (seconds).
        "VSYNC_WEBHOOK_RETRY_INTERVALS": [int(x) for x in _numbers(env, "VSYNC_WEBHOOK_RETRY_INTERVALS", "5,60,600")],
        "WTF_CSRF_TIME_LIMIT": None,  # the token lives as long as the session
        **_mail(env, instance_path, production),
        **_alerts(env),
    }
    # Generated only once every other setting is known to be usable: a refused start writes nothing.
    config["SECRET_KEY"] = secret_key or _instance_secret(
        instance_path, "secret_key", lambda: secrets.token_urlsafe(48)
    )
    encryption_keys = encryption_keys or _instance_secret(
        instance_path, "encryption_key", lambda: Fernet.generate_key().decode()
    )
    config["VSYNC_ENCRYPTION_KEYS"] = [k.strip() for k in encryption_keys.split(",") if k.strip()]
    config.update({k: v for k, v in overrides.items() if k != "VSYNC_ENCRYPTION_KEYS"})
    if config["DATABASE_REPLICA_URL"]:
        if config["DATABASE_REPLICA_URL"].startswith("sqlite") or config["SQLALCHEMY_DATABASE_URI"].startswith(
            "sqlite"
        ):
            raise ConfigError("DATABASE_REPLICA_URL must be a PostgreSQL URL, with DATABASE_URL a PostgreSQL URL too.")
        config["SQLALCHEMY_BINDS"] = {
            **config.get("SQLALCHEMY_BINDS", {}),
            REPLICA_BIND: {
                "url": config["DATABASE_REPLICA_URL"],
                "pool_pre_ping": True,
                "connect_args": {"connect_timeout": REPLICA_CONNECT_TIMEOUT},
            },
        }
    return config
