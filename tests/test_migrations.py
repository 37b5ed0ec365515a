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
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import IntegrityError

from tests import factories
from tests.helpers import DATABASE_URL, app_config
from vsync import ROOT, create_app, crypto
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


def _revisions() -> list[str]:
    """Every revision of the history, base first."""
    return [script.revision for script in reversed(list(ScriptDirectory(str(ROOT / "migrations")).walk_revisions()))]


def _current_revision() -> str | None:
    with db.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def _schema(engine: Engine) -> dict:
    """What SQLAlchemy's inspection sees of every table: columns, keys, indexes and constraints."""
    inspector = inspect(engine)
    return {
        table: {
            "columns": [
                (column["name"], str(column["type"]), column["nullable"], str(column.get("default")))
                for column in inspector.get_columns(table)
            ],
            "primary_key": inspector.get_pk_constraint(table)["constrained_columns"],
            "foreign_keys": sorted(
                (
                    fk["name"] or "",
                    fk["constrained_columns"],
                    fk["referred_table"],
                    fk["referred_columns"],
                    sorted(fk["options"].items()),
                )
                for fk in inspector.get_foreign_keys(table)
            ),
            "indexes": sorted(
                (
                    ix["name"],
                    ix["column_names"],
                    ix["unique"],
                    sorted((option, str(value)) for option, value in ix.get("dialect_options", {}).items()),
                )
                for ix in inspector.get_indexes(table)
            ),
            "unique": sorted((uq["name"] or "", uq["column_names"]) for uq in inspector.get_unique_constraints(table)),
            "checks": sorted((ck["name"] or "", ck["sqltext"]) for ck in inspector.get_check_constraints(table)),
        }
        for table in sorted(inspector.get_table_names())
    }


@pytest.fixture(params=["postgresql", "sqlite"])
def empty_app(request, tmp_path):
    """An app on an empty database: PostgreSQL or the embedded default's SQLite."""
    url = (
        request.getfixturevalue("empty_database")
        if request.param == "postgresql"
        else f"sqlite:///{tmp_path / 'vsync.db'}"
    )
    app = create_app(app_config(SQLALCHEMY_DATABASE_URI=url, REDIS_URL=None))
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


def test_every_revision_downgrades_and_upgrades_one_step_at_a_time_back_to_the_same_schema(empty_app):
    """A deploy may be rolled back by one revision: each step down must work from the schema the step up
    made, and going down to base and up again must rebuild exactly what a straight upgrade builds."""
    revisions = _revisions()
    upgrade()
    straight = _schema(db.engine)
    for below in reversed([None, *revisions[:-1]]):
        downgrade(revision="-1")
        assert _current_revision() == below
    assert set(inspect(db.engine).get_table_names()) == {"alembic_version"}
    for revision in revisions:
        upgrade(revision="+1")
        assert _current_revision() == revision
    assert _schema(db.engine) == straight


def _migrated_to(request, tmp_path, revision: str):
    """An app whose database (PostgreSQL or SQLite, by the fixture's param) is migrated up to `revision`."""
    url = (
        request.getfixturevalue("empty_database")
        if request.param == "postgresql"
        else f"sqlite:///{tmp_path / 'vsync.db'}"
    )
    app = create_app(app_config(SQLALCHEMY_DATABASE_URI=url, REDIS_URL=None))
    with app.app_context():
        upgrade(revision=revision)
        yield app
        db.session.remove()
        db.engine.dispose()


@pytest.fixture(params=["postgresql", "sqlite"])
def database_before_ring_times(request, tmp_path):
    """An app whose database is migrated up to the revision before calls kept their ring time."""
    yield from _migrated_to(request, tmp_path, "0006_password_links")


def _integration_of_old_shape(org_id: int, api_key: str, base_url: str = "http://127.0.0.1:1/v4") -> int:
    """An integration as stored before integrations knew their MightyCall account."""
    with db.engine.begin() as conn:
        return conn.execute(
            text(
                "INSERT INTO integrations (org_id, name, base_url, credentials_encrypted, status, sync_cursors, "
                "sync_schedule, created_at) VALUES (:o, 'MightyCall', :u, :c, 'active', '{}', '{}', :t) RETURNING id"
            ),
            {
                "o": org_id,
                "u": base_url,
                "c": crypto.encrypt_json({"api_key": api_key, "user_key": "u"}),
                "t": datetime(2026, 1, 1),
            },
        ).scalar_one()


def test_upgrade_gives_stored_calls_the_ring_time_their_events_give(database_before_ring_times):
    integration_id = _integration_of_old_shape(factories.make_org("alpha"), "alpha-key")
    number_id = factories.make_number("+12125550101")
    t = datetime(2026, 7, 1, 15, tzinfo=UTC)
    # (call, event type, milliseconds after t); stored kinds say `other`, as 0004 backfilled them.
    events = [
        ("stopped", "IncomingCallRinging", 1_000),
        ("stopped", "AgentStopRinging", 6_500),
        ("stopped", "IncomingCallStopRinging", 4_000),
        ("stopped", "IncomingCallCompleted", 9_000),
        ("hung-up", "incomingcallringing", 2_000),
        ("hung-up", "IncomingCallCompleted", 33_250),
        ("hung-up", "IncomingCallCompleted", 40_000),
        ("open", "IncomingCallRinging", 1_000),
        ("no-ring", "IncomingCallConnected", 1_000),
        ("no-ring", "IncomingCallCompleted", 5_000),
    ]
    with db.engine.begin() as conn:
        for call in ("stopped", "hung-up", "open", "no-ring", "no-events"):
            conn.execute(
                text(
                    "INSERT INTO calls (integration_id, external_id, phone_number_id, direction, status, "
                    "started_at, raw) VALUES (:i, :x, :n, 'inbound', 'missed', :t, '{}')"
                ),
                {"i": integration_id, "x": call, "n": number_id, "t": t.replace(tzinfo=None)},
            )
        for n, (call, event_type, ms) in enumerate(events):
            conn.execute(
                text(
                    "INSERT INTO call_events (integration_id, guid, call_external_id, phone_number_id, event_type, "
                    "kind, occurred_at, raw) VALUES (:i, :g, :x, :n, :e, 'other', :at, '{}')"
                ),
                {
                    "i": integration_id,
                    "g": f"g{n}",
                    "x": call,
                    "n": number_id,
                    "e": event_type,
                    "at": (t + timedelta(milliseconds=ms)).replace(tzinfo=None),
                },
            )
    upgrade()
    with db.engine.connect() as conn:
        stored = dict(conn.execute(text("SELECT external_id, ring_ms FROM calls")).all())
    assert stored == {"stopped": 5_500, "hung-up": 31_250, "open": None, "no-ring": None, "no-events": None}


@pytest.fixture(params=["postgresql", "sqlite"])
def database_at_0008(request, tmp_path):
    """An app whose database is migrated up to 0008: before provider rows were the account's, and
    while webhook deliveries kept their API keys."""
    yield from _migrated_to(request, tmp_path, "0008_webhook_retry_at")


def test_upgrade_merges_the_copies_two_integrations_of_one_account_stored_into_one_row(database_at_0008):
    """Org A and org B connect to one MightyCall account; each integration stored the shared call,
    A's copy from the sync, B's from webhook events; org C has an account of its own with the same
    call id. After the upgrade: one call of the shared account with both sources' fields, one copy of
    each event, recording, SMS and agent, and C's call untouched."""
    a, b, c = (factories.make_org(slug) for slug in ("alpha", "bravo", "charlie"))
    shared_a, shared_b = _integration_of_old_shape(a, "shared-key"), _integration_of_old_shape(b, "shared-key")
    own_c = _integration_of_old_shape(c, "c-key")
    number = factories.make_number("+12125550101")
    t = datetime(2026, 7, 1, 15)
    call = (
        "INSERT INTO calls (integration_id, external_id, phone_number_id, direction, status, started_at, "
        "duration_ms, agent_extension, answered_at, events_at, synced_at, raw) VALUES "
        "(:i, 'call-1', :n, 'inbound', :s, :t, :d, :ext, :ans, :ev, :sy, :raw)"
    )
    with db.engine.begin() as conn:
        conn.execute(
            text(call),
            {
                "i": shared_a,
                "n": number,
                "s": "answered",
                "t": t,
                "d": 60_000,
                "ext": "101",
                "ans": None,
                "ev": None,
                "sy": t,
                "raw": '{"id": "call-1"}',
            },
        )
        conn.execute(
            text(call),
            {
                "i": shared_b,
                "n": number,
                "s": "answered",
                "t": t,
                "d": None,
                "ext": "102",
                "ans": t + timedelta(seconds=7),
                "ev": t + timedelta(seconds=70),
                "sy": None,
                "raw": "{}",
            },
        )
        conn.execute(
            text(call),
            {
                "i": own_c,
                "n": number,
                "s": "missed",
                "t": t,
                "d": 0,
                "ext": None,
                "ans": None,
                "ev": None,
                "sy": t,
                "raw": "{}",
            },
        )
        for integration in (shared_a, shared_b, own_c):
            conn.execute(
                text(
                    "INSERT INTO call_events (integration_id, guid, call_external_id, phone_number_id, "
                    "event_type, kind, extension, occurred_at, raw) VALUES (:i, 'g1', 'call-1', :n, "
                    "'IncomingCallConnected', 'connected', '102', :t, '{}')"
                ),
                {"i": integration, "n": number, "t": t + timedelta(seconds=7)},
            )
            conn.execute(
                text(
                    "INSERT INTO recordings (integration_id, call_external_id, phone_number_id, started_at, "
                    "provider_uri) VALUES (:i, 'call-1', :n, :t, :u)"
                ),
                {"i": integration, "n": number, "t": t, "u": f"http://r/{integration}"},
            )
            conn.execute(
                text(
                    "INSERT INTO sms_messages (integration_id, external_id, phone_number_id, direction, sent_at, raw, "
                    "synced_at) VALUES (:i, 'sms-1', :n, 'inbound', :t, '{}', :t)"
                ),
                {"i": integration, "n": number, "t": t},
            )
        for org, integration in ((a, shared_a), (b, shared_b), (c, own_c)):
            conn.execute(
                text(
                    "INSERT INTO agents (org_id, integration_id, extension, display_name, updated_at) "
                    "VALUES (:o, :i, '101', 'Ada', :t)"
                ),
                {"o": org, "i": integration, "t": t},
            )
    upgrade()
    with db.engine.connect() as conn:
        accounts = dict(conn.execute(text("SELECT id, account_id FROM integrations")).all())
        calls = conn.execute(
            text(
                "SELECT account_id, status, duration_ms, agent_extension, answered_at, events_at, "
                "synced_at FROM calls ORDER BY account_id"
            )
        ).all()
        counts = {
            table: conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one()
            for table in ("call_events", "recordings", "sms_messages", "agents", "provider_accounts")
        }
        filed = set(conn.execute(text("SELECT call_started_at FROM call_events")).scalars())
    assert accounts[shared_a] == accounts[shared_b] != accounts[own_c]
    shared, own = (calls[0], calls[1]) if calls[0].account_id == accounts[shared_a] else (calls[1], calls[0])
    assert (shared.status, shared.duration_ms, shared.agent_extension) == ("answered", 60_000, "102")
    assert shared.answered_at is not None and shared.events_at is not None and shared.synced_at is not None
    assert (own.status, own.account_id) == ("missed", accounts[own_c])
    assert counts == {"call_events": 2, "recordings": 2, "sms_messages": 2, "agents": 2, "provider_accounts": 2}
    assert len(filed) == 1


KEY, OTHER_KEY = "acme-mightycall-key-5d1f", "another-accounts-key-77ab"


def _event(guid: str, key: str = KEY) -> dict:
    return {
        "EventType": "IncomingCall",
        "Timestamp": "2026-07-01T15:00:00Z",
        "Guid": guid,
        "ApiKey": key,
        "Body": {"Id": f"call-{guid}", "From": "+17185550123", "To": "+12125550101"},
    }


def test_upgrade_scrubs_the_api_keys_stored_with_webhook_deliveries_and_call_events(database_at_0008):
    org_id = factories.make_org("alpha")
    integration_id = _integration_of_old_shape(org_id, KEY)
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
            conn.execute(
                text(
                    "INSERT INTO webhook_events (org_id, integration_id, guid, headers, body, status, attempts, "
                    "received_at) VALUES (:o, :i, :g, :h, :b, :s, 0, :t)"
                ),
                {
                    "o": org_id,
                    "i": integration_id,
                    "g": guid or f"rejected-{n}",
                    "h": json.dumps(kept),
                    "b": body,
                    "s": status,
                    "t": datetime(2026, 7, 1, tzinfo=UTC).replace(tzinfo=None),
                },
            )
        conn.execute(
            text(
                "INSERT INTO call_events (integration_id, guid, call_external_id, phone_number_id, event_type, kind, "
                "occurred_at, raw) VALUES (:i, 'single', 'call-single', :n, 'IncomingCall', 'call', :at, :raw)"
            ),
            {"i": integration_id, "n": number_id, "at": datetime(2026, 7, 1, 15), "raw": json.dumps(_event("single"))},
        )
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


DURATIONS_BEFORE = "0020_notifyapi_sync_failures"
DURATIONS_AFTER = "0021_callsui_call_durations"


@pytest.fixture(params=["postgresql", "sqlite"])
def database_before_durations(request, tmp_path):
    yield from _migrated_to(request, tmp_path, DURATIONS_BEFORE)


def test_upgrade_gives_ended_webhook_only_calls_their_events_duration_and_leaves_the_rest(database_before_durations):
    account_id = factories.account_of(factories.make_integration(factories.make_org("alpha")))
    number_id = factories.make_number("+12125550101")
    t = datetime(2026, 7, 1, 15, tzinfo=UTC)
    naive = db.engine.dialect.name == "sqlite"

    def at(seconds: float | None):
        if seconds is None:
            return None
        value = t + timedelta(seconds=seconds)
        return value.replace(tzinfo=None) if naive else value

    # (call, answered, ended, duration, synced)
    calls = [
        ("answered", 9, 190.5, None, None),
        ("unanswered", None, 32, None, None),
        ("open", 9, None, None, None),
        ("synced", 9, 190, 60_000, 1),
        ("synced-no-duration", 9, 190, None, 1),
    ]
    with db.engine.begin() as conn:
        for external_id, answered, ended, duration, synced in calls:
            conn.execute(
                text(
                    "INSERT INTO calls (account_id, external_id, phone_number_id, direction, status, started_at, "
                    "answered_at, ended_at, duration_ms, synced_at, raw) "
                    "VALUES (:a, :x, :n, 'inbound', 'answered', :t, :ans, :end, :d, :s, '{}')"
                ),
                {
                    "a": account_id,
                    "x": external_id,
                    "n": number_id,
                    "t": at(0),
                    "ans": at(answered),
                    "end": at(ended),
                    "d": duration,
                    "s": at(synced),
                },
            )

    def durations() -> dict:
        with db.engine.connect() as conn:
            return dict(conn.execute(text("SELECT external_id, duration_ms FROM calls")).all())

    upgrade(revision=DURATIONS_AFTER)
    assert durations() == {
        "answered": 181_500,
        "unanswered": 0,
        "open": None,
        "synced": 60_000,
        "synced-no-duration": None,
    }
    downgrade(revision=DURATIONS_BEFORE)
    assert durations() == {k: (60_000 if k == "synced" else None) for k, *_ in calls}


@pytest.fixture(params=["postgresql", "sqlite"])
def database_at_head(request, tmp_path):
    yield from _migrated_to(request, tmp_path, "head")


def test_org_names_stay_unique_regardless_of_case_through_every_migration(database_at_head):
    """SQLite copies a table to change it and cannot copy an index on an expression: the migrations
    that change `organizations` make the names' index again, so SQLite refuses a second "ACME" too."""
    factories.make_org("acme")  # named "Acme"
    with pytest.raises(IntegrityError), db.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO organizations (name, slug, timezone, service_level_target, "
                "service_level_threshold_seconds, short_abandon_seconds, created_at) "
                "VALUES ('ACME', 'acme-2', 'UTC', 0.8, 20, 5, CURRENT_TIMESTAMP)"
            )
        )
