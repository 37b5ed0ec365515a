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
from vsync import ROOT, create_app, crypto
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


def _integration_of_old_shape(org_id: int, api_key: str, base_url: str = "http://127.0.0.1:1/v4") -> int:
    """An integration as stored before integrations knew their MightyCall account."""
    with db.engine.begin() as conn:
        return conn.execute(text(
            "INSERT INTO integrations (org_id, name, base_url, credentials_encrypted, status, sync_cursors, "
            "sync_schedule, created_at) VALUES (:o, 'MightyCall', :u, :c, 'active', '{}', '{}', :t) RETURNING id"),
            {"o": org_id, "u": base_url, "c": crypto.encrypt_json({"api_key": api_key, "user_key": "u"}),
             "t": datetime(2026, 1, 1)}).scalar_one()


def test_upgrade_gives_stored_calls_the_ring_time_their_events_give(database_before_ring_times):
    integration_id = _integration_of_old_shape(factories.make_org("alpha"), "alpha-key")
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


@pytest.fixture(params=["postgresql", "sqlite"])
def database_before_provider_accounts(request, tmp_path):
    """An app whose database is migrated up to the revision before provider rows were the account's."""
    url = (request.getfixturevalue("empty_database") if request.param == "postgresql"
           else f"sqlite:///{tmp_path / 'vsync.db'}")
    app = create_app(app_config(SQLALCHEMY_DATABASE_URI=url, REDIS_URL=None))
    with app.app_context():
        upgrade(revision="0008_webhook_retry_at")
        yield app
        db.session.remove()
        db.engine.dispose()


def test_upgrade_merges_the_copies_two_integrations_of_one_account_stored_into_one_row(
        database_before_provider_accounts):
    """Org A and org B connect to one MightyCall account; each integration stored the shared call,
    A's copy from the sync, B's from webhook events; org C has an account of its own with the same
    call id. After the upgrade: one call of the shared account with both sources' fields, one copy of
    each event, recording, SMS and agent, and C's call untouched."""
    a, b, c = (factories.make_org(slug) for slug in ("alpha", "bravo", "charlie"))
    shared_a, shared_b = _integration_of_old_shape(a, "shared-key"), _integration_of_old_shape(b, "shared-key")
    own_c = _integration_of_old_shape(c, "c-key")
    number = factories.make_number("+12125550101")
    t = datetime(2026, 7, 1, 15)
    call = ("INSERT INTO calls (integration_id, external_id, phone_number_id, direction, status, started_at, "
            "duration_ms, agent_extension, answered_at, events_at, synced_at, raw) VALUES "
            "(:i, 'call-1', :n, 'inbound', :s, :t, :d, :ext, :ans, :ev, :sy, :raw)")
    with db.engine.begin() as conn:
        conn.execute(text(call), {"i": shared_a, "n": number, "s": "answered", "t": t, "d": 60_000, "ext": "101",
                                  "ans": None, "ev": None, "sy": t, "raw": '{"id": "call-1"}'})
        conn.execute(text(call), {"i": shared_b, "n": number, "s": "answered", "t": t, "d": None, "ext": "102",
                                  "ans": t + timedelta(seconds=7), "ev": t + timedelta(seconds=70), "sy": None,
                                  "raw": "{}"})
        conn.execute(text(call), {"i": own_c, "n": number, "s": "missed", "t": t, "d": 0, "ext": None,
                                  "ans": None, "ev": None, "sy": t, "raw": "{}"})
        for integration in (shared_a, shared_b, own_c):
            conn.execute(text(
                "INSERT INTO call_events (integration_id, guid, call_external_id, phone_number_id, event_type, kind, "
                "extension, occurred_at, raw) VALUES (:i, 'g1', 'call-1', :n, 'IncomingCallConnected', 'connected', "
                "'102', :t, '{}')"), {"i": integration, "n": number, "t": t + timedelta(seconds=7)})
            conn.execute(text(
                "INSERT INTO recordings (integration_id, call_external_id, phone_number_id, started_at, provider_uri) "
                "VALUES (:i, 'call-1', :n, :t, :u)"),
                {"i": integration, "n": number, "t": t, "u": f"http://r/{integration}"})
            conn.execute(text(
                "INSERT INTO sms_messages (integration_id, external_id, phone_number_id, direction, sent_at, raw, "
                "synced_at) VALUES (:i, 'sms-1', :n, 'inbound', :t, '{}', :t)"),
                {"i": integration, "n": number, "t": t})
        for org, integration in ((a, shared_a), (b, shared_b), (c, own_c)):
            conn.execute(text("INSERT INTO agents (org_id, integration_id, extension, display_name, updated_at) "
                              "VALUES (:o, :i, '101', 'Ada', :t)"), {"o": org, "i": integration, "t": t})
    upgrade()
    with db.engine.connect() as conn:
        accounts = dict(conn.execute(text("SELECT id, account_id FROM integrations")).all())
        calls = conn.execute(text("SELECT account_id, status, duration_ms, agent_extension, answered_at, events_at, "
                                  "synced_at FROM calls ORDER BY account_id")).all()
        counts = {table: conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one()
                  for table in ("call_events", "recordings", "sms_messages", "agents", "provider_accounts")}
        filed = set(conn.execute(text("SELECT call_started_at FROM call_events")).scalars())
    assert accounts[shared_a] == accounts[shared_b] != accounts[own_c]
    shared, own = (calls[0], calls[1]) if calls[0].account_id == accounts[shared_a] else (calls[1], calls[0])
    assert (shared.status, shared.duration_ms, shared.agent_extension) == ("answered", 60_000, "102")
    assert shared.answered_at is not None and shared.events_at is not None and shared.synced_at is not None
    assert (own.status, own.account_id) == ("missed", accounts[own_c])
    assert counts == {"call_events": 2, "recordings": 2, "sms_messages": 2, "agents": 2, "provider_accounts": 2}
    assert len(filed) == 1
