"""Fixtures: the app on a real PostgreSQL database and a real Redis, migrated with Alembic; every API
answer it gives is checked against its OpenAPI schema (`tests.openapi_check`).

`make test` creates a fresh database and exports TEST_DATABASE_URL / TEST_REDIS_URL; run alone,
pytest uses the same local defaults. Each test starts from empty tables (TRUNCATE), so tests can
commit, and jobs in other threads or processes see what a test wrote.
"""
from __future__ import annotations

import pytest
from flask_migrate import upgrade
from sqlalchemy import text

from tests import openapi_check
from tests.helpers import app_config
from tests.world import build_world
from vsync import create_app
from vsync.extensions import db


@pytest.fixture(scope="session")
def app():
    app = create_app(app_config())
    with app.app_context():
        upgrade()
    openapi_check.install(app)
    return app


@pytest.fixture(autouse=True)
def _clean_state(request):
    yield
    if "app" not in request.fixturenames:
        return
    app = request.getfixturevalue("app")
    with app.app_context():
        db.session.remove()
        tables = ", ".join(t.name for t in db.metadata.sorted_tables)
        with db.engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        redis = app.extensions.get("vsync.redis")
        if redis is not None:
            redis.flushdb()


@pytest.fixture
def ctx(app):
    """An app context (and so a fresh session) for the test body."""
    with app.app_context():
        yield
        db.session.remove()


@pytest.fixture
def in_app(app):
    """`with in_app(): ...` runs a block in its own app context and session, like a separate request.

    Tests that drive the test client use this instead of `ctx`: a request inside a pushed app
    context would share that context's session, which no two real requests ever do.
    """
    return app.app_context


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def world(app):
    """The two-org world (`tests.world`), built in its own app context; returns its ids and keys."""
    with app.app_context():
        built = build_world()
        db.session.remove()
    return built
