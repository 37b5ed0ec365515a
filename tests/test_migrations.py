"""One linear Alembic history that builds exactly the models' schema, and tears it down again."""
from __future__ import annotations

import json
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
from vsync.mightycall.webhook_events import parse_event


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


@pytest.fixture(params=["postgresql", "sqlite"])
def database_with_stored_api_keys(request, tmp_path):
    """An app whose database has the shape before webhook deliveries lost their API keys."""
    url = (request.getfixturevalue("empty_database") if request.param == "postgresql"
           else f"sqlite:///{tmp_path / 'vsync.db'}")
    app = create_app(app_config(SQLALCHEMY_DATABASE_URI=url, REDIS_URL=None))
    with app.app_context():
        upgrade(revision="0008_webhook_retry_at")
        yield app
        db.session.remove()
        db.engine.dispose()


KEY, OTHER_KEY = "acme-mightycall-key-5d1f", "another-accounts-key-77ab"


def _event(guid: str, key: str = KEY) -> dict:
    return {"EventType": "IncomingCall", "Timestamp": "2026-07-01T15:00:00Z", "Guid": guid, "ApiKey": key,
            "Body": {"Id": f"call-{guid}", "From": "+17185550123", "To": "+12125550101"}}


def test_upgrade_scrubs_the_api_keys_stored_with_webhook_deliveries_and_call_events(database_with_stored_api_keys):
    org_id = factories.make_org("alpha")
    integration_id = factories.make_integration(org_id)
    number_id = factories.make_number("+12125550101")
    headers = {"Content-Type": "application/json", "User-Agent": f"relay; ApiKey={KEY}"}
    # (guid, status, body, headers): bodies as the receiver stored them before, each holding a key
    stored = [
        ("single", "processed", json.dumps(_event("single"), indent=1), headers),
        ("listed", "received", json.dumps(_event("listed"), separators=(",", ":")), {}),
        (None, "rejected", json.dumps(_event("x", OTHER_KEY)), {}),
        (None, "rejected", json.dumps(_event("y"))[:-3], {}),  # malformed
        (None, "rejected", f"ApiKey={OTHER_KEY}&EventType=IncomingCall", {}),
        ("keyless", "ignored", '{"EventType": "Unheard", "Guid": "keyless",  "Body": {}}', {"Content-Type": "x"}),
    ]
    with db.engine.begin() as conn:
        for n, (guid, status, body, kept) in enumerate(stored):
            conn.execute(text(
                "INSERT INTO webhook_events (org_id, integration_id, guid, headers, body, status, attempts, "
                "received_at) VALUES (:o, :i, :g, :h, :b, :s, 0, :t)"),
                {"o": org_id, "i": integration_id, "g": guid or f"rejected-{n}", "h": json.dumps(kept), "b": body,
                 "s": status, "t": datetime(2026, 7, 1, tzinfo=UTC).replace(tzinfo=None)})
        conn.execute(text(
            "INSERT INTO call_events (integration_id, guid, call_external_id, phone_number_id, event_type, kind, "
            "occurred_at, raw) VALUES (:i, 'single', 'call-single', :n, 'IncomingCall', 'call', :at, :raw)"),
            {"i": integration_id, "n": number_id, "at": datetime(2026, 7, 1, 15), "raw": json.dumps(_event("single"))})
    upgrade()
    with db.engine.connect() as conn:
        rows = conn.execute(text("SELECT guid, body, headers FROM webhook_events ORDER BY id")).all()
        raw = conn.execute(text("SELECT raw FROM call_events")).scalar_one()
    everything = json.dumps([[body, headers] for _, body, headers in rows]) + json.dumps(raw)
    assert KEY not in everything and OTHER_KEY not in everything
    bodies = [body for _, body, _ in rows]
    assert json.loads(bodies[0]) == _event("single", "[removed: matched]")
    assert json.loads(bodies[1]) == _event("listed", "[removed: matched]")
    assert json.loads(bodies[2]) == _event("x", "[removed]")
    assert bodies[3] == json.dumps(_event("y", "[removed]"))[:-3]
    assert bodies[4] == "ApiKey=[removed]&EventType=IncomingCall"
    assert bodies[5] == stored[5][2]  # nothing to scrub: left byte for byte
    headers_after = rows[0][2] if isinstance(rows[0][2], dict) else json.loads(rows[0][2])
    assert headers_after == {"Content-Type": "application/json", "User-Agent": "relay; ApiKey=[removed: matched]"}
    raw = raw if isinstance(raw, dict) else json.loads(raw)
    assert raw == _event("single", "[removed: matched]") and parse_event(raw).guid == "single"
