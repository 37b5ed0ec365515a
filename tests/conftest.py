"""Fixtures: the app on a real PostgreSQL database and a real Redis, migrated with Alembic; every API
answer it gives is checked against its OpenAPI schema (`tests.openapi_check`).

`make test` creates a fresh database and exports TEST_DATABASE_URL / TEST_REDIS_URL; run alone,
pytest uses the same local defaults. Each test starts from empty tables (TRUNCATE), so tests can
commit, and jobs in other threads or processes see what a test wrote.

No test depends on the day it runs or on the machine's time zone: a test that needs a moment takes
it as an input (a fixed instant, a window derived from its own `now`, or `time_machine` where the
code under test reads the clock). To prove it, `TEST_NOW=2027-12-31T23:59:59Z` starts every test
with this process's clock at that instant (then ticking): each test meets the edge it names.
"""

from __future__ import annotations

import os
from datetime import datetime

import pytest
import time_machine
from flask_migrate import upgrade
from sqlalchemy import text

from tests import openapi_check
from tests.helpers import DATABASE_URL, WORKER, app_config
from tests.preflight import fresh_database
from tests.world import build_world
from vsync import create_app
from vsync.extensions import db
from vsync.timeutil import parse_utc

_TEST_NOW = pytest.StashKey[tuple[datetime, time_machine.Traveller]]()


def pytest_configure(config):
    if WORKER:
        fresh_database(DATABASE_URL)  # this worker's own database (`tests.helpers`)
    if os.environ.get("TEST_NOW"):
        at = parse_utc(os.environ["TEST_NOW"], field="TEST_NOW")
        travel = time_machine.travel(at, tick=True)
        config.stash[_TEST_NOW] = at, travel.start()
        config.add_cleanup(travel.stop)


@pytest.fixture(autouse=True)
def _test_now(request):
    """Under `TEST_NOW`, every test starts at that instant (session fixtures were made at it too)."""
    if _TEST_NOW in request.config.stash:
        at, traveller = request.config.stash[_TEST_NOW]
        traveller.move_to(at)


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
