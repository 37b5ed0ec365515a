"""vsync: multi-tenant call analytics and administration for MightyCall accounts.

`create_app` is the only way to build the app: configuration, the tenant filter, extensions, the job queue,
the HTTP basics (request ids, JSON errors), authentication, the API, the webhook receiver, the admin
console and the CLI, each bound by its own `init_app`.
Nothing is done at import time, and the app never migrates its own database (`flask db upgrade`).
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine

from vsync.config import load_config
from vsync.extensions import csrf, db, mail, migrate

ROOT = Path(__file__).resolve().parent.parent


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    """The embedded default's SQLite: enforce foreign keys (off by default in SQLite), and let the
    web server and inline jobs read while one writes (WAL), waiting rather than failing on a lock."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()


def _configure_logging(app: Flask) -> None:
    """Every handler of the root logger (the one set up here, or the server's) gets `LogContext`, so
    every record says which request or job it belongs to."""
    from vsync.http import LogContext

    level = app.config["VSYNC_LOG_LEVEL"]
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s [%(context)s]: %(message)s")
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, LogContext) for f in handler.filters):
            handler.addFilter(LogContext())
    logging.getLogger("vsync").setLevel(level)
    # urllib3 logs every request's full URL at DEBUG; a recording link is pre-signed, so its URLs
    # stay out of the logs whatever the level (vsync's MightyCall client logs its requests itself).
    logging.getLogger("urllib3").setLevel(max(logging.INFO, logging.getLevelName(level)))


def create_app(overrides: dict | None = None) -> Flask:
    app = Flask(__name__, instance_path=str(ROOT / "instance"), template_folder=str(ROOT / "templates"))
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    app.config.update(load_config(app.instance_path, overrides=overrides))
    _configure_logging(app)

    import vsync.models  # noqa: F401  (register every table before extensions bind)
    from vsync import admin, api, auth, cli, http, queue, tenancy, webhooks

    tenancy.init_app(app)
    db.init_app(app)
    if not event.contains(Engine, "connect", _sqlite_pragmas):
        event.listen(Engine, "connect", _sqlite_pragmas)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"))
    queue.init_app(app)
    mail.init_app(app)
    http.init_app(app)
    csrf.init_app(app)
    auth.init_app(app)
    api.init_app(app)
    webhooks.init_app(app)
    admin.init_app(app)
    cli.init_app(app)
    return app
