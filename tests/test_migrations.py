"""One linear Alembic history that builds exactly the models' schema, and tears it down again."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask_migrate import downgrade, upgrade
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from tests import factories
from tests.helpers import DATABASE_URL, app_config
from vsync import ROOT, create_app
from vsync.extensions import db


@pytest.fixture
def empty_database():
    url = make_url(DATABASE_URL).set(database=make_url(DATABASE_URL).database + "_migrations")
    admin = create_engine(make_url(DATABASE_URL).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{url.database}"'))
        conn.execute(text(f'CREATE DATABASE "{url.database}"'))
    yield url.render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
    admin.dispose()


def test_history_has_a_single_head():
    script = ScriptDirectory(str(ROOT / "migrations"))
    assert len(script.get_heads()) == 1


def test_upgrade_from_empty_gives_exactly_the_models_schema_and_downgrade_empties_it(empty_database):
    app = create_app(app_config(SQLALCHEMY_DATABASE_URI=empty_database, REDIS_URL=None))
    with app.app_context():
        upgrade()
        with db.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(context, db.metadata)
        assert diff == []
        downgrade(revision="base")
        assert set(inspect(db.engine).get_table_names()) == {"alembic_version"}
        db.engine.dispose()


@pytest.fixture(params=["postgresql", "sqlite"])
def database_before_ring_times(request, tmp_path):
    """An app whose database is migrated up to the revision before calls kept their ring time."""
    url = (request.getfixturevalue("empty_database") if request.param == "postgresql"
           else f"sqlite:///{tmp_path / 'vsync.db'}")
    app = create_app(app_config(SQLALCHEMY_DATABASE_URI=url, REDIS_URL=None))
    with app.app_context():
        upgrade(revision="0006_password_links")
        yield app
        db.session.remove()
        db.engine.dispose()


def test_upgrade_gives_stored_calls_the_ring_time_their_events_give(database_before_ring_times):
    integration_id = factories.make_integration(factories.make_org("alpha"))
    number_id = factories.make_number("+12125550101")
    t = datetime(2026, 7, 1, 15, tzinfo=UTC)
    # (call, event type, milliseconds after t); stored kinds say `other`, as 0004 backfilled them.
    events = [("stopped", "IncomingCallRinging", 1_000), ("stopped", "AgentStopRinging", 6_500),
              ("stopped", "IncomingCallStopRinging", 4_000), ("stopped", "IncomingCallCompleted", 9_000),
              ("hung-up", "incomingcallringing", 2_000), ("hung-up", "IncomingCallCompleted", 33_250),
              ("hung-up", "IncomingCallCompleted", 40_000), ("open", "IncomingCallRinging", 1_000),
              ("no-ring", "IncomingCallConnected", 1_000), ("no-ring", "IncomingCallCompleted", 5_000)]
    with db.engine.begin() as conn:
        for call in ("stopped", "hung-up", "open", "no-ring", "no-events"):
            conn.execute(text(
                "INSERT INTO calls (integration_id, external_id, phone_number_id, direction, status, started_at, raw) "
                "VALUES (:i, :x, :n, 'inbound', 'missed', :t, '{}')"),
                {"i": integration_id, "x": call, "n": number_id, "t": t.replace(tzinfo=None)})
        for n, (call, event_type, ms) in enumerate(events):
            conn.execute(text(
                "INSERT INTO call_events (integration_id, guid, call_external_id, phone_number_id, event_type, "
                "kind, occurred_at, raw) VALUES (:i, :g, :x, :n, :e, 'other', :at, '{}')"),
                {"i": integration_id, "g": f"g{n}", "x": call, "n": number_id, "e": event_type,
                 "at": (t + timedelta(milliseconds=ms)).replace(tzinfo=None)})
    upgrade()
    with db.engine.connect() as conn:
        stored = dict(conn.execute(text("SELECT external_id, ring_ms FROM calls")).all())
    assert stored == {"stopped": 5_500, "hung-up": 31_250, "open": None, "no-ring": None, "no-events": None}
