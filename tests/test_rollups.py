"""Rollups by hour and by day: every figure through the engine equals the figure from rows alone.

The worlds are `tests.test_metrics`'s (numbers shared by two orgs and moved between them mid-hour,
DST days, zones with half-hour offsets, webhook waits on threshold edges), with two orgs whose
thresholds differ on their shared number; after the rollups are rebuilt, calls are re-synced with
another status, agent or start, late events arrive and some writes leave their hours stale, and then
every figure, for the org and for an agent of it, is compared with `metrics.rows_only()`. On
PostgreSQL and on the embedded SQLite. Then the rebuild and the check, and the sync's own writes.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from flask_migrate import upgrade
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, insert, select, update

from tests import factories
from tests.helpers import app_config
from tests.test_metrics import (
    NUMBERS,
    NY,
    PROPERTY,
    World,
    add_calls,
    assert_same,
    build_world,
    call_row,
    event_row,
    run_scenario,
    scenarios,
)
from vsync import create_app, metrics
from vsync.extensions import db
from vsync.mightycall import CallRecord
from vsync.models import Call, CallEvent, CallRollup, Integration, Organization, RollupDirty
from vsync.query import Filters, Window
from vsync.services import rollups
from vsync.services.sync.ingest import NumberBook, write_calls
from vsync.tenancy import platform_bypass, tenant
from vsync.timeutil import isoformat_z

SPAN = timedelta(days=5)  # around a scenario's anchor: every call and window of it


def figures(org_id: int, window: Window, filters: Filters, bucket: str, **scope) -> dict:
    with tenant(org_id, **scope):
        org = db.session.get(Organization, org_id)
        return {
            "summary": metrics.summary(org, window, filters),
            "series": metrics.series(org, window, bucket, filters),
            "agents": metrics.by_agent(org, window, filters),
            "numbers": metrics.by_number(org, window, filters),
        }


def assert_engine_equals_rows(org_id: int, window: Window, filters: Filters, bucket: str) -> None:
    for scope in ({}, {"role": "agent", "extension": "101", "accounts": _accounts(org_id)}):
        through_rollups = figures(org_id, window, filters, bucket, **scope)
        with metrics.rows_only():
            from_rows = figures(org_id, window, filters, bucket, **scope)
        assert_same(through_rollups, from_rows, f"org {org_id} {scope.get('role', '')}")


def _accounts(org_id: int) -> list[int]:
    with platform_bypass("test"):
        accounts = list(db.session.scalars(select(Integration.account_id).where(Integration.org_id == org_id)))
        db.session.rollback()
    return accounts


changes = st.fixed_dictionaries(
    {
        "threshold_b": st.integers(1, 30),
        "short_b": st.integers(0, 10),
        "resynced": st.lists(
            st.tuples(
                st.integers(0, 39),
                st.sampled_from(("answered", "missed", "dropped", "voicemail")),
                st.sampled_from((None, "101", "102")),
                st.integers(-90, 90),
            ),
            max_size=4,
        ),
        "late_rings": st.lists(st.tuples(st.integers(0, 39), st.sampled_from(("101", "102"))), max_size=3),
        "refresh": st.booleans(),
        "threshold_after": st.one_of(st.none(), st.integers(1, 30)),
    }
)


def apply_changes(world_orgs: tuple[int, int], anchor: datetime, change: dict) -> None:
    """B's own thresholds, the rollups rebuilt, then re-syncs and late events (refreshed or left stale)."""
    orgs = Organization.__table__
    with platform_bypass("test: the world moves on"):
        db.session.execute(
            update(orgs)
            .where(orgs.c.id == world_orgs[1])
            .values(service_level_threshold_seconds=change["threshold_b"], short_abandon_seconds=change["short_b"])
        )
        db.session.commit()
        rollups.rebuild(anchor - SPAN, anchor + SPAN)
        calls = Call.__table__
        stored = db.session.execute(select(calls).order_by(calls.c.id)).all()
        for index, status, agent, minutes in change["resynced"]:
            if index < len(stored):
                row = stored[index]
                db.session.execute(
                    update(calls)
                    .where(calls.c.id == row.id)
                    .values(
                        status=status, agent_extension=agent, started_at=row.started_at + timedelta(minutes=minutes)
                    )
                )
        for n, (index, extension) in enumerate(change["late_rings"]):
            if index < len(stored):
                row = stored[index]
                db.session.execute(
                    insert(CallEvent.__table__).values(
                        account_id=row.account_id,
                        guid=f"late-{n}",
                        call_external_id=row.external_id,
                        phone_number_id=row.phone_number_id,
                        event_type="AgentStopRinging",
                        extension=extension,
                        occurred_at=row.started_at + timedelta(seconds=30),
                        call_started_at=row.started_at,
                        raw={},
                    )
                )
        if change["refresh"]:
            rollups.refresh()
            assert not db.session.scalar(select(func.count()).select_from(RollupDirty)), "a refresh clears its marks"
        if change["threshold_after"] is not None:  # a setting changed after its hours were rolled up
            db.session.execute(
                update(orgs)
                .where(orgs.c.id == world_orgs[0])
                .values(service_level_threshold_seconds=change["threshold_after"])
            )
        db.session.commit()


def check_scenario(scenario: dict, change: dict) -> None:
    seen: list[int] = []

    def check(org_id, window, filters, bucket):
        if not seen:
            with platform_bypass("test"):
                orgs = tuple(db.session.scalars(select(Organization.id).order_by(Organization.id)))
                db.session.rollback()
            apply_changes((orgs[0], orgs[1]), window.start, change)
        seen.append(org_id)
        assert_engine_equals_rows(org_id, window, filters, bucket)

    run_scenario(scenario, check=check)


@settings(PROPERTY, max_examples=8)
@given(scenario=scenarios(), change=changes)
def test_every_figure_through_rollups_equals_the_figure_from_rows(ctx, scenario, change):
    check_scenario(scenario, change)


@settings(PROPERTY, max_examples=5)
@given(scenario=scenarios(), change=changes)
def test_every_figure_through_rollups_equals_the_figure_from_rows_on_the_embedded_sqlite(sqlite_app, scenario, change):
    check_scenario(scenario, change)


@pytest.fixture
def sqlite_app(tmp_path):
    app = create_app(app_config(SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'vsync.db'}", REDIS_URL=None))
    with app.app_context():
        upgrade()
        yield app
        db.session.remove()
        db.engine.dispose()


# Examples


NY_DAY = date(2026, 7, 1)
UTC_ZONE = ZoneInfo("UTC")
T = datetime(2026, 7, 1, 15, tzinfo=UTC)


@pytest.fixture
def world(ctx) -> World:
    return build_world("America/New_York", "UTC", moved_at=datetime(2026, 7, 1, 15, 30, tzinfo=UTC))


def stored_rollups() -> list[tuple]:
    table = CallRollup.__table__
    with platform_bypass("test"):
        rows = [
            tuple(value for key, value in row._mapping.items() if key != "id")
            for row in db.session.execute(select(table))
        ]
        db.session.rollback()
    return sorted(rows, key=repr)


def some_traffic(world: World) -> None:
    calls = [
        call_row(world, n, number=n % 3, started_at=T + timedelta(minutes=17 * n), agent=("101", "102", None)[n % 3])
        for n in range(12)
    ]
    add_calls(calls, [event_row(world, calls[0], 1, "IncomingCallStopRinging", T, "102")])


def day_summary(org_id: int) -> dict:
    with tenant(org_id):
        return metrics.summary(db.session.get(Organization, org_id), Window.local_days(NY, NY_DAY, NY_DAY))


def test_rebuild_leaves_consistent_rollups_unchanged_and_repairs_damaged_ones(world, runner):
    some_traffic(world)
    with platform_bypass("test"):
        assert rollups.check(T - SPAN, T + SPAN).stale > 0, "bulk writes leave their hours stale"
        rollups.rebuild(T - SPAN, T + SPAN)
        assert db.session.scalar(select(func.count()).select_from(RollupDirty)) == 0
    before = stored_rollups()
    assert before
    with platform_bypass("test"):
        assert rollups.check(T - SPAN, T + SPAN).consistent
        rollups.rebuild(T - SPAN, T + SPAN)
    assert stored_rollups() == before
    right = day_summary(world.a)

    table = CallRollup.__table__
    with platform_bypass("test: damage"):
        first, second = db.session.scalars(select(table.c.id).order_by(table.c.id).limit(2)).all()
        db.session.execute(update(table).where(table.c.id == first).values(calls=table.c.calls + 5))
        db.session.execute(delete(table).where(table.c.id == second))
        db.session.commit()
        report = rollups.check(T - SPAN, T + SPAN)
    assert not report.consistent and report.differing
    assert day_summary(world.a) != right, "whole settled hours come from the rollups"
    window = ["--from", isoformat_z(T - SPAN), "--to", isoformat_z(T + SPAN)]
    checked = runner.invoke(args=["rollups", "check", *window])
    assert checked.exit_code == 1 and "2 differ" in checked.output, checked.output
    rebuilt = runner.invoke(args=["rollups", "rebuild", *window, "--org", "alpha"])
    assert rebuilt.exit_code == 0, rebuilt.output
    assert runner.invoke(args=["rollups", "check", *window]).exit_code == 0
    assert stored_rollups() == before
    assert day_summary(world.a) == right


OCTOBER_31 = datetime(2026, 10, 31, tzinfo=UTC)


def test_whole_utc_days_come_from_day_rows_and_agree_with_rows_across_a_move_and_dst(world):
    check_day_rows(world)


def test_whole_utc_days_come_from_day_rows_on_the_embedded_sqlite(sqlite_app):
    check_day_rows(build_world("America/New_York", "UTC", moved_at=datetime(2026, 7, 1, 15, 30, tzinfo=UTC)))


def check_day_rows(world: World) -> None:
    """Calls every 37 minutes for a week around the number's move and for four days around the end of
    DST in New York, some answered late, some missed after ringing agents: every figure over whole
    local days, for both orgs and their agents, through day rows equals rows alone; and the day rows
    are what is read (a damaged one shows)."""
    statuses = ("answered", "missed", "answered", "dropped", "voicemail")
    calls, events = [], []
    for first in (T - timedelta(days=3), datetime(2026, 10, 30, tzinfo=UTC)):
        for n in range(len(calls), len(calls) + 4 * 24 * 60 // 37):
            at = first + timedelta(minutes=37 * (n % (4 * 24 * 60 // 37)))
            status = statuses[n % 5]
            call = call_row(
                world,
                n,
                number=n % 4,
                direction=("inbound", "inbound", "outbound")[n % 3],
                status=status,
                started_at=at,
                answered_at=at + timedelta(seconds=n % 41) if status == "answered" else None,
                agent=("101", "102", None)[n % 3],
            )
            calls.append(call)
            if status != "answered":
                events += [
                    event_row(world, call, 2 * n, "AgentRinging", at, "102"),
                    event_row(world, call, 2 * n + 1, "AgentStopRinging", at + timedelta(seconds=n % 13), "102"),
                ]
    add_calls(calls, events)
    with platform_bypass("test"):
        rollups.rebuild(T - SPAN, datetime(2026, 11, 4, tzinfo=UTC))
        days = db.session.scalar(select(func.count()).select_from(CallRollup).where(CallRollup.grain == "day"))
        db.session.commit()
    assert days
    windows = [
        Window.local_days(NY, NY_DAY - timedelta(days=2), NY_DAY + timedelta(days=1)),
        Window.local_days(NY, date(2026, 10, 30), date(2026, 11, 2)),
        Window.local_days(UTC_ZONE, date(2026, 10, 30), date(2026, 11, 2)),
    ]
    for org_id in (world.a, world.b):
        for window in windows:
            for filters in (Filters(), Filters(agent="102"), Filters(direction="inbound"), Filters(number=NUMBERS[1])):
                for bucket in ("day", "hour"):
                    assert_engine_equals_rows(org_id, window, filters, bucket)

    def total() -> int:
        with tenant(world.a):
            return metrics.summary(db.session.get(Organization, world.a), windows[1])["total_calls"]

    right = total()
    table = CallRollup.__table__
    with platform_bypass("test: damage a day"):
        db.session.execute(
            update(table)
            .where(table.c.grain == "day", table.c.kind == "calls", table.c.hour_start == OCTOBER_31)
            .values(calls=table.c.calls + 1000)
        )
        db.session.commit()
        assert rollups.check(T - SPAN, datetime(2026, 11, 4, tzinfo=UTC)).differing
    assert total() >= right + 1000


def record(n: int, number: str, started_at: datetime, status: str, agent: str | None) -> CallRecord:
    return CallRecord(
        external_id=f"s{n}",
        business_number=number,
        direction="inbound",
        status=status,
        provider_status=status,
        from_number="+14155550123",
        to_number=number,
        started_at=started_at,
        duration_ms=30_000,
        ended_at=started_at + timedelta(seconds=30),
        agent_extension=agent,
        agent_name=None,
        recording_file_name=None,
        recording_uri=None,
        raw={"id": f"s{n}", "status": status, "agent": agent, "at": started_at.isoformat()},
    )


def test_the_syncs_writes_refresh_their_hours_in_the_same_transaction(world):
    integration, account = world.integrations[0], factories.account_of(world.integrations[0])
    first = [record(n, NUMBERS[n % 2], T + timedelta(minutes=13 * n), "answered", "101") for n in range(8)]
    again = [record(n, NUMBERS[n % 2], T + timedelta(minutes=13 * n + 70), "missed", "102") for n in range(0, 8, 3)]
    for page in (first, again):
        with tenant(world.a):
            write_calls(account, page, NumberBook(org_id=world.a, integration_id=integration, discover=False))
        db.session.commit()
        with platform_bypass("test"):
            assert db.session.scalar(select(func.count()).select_from(RollupDirty)) == 0
            assert rollups.check(T - SPAN, T + SPAN).consistent
            db.session.rollback()
        window = Window.local_days(NY, NY_DAY, NY_DAY)
        assert_engine_equals_rows(world.a, window, Filters(), "hour")
    with tenant(world.a):
        summary = metrics.summary(db.session.get(Organization, world.a), Window.local_days(NY, NY_DAY, NY_DAY))
    assert summary["total_calls"] == 8 and summary["missed_calls"] == 3
