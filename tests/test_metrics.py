"""The KPI engine against a brute-force count of the calls the ORM shows the same tenant.

The property builds random traffic (numbers shared by two orgs, a number moving from one org to the
other at a random instant, calls of every direction and status, some with webhook events) and random
windows around DST changes, then checks every KPI, series bucket, agent row and number row against
plain Python over `select(Call)` (and `select(CallEvent)`) run in the same tenant scope. It runs on
PostgreSQL and once on the embedded SQLite.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from cryptography.fernet import Fernet
from flask_migrate import upgrade
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, insert, select, text, update

from tests import factories
from vsync import create_app, metrics
from vsync.errors import ValidationError
from vsync.extensions import db
from vsync.mightycall.webhook_events import event_kind, ring_ms
from vsync.models import Agent, Call, CallEvent, Integration, Organization, PhoneNumber
from vsync.query import PRESETS, Filters, Window
from vsync.tenancy import TenancyError, platform_bypass, tenant

NY = ZoneInfo("America/New_York")
NUMBERS = ("+12125550101", "+12125550102", "+12125550103", "+12125550104")
# Instants just before DST changes: New York springs forward on 2026-03-08 and falls back on
# 2026-11-01; Lord Howe (UTC+10:30 / +11, a 30-minute shift) on 2026-04-05 and 2026-10-04.
ANCHORS = (
    datetime(2026, 3, 8, 6, tzinfo=UTC),
    datetime(2026, 11, 1, 5, tzinfo=UTC),
    datetime(2026, 4, 4, 15, tzinfo=UTC),
    datetime(2026, 10, 3, 15, tzinfo=UTC),
)
ZONES = ("America/New_York", "UTC", "Australia/Lord_Howe", "Asia/Kolkata")
DIRECTIONS = ("inbound", "inbound", "outbound", "callback", "other")
STATUSES = ("answered", "answered", "missed", "dropped", "voicemail", "other")
EVENT_TYPES = (
    "IncomingCallRinging",
    "IncomingCallStopRinging",
    "IncomingCallCompleted",
    "IncomingCallConnected",
    "AgentRinging",
    "AgentStopRinging",
    "incomingcallcompleted",
    "IncomingCall",
)
EXTENSIONS = (None, "101", "102", "103")
DIRECTION_ORDER = ("inbound", "outbound", "callback", "other")


# The world: two orgs, four numbers, two integrations


@dataclass
class World:
    a: int
    b: int
    integrations: tuple[int, int]
    numbers: tuple[int, ...]


def build_world(tz_a: str, tz_b: str, *, moved_at: datetime, short_abandon: int = 5, threshold: int = 20) -> World:
    """Org A has number 0, shares number 1 with B, and number 2 until `moved_at`, when it moves to
    B; number 3 is B's alone."""
    a, b = factories.make_org("alpha", tz_a), factories.make_org("bravo", tz_b)
    numbers = tuple(factories.make_number(e164) for e164 in NUMBERS)
    since = datetime(2025, 1, 1, tzinfo=UTC)
    factories.assign("alpha", NUMBERS[0], since)
    factories.assign("alpha", NUMBERS[1], since)
    factories.assign("bravo", NUMBERS[1], since)
    factories.assign("alpha", NUMBERS[2], since, until=moved_at)
    factories.assign("bravo", NUMBERS[2], moved_at)
    factories.assign("bravo", NUMBERS[3], since)
    with platform_bypass("test setup"):
        db.session.execute(
            update(Organization).values(short_abandon_seconds=short_abandon, service_level_threshold_seconds=threshold)
        )
        db.session.commit()
    return World(a, b, (factories.make_integration(a), factories.make_integration(b)), numbers)


def add_calls(calls: list[dict], events: list[dict]) -> None:
    """Store the calls with the ring time the webhook processing derives from their events."""
    mine = defaultdict(list)
    for event in events:
        mine[(event["account_id"], event["call_external_id"])].append(
            (event_kind(event["event_type"]), event["occurred_at"])
        )
    for call in calls:
        call["ring_ms"] = ring_ms(mine[(call["account_id"], call["external_id"])])
    if calls:
        db.session.execute(insert(Call.__table__), calls)
    if events:
        db.session.execute(insert(CallEvent.__table__), events)
    db.session.commit()


def call_row(
    world: World,
    n: int,
    *,
    number: int = 0,
    integration: int = 0,
    direction: str = "inbound",
    status: str = "answered",
    started_at: datetime,
    duration_ms: int | None = 60_000,
    answered_at: datetime | None = None,
    agent: str | None = None,
) -> dict:
    return {
        "account_id": factories.account_of(world.integrations[integration]),
        "external_id": f"c{n}",
        "phone_number_id": world.numbers[number],
        "direction": direction,
        "status": status,
        "started_at": started_at,
        "answered_at": answered_at,
        "duration_ms": duration_ms,
        "agent_extension": agent,
        "raw": {},
    }


def event_row(world: World, call: dict, n: int, event_type: str, at: datetime, extension: str | None = None) -> dict:
    return {
        "account_id": call["account_id"],
        "guid": f"e{n}",
        "call_external_id": call["external_id"],
        "phone_number_id": call["phone_number_id"],
        "event_type": event_type,
        "extension": extension,
        "occurred_at": at,
        "call_started_at": call["started_at"],
        "raw": {},
    }


def empty_tables() -> None:
    db.session.remove()
    with db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            names = ", ".join(t.name for t in db.metadata.sorted_tables)
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in reversed(db.metadata.sorted_tables):
                conn.execute(delete(table))


# Brute force: plain Python over what the ORM shows the tenant


def _ms(later: datetime, earlier: datetime) -> int:
    return round((later - earlier) / timedelta(milliseconds=1))


def brute_force(org_id: int, window: Window, filters: Filters) -> dict:
    """Every figure of the engine, counted in Python over `select(Call)` in `tenant(org_id)`.

    A wait is the call's own, from all its events (the org may not see those after its assignment
    of the number ended); missed rings are the StopRinging events the org sees. An agent is an
    extension of one of the org's own accounts (those of its integrations).
    """
    with platform_bypass("every event of a call makes its ring time"):
        all_events = [
            (e.account_id, e.call_external_id, e.event_type, e.occurred_at)
            for e in db.session.scalars(select(CallEvent))
        ]
    with tenant(org_id):
        org = db.session.get(Organization, org_id)
        settings_ = (org.short_abandon_seconds, org.service_level_threshold_seconds, org.service_level_target)
        calls = db.session.scalars(
            select(Call).where(Call.started_at >= window.start, Call.started_at < window.end)
        ).all()
        events = db.session.scalars(select(CallEvent)).all()
        e164_of = dict(db.session.execute(select(PhoneNumber.id, PhoneNumber.e164)).all())
        own = set(db.session.scalars(select(Integration.account_id)))
        calls = [c for c in calls if _matches(c, filters, e164_of, own)]
        rows = [
            (
                c.started_at,
                c.direction,
                c.status,
                c.duration_ms,
                c.answered_at,
                c.agent_extension,
                c.phone_number_id,
                (c.account_id, c.external_id),
            )
            for c in calls
        ]
        events = [(e.account_id, e.call_external_id, e.event_type, e.occurred_at, e.extension) for e in events]
    by_call, rings_of = defaultdict(list), defaultdict(list)
    for account_id, external_id, event_type, at, extension in events:
        by_call[(account_id, external_id)].append((event_type.lower(), at, extension))
    for account_id, external_id, event_type, at in all_events:
        rings_of[(account_id, external_id)].append((event_type.lower(), at))
    short, threshold, target = settings_
    tz = window.tz

    def wait(row) -> int | None:
        started, direction, status, _, answered_at, _, _, key = row
        if direction != "inbound":
            return None
        if status == "answered":
            return _ms(answered_at, started) if answered_at else None
        mine = rings_of[key]
        rings = [at for kind, at in mine if kind.endswith("ringing") and not kind.endswith("stopringing")]
        stops = [at for kind, at in mine if kind.endswith("stopringing")]
        completes = [at for kind, at in mine if kind.endswith("completed")]
        end = max(stops) if stops else (min(completes) if completes else None)
        return _ms(end, min(rings)) if rings and end else None

    def kpis(subset) -> dict:
        inbound = [r for r in subset if r[1] == "inbound"]
        answered_in = [r for r in inbound if r[2] == "answered"]
        talked = [r for r in subset if r[2] == "answered"]
        durations = [r[3] for r in talked if r[3] is not None]
        waits = [(r, wait(r)) for r in inbound]
        sampled = [(r, w) for r, w in waits if w is not None]
        abandoned = [(r, w) for r, w in sampled if r[2] in ("missed", "dropped")]
        short_abandons = sum(1 for _, w in abandoned if w < short * 1000)
        denominator = len(sampled) - short_abandons
        asa = [w for r, w in sampled if r[2] == "answered"]
        return {
            "total_calls": len(subset),
            "inbound_calls": len(inbound),
            "outbound_calls": sum(1 for r in subset if r[1] in ("outbound", "callback")),
            "answered_calls": len(answered_in),
            "missed_calls": sum(1 for r in inbound if r[2] in ("missed", "dropped")),
            "dropped_calls": sum(1 for r in inbound if r[2] == "dropped"),
            "voicemail_calls": sum(1 for r in inbound if r[2] == "voicemail"),
            "answer_rate": len(answered_in) / len(inbound) if inbound else None,
            "abandon_rate": (sum(1 for _, w in abandoned if w >= short * 1000) / denominator if denominator else None),
            "abandon_sample_size": denominator,
            "short_abandon_seconds": short,
            "avg_talk_seconds": sum(durations) / len(durations) / 1000 if durations else None,
            "total_talk_seconds": sum(durations) / 1000 if durations else (None if talked else 0.0),
            "avg_speed_of_answer_seconds": sum(asa) / len(asa) / 1000 if asa else None,
            "asa_sample_size": len(asa),
            "service_level": (sum(1 for w in asa if w <= threshold * 1000) / denominator if denominator else None),
            "service_level_target": target,
            "service_level_threshold_seconds": threshold,
            "service_level_sample_size": denominator,
            "longest_wait_seconds": max(w for _, w in sampled) / 1000 if sampled else None,
        }

    hours = Counter(r[0].astimezone(tz).hour for r in rows if r[1] == "inbound")
    busiest = min(hours, key=lambda h: (-hours[h], h)) if hours else None

    keys = {call_key: set() for call_key in (r[7] for r in rows)}
    rings_by_ext = Counter(
        ext
        for (account, x), mine in by_call.items()
        if (account, x) in keys and account in own
        for kind, _, ext in mine
        if kind.endswith("stopringing") and ext
    )
    agents = {}
    for ext in sorted({r[5] for r in rows if r[5] and r[7][0] in own} | set(rings_by_ext)):
        k = kpis([r for r in rows if r[5] == ext and r[7][0] in own])
        agents[ext] = {
            "extension": ext,
            "display_name": None,
            "calls_handled": k["total_calls"],
            "inbound_calls": k["inbound_calls"],
            "outbound_calls": k["outbound_calls"],
            "answered_calls": k["answered_calls"],
            "missed_rings": rings_by_ext[ext],
            "total_talk_seconds": k["total_talk_seconds"],
            "avg_talk_seconds": k["avg_talk_seconds"],
        }
    numbers = {}
    for number_id in {r[6] for r in rows}:
        k = kpis([r for r in rows if r[6] == number_id])
        numbers[e164_of[number_id]] = {
            "phone_number_id": number_id,
            "e164": e164_of[number_id],
            "label": None,
            **{
                name: k[name]
                for name in (
                    "total_calls",
                    "inbound_calls",
                    "outbound_calls",
                    "answered_calls",
                    "missed_calls",
                    "voicemail_calls",
                    "answer_rate",
                    "total_talk_seconds",
                )
            },
        }

    def only(figures: dict, names: tuple[str, ...]) -> dict:
        return {name: figures[name] for name in names}

    directions = [
        {"direction": d, **only(kpis(calls), ("total_calls", "avg_talk_seconds", "total_talk_seconds"))}
        for d in DIRECTION_ORDER
        if (calls := [r for r in rows if r[1] == d])
    ]
    cells = defaultdict(list)
    for r in rows:
        local = r[0].astimezone(tz)
        cells[(local.weekday(), local.hour)].append(r)
    heatmap = [
        {"weekday": d, "hour": h, **only(kpis(cells[(d, h)]), ("inbound_calls", "answered_calls", "missed_calls"))}
        for d in range(7)
        for h in range(24)
    ]

    def outbound_work(subset) -> dict:
        placed = [r for r in subset if r[1] in ("outbound", "callback")]
        connected = [r for r in placed if r[2] == "answered"]
        durations = [r[3] for r in connected if r[3] is not None]
        return {
            "outbound_calls": len(placed),
            "connected_calls": len(connected),
            "connect_rate": len(connected) / len(placed) if placed else None,
            "outbound_avg_talk_seconds": sum(durations) / len(durations) / 1000 if durations else None,
            "outbound_talk_seconds": sum(durations) / 1000 if durations else (None if connected else 0.0),
        }

    callers = sorted({r[5] for r in rows if r[5] and r[7][0] in own and r[1] in ("outbound", "callback")})
    outbound = {
        "totals": outbound_work(rows),
        "agents": [
            {
                "extension": ext,
                "display_name": None,
                **outbound_work([r for r in rows if r[5] == ext and r[7][0] in own]),
            }
            for ext in callers
        ],
    }
    return {
        "summary": {**kpis(rows), "busiest_hour": busiest},
        "rows": rows,
        "kpis": kpis,
        "agents": [agents[e] for e in sorted(agents)],
        "numbers": [numbers[e] for e in sorted(numbers)],
        "directions": directions,
        "heatmap": heatmap,
        "outbound": outbound,
    }


def _matches(call: Call, filters: Filters, e164_of: dict[int, str], own: set[int]) -> bool:
    if isinstance(filters.number, str) and e164_of.get(call.phone_number_id) != filters.number:
        return False
    if isinstance(filters.number, int) and call.phone_number_id != filters.number:
        return False
    if filters.agent is not None and (call.agent_extension != filters.agent or call.account_id not in own):
        return False
    wanted = {"inbound": {"inbound"}, "outbound": {"outbound", "callback"}, "callback": {"callback"}}
    return filters.direction is None or call.direction in wanted[filters.direction]


def assert_same(actual, expected, path: str = "") -> None:
    """Equal, with floats equal up to the last bits (the engine divides integer sums of ms)."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict) and actual.keys() == expected.keys(), f"{path}: {actual} != {expected}"
        for key in expected:
            assert_same(actual[key], expected[key], f"{path}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), f"{path}: {actual} != {expected}"
        for i, (a, e) in enumerate(zip(actual, expected, strict=False)):
            assert_same(a, e, f"{path}[{i}]")
    elif isinstance(expected, float):
        assert isinstance(actual, float) and math.isclose(actual, expected, rel_tol=1e-12), (
            f"{path}: {actual} != {expected}"
        )
    else:
        assert actual == expected and type(actual) is type(expected), f"{path}: {actual!r} != {expected!r}"


def bucket_key(instant: datetime, bucket: str, tz: ZoneInfo):
    """Which local period a call starting at `instant` falls in, worked out from its local time."""
    local = instant.astimezone(tz)
    if bucket == "hour":
        # The last instant, at or before this one, at which the local clock read hh:00.
        t = instant.replace(second=0, microsecond=0)
        while t.astimezone(tz).minute:
            t -= timedelta(minutes=1)
        return t
    if bucket == "day":
        return local.date()
    if bucket == "week":
        return local.date() - timedelta(days=local.weekday())
    return local.year, local.month


def check_engine(org_id: int, window: Window, filters: Filters, bucket: str) -> None:
    expected = brute_force(org_id, window, filters)
    with tenant(org_id):
        org = db.session.get(Organization, org_id)
        summary = metrics.summary(org, window, filters)
        series = metrics.series(org, window, bucket, filters)
        agents = metrics.by_agent(org, window, filters)
        numbers = metrics.by_number(org, window, filters)
        directions = metrics.by_direction(org, window, filters)
        heatmap = metrics.heatmap(org, window, filters)
        outbound = metrics.outbound(org, window, filters)
    assert_same(summary, expected["summary"], "summary")
    assert_same(agents, expected["agents"], "agents")
    assert_same(numbers, expected["numbers"], "numbers")
    assert_same(directions, expected["directions"], "directions")
    assert_same(heatmap, expected["heatmap"], "heatmap")
    assert_same(outbound, expected["outbound"], "outbound")

    tz = window.tz
    keys = [bucket_key(b["start"], bucket, tz) for b in series]
    assert len(set(keys)) == len(keys), "each local period once"
    assert series[0]["start"] <= window.start < series[0]["end"]
    assert series[-1]["start"] < window.end <= series[-1]["end"]
    assert all(b["end"] == nxt["start"] for b, nxt in itertools.pairwise(series)), "zero-filled, no gaps"
    assert all(b["start_local"] == b["start"].astimezone(tz) for b in series)
    rows_by_key = defaultdict(list)
    for row in expected["rows"]:
        rows_by_key[bucket_key(row[0], bucket, tz)].append(row)
    assert set(rows_by_key) <= set(keys)
    for key, b in zip(keys, series, strict=False):
        figures = {k: v for k, v in b.items() if k not in ("start", "end", "start_local")}
        assert_same(figures, expected["kpis"](rows_by_key.get(key, [])), f"series {key}")


# The property


def ring_lifecycle(ring_at_ms: int, ring_seconds: int, end_type: str, extension: str | None) -> list[tuple]:
    """Ringing, then an end after whole seconds, so short-abandon and threshold edges are hit exactly."""
    return [("IncomingCallRinging", ring_at_ms, extension), (end_type, ring_at_ms + ring_seconds * 1000, extension)]


@st.composite
def scenarios(draw):
    anchor = draw(st.sampled_from(ANCHORS))
    span_ms = 3 * 86_400_000
    instant = st.integers(-span_ms, span_ms).map(lambda ms: anchor + timedelta(milliseconds=ms))
    # Waits and ring times land on whole seconds often, so thresholds are hit exactly.
    offset_ms = st.one_of(st.integers(0, 40).map(lambda s: s * 1000), st.integers(-2_000, 120_000))
    calls = draw(
        st.lists(
            st.fixed_dictionaries(
                {
                    "number": st.integers(0, 3),
                    "integration": st.integers(0, 1),
                    "direction": st.sampled_from(DIRECTIONS),
                    "status": st.sampled_from(STATUSES),
                    "started_at": instant,
                    "duration_ms": st.one_of(st.none(), st.integers(0, 3_600_000)),
                    "answered_after_ms": st.one_of(st.none(), offset_ms),
                    "agent": st.sampled_from(EXTENSIONS),
                    "events": st.one_of(
                        st.lists(
                            st.tuples(st.sampled_from(EVENT_TYPES), offset_ms, st.sampled_from(EXTENSIONS)), max_size=4
                        ),
                        st.builds(
                            ring_lifecycle,
                            st.integers(0, 3_000),
                            st.integers(0, 12),
                            st.sampled_from(("IncomingCallStopRinging", "IncomingCallCompleted")),
                            st.sampled_from(EXTENSIONS),
                        ),
                    ),
                }
            ),
            max_size=40,
        )
    )
    if draw(st.booleans()):
        first = (anchor + timedelta(days=draw(st.integers(-3, 2)))).date()
        window = ("days", first, first + timedelta(days=draw(st.integers(0, 4))))
    else:
        start = draw(instant)
        window = ("instants", start, start + timedelta(minutes=draw(st.integers(1, 5 * 24 * 60))))
    filters = draw(
        st.sampled_from(
            [
                {},
                {},
                {"number": "e164"},
                {"number": "id"},
                {"agent": "101"},
                {"agent": "102"},
                {"direction": "inbound"},
                {"direction": "outbound"},
                {"direction": "callback"},
            ]
        )
    )
    return {
        "tz": draw(st.sampled_from(ZONES)),
        "tz_b": draw(st.sampled_from(ZONES)),
        "moved_at": draw(instant),
        "short_abandon": draw(st.integers(0, 10)),
        "threshold": draw(st.integers(1, 30)),
        "calls": calls,
        "window": window,
        "filters": filters,
        "filter_number": draw(st.integers(0, 3)),
        "bucket": draw(st.sampled_from(metrics.BUCKETS)),
    }


def run_scenario(scenario: dict, check=None) -> None:
    """Build the scenario's world and traffic, then `check(org_id, window, filters, bucket)` each org
    (default: the engine against the brute force)."""
    check = check or check_engine
    empty_tables()
    world = build_world(
        scenario["tz"],
        scenario["tz_b"],
        moved_at=scenario["moved_at"],
        short_abandon=scenario["short_abandon"],
        threshold=scenario["threshold"],
    )
    calls, events = [], []
    for n, spec in enumerate(scenario["calls"]):
        start = spec["started_at"]
        answered = (
            start + timedelta(milliseconds=spec["answered_after_ms"]) if spec["answered_after_ms"] is not None else None
        )
        call = call_row(
            world,
            n,
            number=spec["number"],
            integration=spec["integration"],
            direction=spec["direction"],
            status=spec["status"],
            started_at=start,
            duration_ms=spec["duration_ms"],
            answered_at=answered,
            agent=spec["agent"],
        )
        calls.append(call)
        events += [
            event_row(world, call, len(events) + i, kind, start + timedelta(milliseconds=ms), ext)
            for i, (kind, ms, ext) in enumerate(spec["events"])
        ]
    add_calls(calls, events)

    number = world.numbers[scenario["filter_number"]]
    raw = dict(scenario["filters"])
    if raw.get("number") == "e164":
        raw["number"] = NUMBERS[scenario["filter_number"]]
    elif raw.get("number") == "id":
        raw["number"] = number
    filters = Filters(**raw)
    for org_id, tz_name in ((world.a, scenario["tz"]), (world.b, scenario["tz_b"])):
        tz = ZoneInfo(tz_name)
        kind, first, last = scenario["window"]
        window = Window.local_days(tz, first, last) if kind == "days" else Window(first, last, tz)
        check(org_id, window, filters, scenario["bucket"])


PROPERTY = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)


@PROPERTY
@given(scenario=scenarios())
def test_every_figure_equals_a_brute_force_count_of_the_tenants_calls(ctx, scenario):
    run_scenario(scenario)


@pytest.fixture
def sqlite_app(tmp_path):
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'vsync.db'}",
            "REDIS_URL": None,
            "SECRET_KEY": "embedded-test",
            "VSYNC_ENCRYPTION_KEYS": [Fernet.generate_key().decode()],
        }
    )
    with app.app_context():
        upgrade()
        yield app
        db.session.remove()
        db.engine.dispose()


@settings(PROPERTY, max_examples=15)
@given(scenario=scenarios())
def test_every_figure_equals_a_brute_force_count_on_the_embedded_sqlite(sqlite_app, scenario):
    run_scenario(scenario)


# Examples


@pytest.fixture
def world(ctx) -> World:
    return build_world("America/New_York", "UTC", moved_at=datetime(2026, 6, 1, tzinfo=UTC))


def org(org_id: int) -> Organization:
    return db.session.get(Organization, org_id)


def day(first: date, last: date | None = None) -> Window:
    return Window.local_days(NY, first, last or first)


def test_answer_rate_is_none_without_inbound_calls_and_talk_is_a_real_zero(world):
    t = datetime(2026, 7, 1, 15, tzinfo=UTC)
    add_calls([call_row(world, 1, direction="outbound", status="missed", started_at=t)], [])
    with tenant(world.a):
        figures = metrics.summary(org(world.a), day(date(2026, 7, 1)))
    assert figures["inbound_calls"] == 0 and figures["outbound_calls"] == 1
    assert figures["answer_rate"] is None and figures["busiest_hour"] is None
    assert figures["total_talk_seconds"] == 0.0 and figures["avg_talk_seconds"] is None
    assert figures["avg_speed_of_answer_seconds"] is None and figures["asa_sample_size"] == 0
    assert figures["service_level"] is None and figures["abandon_rate"] is None
    assert figures["longest_wait_seconds"] is None


def test_wait_based_kpis_are_none_for_calls_synced_without_events(world):
    t = datetime(2026, 7, 1, 15, tzinfo=UTC)
    add_calls([call_row(world, 1, started_at=t), call_row(world, 2, status="missed", started_at=t)], [])
    with tenant(world.a):
        figures = metrics.summary(org(world.a), day(date(2026, 7, 1)))
    assert figures["answer_rate"] == 0.5 and figures["answered_calls"] == 1 and figures["missed_calls"] == 1
    assert figures["abandon_rate"] is None and figures["service_level"] is None
    assert figures["avg_speed_of_answer_seconds"] is None and figures["longest_wait_seconds"] is None


def test_short_abandons_leave_abandon_rate_and_service_level_denominators(world):
    t = datetime(2026, 7, 1, 15, tzinfo=UTC)
    calls = [
        call_row(world, 1, started_at=t, answered_at=t + timedelta(seconds=12)),  # within 20 s
        call_row(world, 2, started_at=t, answered_at=t + timedelta(seconds=25)),  # answered late
        call_row(world, 3, status="missed", started_at=t),  # rang 3 s: short
        call_row(world, 4, status="dropped", started_at=t),  # rang 5 s: abandon
        call_row(world, 5, status="voicemail", started_at=t),
    ]  # rang 21 s
    events = [
        event_row(world, calls[2], 1, "IncomingCallRinging", t + timedelta(seconds=1)),
        event_row(world, calls[2], 2, "IncomingCallCompleted", t + timedelta(seconds=4)),
        event_row(world, calls[3], 3, "IncomingCallRinging", t + timedelta(seconds=1)),
        event_row(world, calls[3], 4, "IncomingCallStopRinging", t + timedelta(seconds=6), "101"),
        event_row(world, calls[4], 5, "IncomingCallRinging", t + timedelta(seconds=1)),
        event_row(world, calls[4], 6, "IncomingCallStopRinging", t + timedelta(seconds=22), "102"),
        event_row(world, calls[4], 7, "IncomingCallCompleted", t + timedelta(seconds=75)),
    ]
    add_calls(calls, events)
    with tenant(world.a):
        figures = metrics.summary(org(world.a), day(date(2026, 7, 1)))
    assert figures["abandon_sample_size"] == figures["service_level_sample_size"] == 4
    assert figures["abandon_rate"] == 1 / 4
    assert figures["service_level"] == 1 / 4
    assert (figures["service_level_target"], figures["service_level_threshold_seconds"]) == (0.8, 20)
    assert figures["avg_speed_of_answer_seconds"] == 18.5 and figures["asa_sample_size"] == 2
    assert figures["longest_wait_seconds"] == 25.0


def test_busiest_hour_is_the_orgs_local_hour(world):
    # 14:30 UTC is 10:30 in New York in July (UTC-4).
    t = datetime(2026, 7, 1, 14, 30, tzinfo=UTC)
    add_calls(
        [call_row(world, n, started_at=t + timedelta(minutes=n)) for n in range(3)]
        + [call_row(world, 9, started_at=t + timedelta(hours=5))],
        [],
    )
    with tenant(world.a):
        assert metrics.summary(org(world.a), day(date(2026, 7, 1)))["busiest_hour"] == 10


@pytest.mark.parametrize(("first", "hours"), [(date(2026, 3, 8), 23), (date(2026, 11, 1), 25)])
def test_daily_series_has_the_dst_days_real_length(world, first, hours):
    local_midnight = datetime.combine(first, datetime.min.time(), NY)
    calls = [call_row(world, n, started_at=(local_midnight + timedelta(hours=n)).astimezone(UTC)) for n in range(3)]
    add_calls(calls, [])
    with tenant(world.a):
        buckets = metrics.series(org(world.a), day(first - timedelta(days=1), first), "day")
        hourly = metrics.series(org(world.a), day(first), "hour")
    assert [b["start_local"].date() for b in buckets] == [first - timedelta(days=1), first]
    assert buckets[1]["end"] - buckets[1]["start"] == timedelta(hours=hours)
    assert [b["total_calls"] for b in buckets] == [0, 3]
    assert len(hourly) == hours
    assert [b["start_local"].hour for b in hourly[:4]] == ([0, 1, 3, 4] if hours == 23 else [0, 1, 1, 2])


def test_weekly_and_monthly_buckets_start_on_local_mondays_and_firsts(world):
    with tenant(world.a):
        weeks = metrics.series(org(world.a), day(date(2026, 3, 4), date(2026, 3, 18)), "week")
        months = metrics.series(org(world.a), day(date(2026, 2, 20), date(2026, 4, 2)), "month")
    assert [b["start_local"].date() for b in weeks] == [date(2026, 3, 2), date(2026, 3, 9), date(2026, 3, 16)]
    assert [b["start_local"].date() for b in months] == [date(2026, 2, 1), date(2026, 3, 1), date(2026, 4, 1)]
    assert all(b["start_local"].hour == 0 and b["total_calls"] == 0 for b in weeks + months)


def test_org_a_never_sees_org_bs_calls_in_any_figure(world):
    t = datetime(2026, 7, 1, 15, tzinfo=UTC)
    b_only = [call_row(world, n, number=3, integration=1, agent="101", started_at=t) for n in range(4)]
    moved = call_row(world, 10, number=2, started_at=datetime(2026, 6, 1, 0, 0, 1, tzinfo=UTC), agent="101")
    add_calls([*b_only, moved], [event_row(world, b_only[0], 1, "IncomingCallStopRinging", t, "101")])
    window = Window.local_days(NY, date(2026, 5, 1), date(2026, 7, 31))
    with tenant(world.a):
        a = org(world.a)
        assert metrics.summary(a, window)["total_calls"] == 0
        assert all(b["total_calls"] == 0 for b in metrics.series(a, window, "month"))
        assert metrics.by_agent(a, window) == [] and metrics.by_number(a, window) == []
        assert metrics.summary(a, window, Filters(number=NUMBERS[3]))["total_calls"] == 0
    with tenant(world.b):
        assert metrics.summary(org(world.b), window)["total_calls"] == 5
        assert metrics.by_agent(org(world.b), window)[0]["missed_rings"] == 1


# Calls around DST changes (all on Sundays, weekday 6) and the heatmap cells (weekday, hour) they
# land in: New York falls back on 2026-11-01 (01:00-02:00 twice) and springs forward on 2026-03-08
# (02:00-03:00 never happens); London springs forward on 2026-03-29 and falls back on 2026-10-25.
DST_HEATMAPS = [
    ("America/New_York", date(2026, 11, 1), ("04:59", "05:30", "06:30"), {(6, 0): 1, (6, 1): 2}),
    ("America/New_York", date(2026, 3, 8), ("06:59", "07:00"), {(6, 1): 1, (6, 3): 1}),
    ("Europe/London", date(2026, 3, 29), ("00:30", "01:30"), {(6, 0): 1, (6, 2): 1}),
    ("Europe/London", date(2026, 10, 25), ("00:30", "01:30", "23:30"), {(6, 1): 2, (6, 23): 1}),
]


@pytest.mark.parametrize(("zone", "local_day", "utc_starts", "cells"), DST_HEATMAPS)
def test_the_heatmap_counts_a_call_in_the_local_weekday_and_hour_it_started_on_dst_days(
    ctx, zone, local_day, utc_starts, cells
):
    world = build_world(zone, "UTC", moved_at=datetime(2026, 6, 1, tzinfo=UTC))
    starts = [datetime.combine(local_day, datetime.strptime(t, "%H:%M").time(), UTC) for t in utc_starts]
    add_calls([call_row(world, n, started_at=start) for n, start in enumerate(starts)], [])
    with tenant(world.a):
        heatmap = metrics.heatmap(org(world.a), Window.local_days(ZoneInfo(zone), local_day, local_day))
    assert len(heatmap) == 7 * 24
    assert [(c["weekday"], c["hour"]) for c in heatmap] == [(d, h) for d in range(7) for h in range(24)]
    assert {(c["weekday"], c["hour"]): c["inbound_calls"] for c in heatmap if c["inbound_calls"]} == cells
    assert sum(c["answered_calls"] for c in heatmap) == len(starts)


def test_outbound_work_counts_attempts_connections_and_talk_per_agent(world):
    t = datetime(2026, 7, 1, 15, tzinfo=UTC)
    add_calls(
        [
            call_row(world, 1, direction="outbound", started_at=t, agent="101", duration_ms=30_000),
            call_row(world, 2, direction="callback", started_at=t, agent="101", duration_ms=90_000),
            call_row(world, 3, direction="outbound", status="missed", started_at=t, agent="101"),
            call_row(world, 4, direction="outbound", status="missed", started_at=t, agent="102"),
            call_row(world, 5, started_at=t, agent="102"),  # inbound: no outbound work
            call_row(world, 6, direction="outbound", number=3, integration=1, started_at=t, agent="101"),  # B's
        ],
        [],
    )
    with tenant(world.a):
        work = metrics.outbound(org(world.a), day(date(2026, 7, 1)))
        directions = metrics.by_direction(org(world.a), day(date(2026, 7, 1)))
    assert work["totals"] == {
        "outbound_calls": 4,
        "connected_calls": 2,
        "connect_rate": 0.5,
        "outbound_avg_talk_seconds": 60.0,
        "outbound_talk_seconds": 120.0,
    }
    assert [(a["extension"], a["outbound_calls"], a["connected_calls"], a["connect_rate"]) for a in work["agents"]] == [
        ("101", 3, 2, 2 / 3),
        ("102", 1, 0, 0.0),
    ]
    assert work["agents"][1]["outbound_avg_talk_seconds"] is None and work["agents"][1]["outbound_talk_seconds"] == 0.0
    assert [(d["direction"], d["total_calls"]) for d in directions] == [
        ("inbound", 1),
        ("outbound", 3),
        ("callback", 1),
    ]


def test_org_a_never_sees_org_bs_calls_in_its_heatmap_directions_or_outbound_work(world):
    t = datetime(2026, 7, 1, 15, tzinfo=UTC)
    add_calls(
        [call_row(world, n, number=3, integration=1, direction=d, started_at=t) for n, d in enumerate(DIRECTION_ORDER)]
        + [call_row(world, 9, number=1, started_at=t)],  # on the shared number: both orgs' call
        [],
    )
    window = day(date(2026, 7, 1))
    with tenant(world.a):
        a = org(world.a)
        assert sum(c["inbound_calls"] for c in metrics.heatmap(a, window)) == 1
        assert [(d["direction"], d["total_calls"]) for d in metrics.by_direction(a, window)] == [("inbound", 1)]
        assert metrics.outbound(a, window)["totals"]["outbound_calls"] == 0
    with tenant(world.b):
        b = org(world.b)
        assert sum(c["inbound_calls"] for c in metrics.heatmap(b, window)) == 2
        assert metrics.outbound(b, window)["totals"]["outbound_calls"] == 2


def test_presets_are_whole_local_days_relative_to_the_local_today():
    now = datetime(2026, 3, 1, 3, tzinfo=UTC)  # 22:00 on 28 February in New York
    first_last = {
        name: (w.start_local.date(), (w.end_local - timedelta(microseconds=1)).date())
        for name in PRESETS
        for w in [Window.preset(NY, name, now)]
    }
    feb = date(2026, 2, 28)
    assert first_last == {
        "today": (feb, feb),
        "yesterday": (date(2026, 2, 27), date(2026, 2, 27)),
        "last_7_days": (date(2026, 2, 22), feb),
        "last_30_days": (date(2026, 1, 30), feb),
        "this_month": (date(2026, 2, 1), feb),
        "last_month": (date(2026, 1, 1), date(2026, 1, 31)),
    }
    with pytest.raises(ValidationError) as refused:
        Window.preset(NY, "last_week", now)
    assert refused.value.details == {"range": refused.value.message}


def test_the_previous_period_has_the_same_local_days_and_is_cut_where_the_window_is_running():
    # Monday 9 March 2026 follows New York's 23-hour Sunday: the day before is still a whole local day.
    monday = Window.local_days(NY, date(2026, 3, 9), date(2026, 3, 9))
    later = datetime(2026, 4, 1, tzinfo=UTC)
    assert monday.previous(later) == Window.local_days(NY, date(2026, 3, 8), date(2026, 3, 8))
    assert monday.previous(later).end - monday.previous(later).start == timedelta(hours=23)
    week = Window.local_days(NY, date(2026, 3, 2), date(2026, 3, 8))
    assert week.previous(later) == Window.local_days(NY, date(2026, 2, 23), date(2026, 3, 1))
    running = monday.previous(datetime(2026, 3, 9, 14, 30, tzinfo=UTC))  # 10:30: the day before until 10:30
    assert (running.start_local.date(), running.end_local.time()) == (date(2026, 3, 8), time(10, 30))
    instants = Window(datetime(2026, 7, 1, 9, tzinfo=UTC), datetime(2026, 7, 1, 12, tzinfo=UTC), NY)
    assert instants.previous(later) == Window(datetime(2026, 7, 1, 6, tzinfo=UTC), instants.start, NY)


def test_agent_rows_carry_the_agents_name_and_missed_rings(world):
    t = datetime(2026, 7, 1, 15, tzinfo=UTC)
    calls = [
        call_row(world, 1, started_at=t, agent="101", duration_ms=30_000),
        call_row(world, 2, started_at=t, agent="101", duration_ms=90_000),
        call_row(world, 3, started_at=t, status="missed"),
    ]
    add_calls(
        calls,
        [
            event_row(world, calls[2], 1, "IncomingCallStopRinging", t, "102"),
            event_row(world, calls[0], 2, "IncomingCallStopRinging", t, "102"),
        ],
    )
    with platform_bypass("test setup"):
        db.session.add(
            Agent(account_id=factories.account_of(world.integrations[0]), extension="101", display_name="Ada")
        )
        db.session.commit()
    with tenant(world.a):
        rows = metrics.by_agent(org(world.a), day(date(2026, 7, 1)))
    assert [(r["extension"], r["display_name"], r["calls_handled"], r["missed_rings"]) for r in rows] == [
        ("101", "Ada", 2, 0),
        ("102", None, 0, 2),
    ]
    assert rows[0]["avg_talk_seconds"] == 60.0 and rows[0]["total_talk_seconds"] == 120.0


def test_metrics_refuse_to_run_outside_the_orgs_tenant_scope(world):
    window = day(date(2026, 7, 1))
    with tenant(world.b):
        a = org(world.b)
        a_id = world.a
    with pytest.raises(TenancyError), tenant(a_id):
        metrics.summary(a, window)
    with platform_bypass("test"):
        a = org(world.a)
        with pytest.raises(TenancyError):
            metrics.summary(a, window)


def test_windows_and_filters_refuse_bad_input():
    with pytest.raises(ValidationError):
        Window(datetime(2026, 7, 2, tzinfo=UTC), datetime(2026, 7, 1, tzinfo=UTC), NY)
    with pytest.raises(ValidationError):
        Window.parse(NY, "2026-07-02", "2026-07-01")
    with pytest.raises(ValidationError):
        Window.parse(NY, "2026-07-01T10:00:00", None)
    with pytest.raises(ValidationError):
        Filters(direction="sideways")
    with pytest.raises(ValidationError):
        Filters(number="12")
    with pytest.raises(ValidationError):
        Filters(agent=" ")


def test_window_parse_reads_local_dates_and_defaults_to_the_local_today():
    window = Window.parse(NY, "2026-11-01", "2026-11-01")
    assert (window.start, window.end) == (datetime(2026, 11, 1, 4, tzinfo=UTC), datetime(2026, 11, 2, 5, tzinfo=UTC))
    today = Window.parse(NY, now=datetime(2026, 7, 2, 2, tzinfo=UTC))
    assert today.start_local.date() == date(2026, 7, 1) and today.end - today.start == timedelta(hours=24)
    assert Window.parse(NY, "2026-07-01T10:00:00Z", "2026-07-01T12:00:00+01:00").end == datetime(
        2026, 7, 1, 11, tzinfo=UTC
    )


def test_for_display_rounds_rates_and_seconds_only():
    shown = metrics.for_display(
        {
            "answer_rate": 2 / 3,
            "avg_talk_seconds": 61.26,
            "total_calls": 7,
            "longest_wait_seconds": None,
            "start": datetime(2026, 7, 1, 4, tzinfo=UTC),
            "start_local": datetime(2026, 7, 1, 4, tzinfo=UTC).astimezone(NY),
            "rows": [{"service_level": 0.123456}],
        }
    )
    assert shown == {
        "answer_rate": 0.6667,
        "avg_talk_seconds": 61.3,
        "total_calls": 7,
        "longest_wait_seconds": None,
        "start": "2026-07-01T04:00:00Z",
        "start_local": "2026-07-01T00:00:00-04:00",
        "rows": [{"service_level": 0.1235}],
    }
