"""vsync: multi-tenant call analytics and administration for MightyCall accounts.

`create_app` is the only way to build the app: configuration, extensions, the tenant filter,
authentication, the API, the admin console and the CLI, each bound by its own `init_app`.
Nothing is done at import time, and the app never migrates its own database (`flask db upgrade`).
"""
from __future__ import annotations

import logging
from pathlib import Path

from flask import Flask

from vsync.config import load_config
from vsync.extensions import csrf, db, migrate

ROOT = Path(__file__).resolve().parent.parent


def _configure_logging(app: Flask) -> None:
    level = app.config["VSYNC_LOG_LEVEL"]
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("vsync").setLevel(level)


def create_app(overrides: dict | None = None) -> Flask:
    app = Flask(__name__, instance_path=str(ROOT / "instance"), template_folder=str(ROOT / "templates"))
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    app.config.update(load_config(app.instance_path, overrides=overrides))
    _configure_logging(app)

    import vsync.models  # noqa: F401  (register every table before extensions bind)
    from vsync import admin, api, auth, cli, jobs

    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"))
    jobs.init_app(app)
    auth.init_app(app)  # before CSRF: an anonymous request is refused as such, whatever its method
    csrf.init_app(app)
    api.init_app(app)
    admin.init_app(app)
    cli.init_app(app)
    return app
