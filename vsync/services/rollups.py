"""Exact rollups of calls by hour and by day: made as calls and events are written, rebuilt and checked on demand.

What is rolled up
-----------------
Per phone number and UTC hour (`vsync.models.CallRollup`): the calls of each direction, the calls of
each direction and agent, and the StopRinging events with an extension (the agents' missed rings) by
their call's direction and agent and their own account and extension; as columns, the status
counts, talk, answer waits, ring times, and the waits at or under (ring times under) each threshold
of the organisations with a period on the number. Those are all the KPI engine splits by, so every
figure of `vsync.metrics` adds up from them (the engine decides which hours may, see there). Each
UTC day's hour rows are summed again into `day` rows with the same keys and thresholds, so a year's
question reads a few hundred rows per number instead of thousands. An org
whose threshold has no count (set or changed, or the org given the number, after the hour was rolled
up) gets its figures from rows until `rebuild` runs again for those hours.

When
----
In the writing transaction. Triggers mark every (number, hour) a write to `calls` or `call_events`
touches as stale (`rollup_dirty`, whoever the writer is), and the writers (the sync's `write_calls`,
the webhook processing's `write_call_event`) call `refresh()` before they commit: it recomputes
exactly the hours their transaction made stale, from the rows, under a per-number advisory lock
(PostgreSQL), then the days holding those hours from their hour rows, and clears their marks. So a
call is in every figure the moment it is committed (well within the 5 s asked), and no hour's rollup
(nor its day's) is ever trusted while a mark names it: the engine reads a marked hour's rows.
Recomputing an hour from rows rather than adding and subtracting deltas keeps the maxima (longest
wait) exact when a re-synced call moves, changes status or loses its agent, and makes a repeated
refresh harmless. Same transaction rather than a job: the rollup can never lag or
disagree with what a reader sees, and the cost is the hours one page touches (measured in the README).

Writes that do not call `refresh()` (bulk loads, a manual fix) leave their marks; those hours read
rows until `rebuild` (or a later refresh of the same hour) recomputes them.

Operations
----------
`rebuild(start, end, org_id)` recomputes the window's whole UTC days, hours and days (every number,
or the org's), from rows and clears their marks; `check(...)` recomputes them in memory and reports
the hours and days whose stored rollups differ. `flask rollups rebuild` and `flask rollups check` call them.

This is a reviewed module (see `vsync.tenancy`): it reads and writes every organisation's rows of a
number on the session's connection, because a rollup is the number's, not one org's.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import Integer, Select, and_, case, delete, func, literal, null, or_, select, text, true
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from vsync.extensions import db
from vsync.metrics import millis_between
from vsync.models import Call, CallEvent, CallRollup, NumberAssignment, Organization, RollupDirty
from vsync.models.rollups import AGENTS, BY_HOUR, CALLS, DAY, EDGES, HOUR, INEXACT, RINGS
from vsync.models.traffic import ANSWERED, DROPPED, MISSED, VOICEMAIL
from vsync.models.types import UtcDateTime
from vsync.tenancy import reviewed_sql

ONE_HOUR, ONE_DAY = timedelta(hours=1), timedelta(days=1)
LOCK_SPACE = 0x726F6C6C  # the advisory lock keys of numbers' rollups: (LOCK_SPACE, number id)
REBUILD_CHUNK = timedelta(days=7)
_ABANDONED = (MISSED, DROPPED)
_STATUS_COLUMNS = (ANSWERED, MISSED, DROPPED, VOICEMAIL)
_KEYS = (
    "phone_number_id",
    "hour_start",
    "kind",
    "direction",
    "account_id",
    "agent_extension",
    "ring_account_id",
    "ring_extension",
)
_EDGE_COLUMNS = tuple(f"{kind}_edge_{i}" for kind in ("answer", "ring") for i in range(1, EDGES + 1))
_SUMS = (
    "calls",
    "answered",
    "missed",
    "dropped",
    "voicemail",
    "talk_n",
    "talk_ms",
    "answer_n",
    "answer_ms",
    "ring_n",
    "abandon_n",
    *(f"{name}_{i}" for name in ("within", "short") for i in range(1, EDGES + 1)),
)
_MAXIMA = ("answer_max_ms", "ring_max_ms")
_VALUES = (*_SUMS, *_MAXIMA, *_EDGE_COLUMNS)

# (number id, hour start) -> the ranges [start, end) of whole hours to recompute
Ranges = dict[int, list[tuple[datetime, datetime]]]


def hour_floor(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def hour_ceil(at: datetime) -> datetime:
    floor = hour_floor(at)
    return floor if floor == at else floor + ONE_HOUR


def day_floor(at: datetime) -> datetime:
    return hour_floor(at).replace(hour=0)


def day_ceil(at: datetime) -> datetime:
    floor = day_floor(at)
    return floor if floor == at else floor + ONE_DAY


def ranges_of(keys: Iterable[tuple[int, datetime]], step: timedelta = ONE_HOUR) -> Ranges:
    """Merge (number, start) keys of hours (or days: `step`) into ranges of consecutive ones per number."""
    starts_of: dict[int, list[datetime]] = defaultdict(list)
    for number_id, start in set(keys):
        starts_of[number_id].append(start)
    ranges: Ranges = {}
    for number_id, starts in starts_of.items():
        merged: list[tuple[datetime, datetime]] = []
        for start in sorted(starts):
            if merged and merged[-1][1] == start:
                merged[-1] = (merged[-1][0], start + step)
            else:
                merged.append((start, start + step))
        ranges[number_id] = merged
    return ranges


def days_of(ranges: Ranges) -> Ranges:
    """The whole UTC days holding the ranges' hours."""
    return ranges_of(
        ((n, day) for n, spans in ranges.items() for a, b in spans for day in _steps(day_floor(a), b, ONE_DAY)),
        ONE_DAY,
    )


def _in_ranges(number_column, time_column, ranges: Ranges):
    return or_(
        *(
            and_(number_column == number_id, time_column >= start, time_column < end)
            for number_id, spans in ranges.items()
            for start, end in spans
        )
    )


def _run(statement):
    return db.session.connection().execute(reviewed_sql(statement))


def _is_postgresql() -> bool:
    return db.session.get_bind().dialect.name == "postgresql"


def _lock(ranges: Ranges) -> None:
    """Serialise refreshes of the same numbers until the transaction ends (PostgreSQL), taken in one
    order by everyone, so two writers never deadlock on each other's numbers. A refresh runs last in
    its transaction, so a number is held only while its hours are recomputed and committed."""
    if _is_postgresql() and ranges:
        db.session.connection().execute(
            text(
                "SELECT pg_advisory_xact_lock(:space, n) FROM "
                "(SELECT n FROM unnest(CAST(:numbers AS integer[])) AS k(n) ORDER BY n OFFSET 0) AS ordered"
            ),
            {"space": LOCK_SPACE, "numbers": sorted(ranges)},
        )


def _steps(start: datetime, end: datetime, step: timedelta = ONE_HOUR) -> Iterable[datetime]:
    while start < end:
        yield start
        start += step


# Computing rollups from rows


def _edges(number_ids: Iterable[int]) -> dict[int, tuple[list[int], list[int]]]:
    """Per number: the service-level and the short-abandon thresholds (ms) of the orgs with a period on it."""
    periods, orgs = NumberAssignment.__table__, Organization.__table__
    answer: dict[int, set[int]] = defaultdict(set)
    ring: dict[int, set[int]] = defaultdict(set)
    rows = _run(
        select(periods.c.phone_number_id, orgs.c.service_level_threshold_seconds, orgs.c.short_abandon_seconds)
        .join(orgs, orgs.c.id == periods.c.org_id)
        .where(periods.c.phone_number_id.in_(list(number_ids)))
    )
    for number_id, threshold, short in rows:
        answer[number_id].add(threshold * 1000)
        ring[number_id].add(short * 1000)
    return {n: (sorted(answer[n])[:EDGES], sorted(ring[n])[:EDGES]) for n in answer}


class _HourStart(FunctionElement):
    """The start of the UTC hour holding a timestamp, as a timestamp (stored as `hour_start` is)."""

    type = UtcDateTime()
    inherit_cache = True


@compiles(_HourStart, "postgresql")
def _hour_start_pg(element, compiler, **kw):
    (column,) = (compiler.process(c, **kw) for c in element.clauses)
    return f"(date_trunc('hour', {column} AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')"


@compiles(_HourStart, "sqlite")
def _hour_start_sqlite(element, compiler, **kw):
    (column,) = (compiler.process(c, **kw) for c in element.clauses)
    return f"strftime('%Y-%m-%d %H:00:00.000000', {column})"


class _DayStart(FunctionElement):
    """The start of the UTC day holding a timestamp, as a timestamp."""

    type = UtcDateTime()
    inherit_cache = True


@compiles(_DayStart, "postgresql")
def _day_start_pg(element, compiler, **kw):
    (column,) = (compiler.process(c, **kw) for c in element.clauses)
    return f"(date_trunc('day', {column} AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')"


@compiles(_DayStart, "sqlite")
def _day_start_sqlite(element, compiler, **kw):
    (column,) = (compiler.process(c, **kw) for c in element.clauses)
    return f"strftime('%Y-%m-%d 00:00:00.000000', {column})"


class _HourOfDay(FunctionElement):
    """The UTC hour of day (0-23) of a timestamp."""

    type = Integer()
    inherit_cache = True


@compiles(_HourOfDay, "postgresql")
def _hour_of_day_pg(element, compiler, **kw):
    (column,) = (compiler.process(c, **kw) for c in element.clauses)
    return f"CAST(extract(hour FROM {column} AT TIME ZONE 'UTC') AS integer)"


@compiles(_HourOfDay, "sqlite")
def _hour_of_day_sqlite(element, compiler, **kw):
    (column,) = (compiler.process(c, **kw) for c in element.clauses)
    return f"CAST(strftime('%H', {column}) AS INTEGER)"


def _statements(ranges: Ranges) -> list[Select]:
    """SELECTs of the ranges' rollup rows from rows, in `_KEYS + _VALUES` order: the calls per
    direction, the calls per direction and agent, the missed rings, and the inexact hours."""
    calls, events = Call.__table__, CallEvent.__table__
    edges = _edges(ranges)

    def edge(kind: int, i: int):
        """The number's i-th threshold of a kind (0: service level, 1: short abandon); None when no number has one."""
        by_number = {n: pair[kind][i] for n, pair in edges.items() if i < len(pair[kind])}
        return case(by_number, value=calls.c.phone_number_id, else_=null()) if by_number else None

    def count_at(kind: int, i: int, *where):
        limit = edge(kind, i)
        if limit is None:
            return literal(0)
        return func.count().filter(*where, (answer_ms <= limit) if kind == 0 else (calls.c.ring_ms < limit))

    def highest(kind: int, i: int):
        limit = edge(kind, i)
        return null() if limit is None else func.max(limit)

    answered = calls.c.status == ANSWERED
    abandoned = calls.c.status.in_(_ABANDONED)
    answer_ms = millis_between(calls.c.answered_at, calls.c.started_at)
    hour = _HourStart(calls.c.started_at)
    zero = literal(0)

    def total(value, *where):
        return func.coalesce(func.sum(value).filter(*where), 0)

    def values() -> list:
        return [
            func.count(),
            *(func.count().filter(calls.c.status == status) for status in _STATUS_COLUMNS),
            func.count(calls.c.duration_ms).filter(answered),
            total(calls.c.duration_ms, answered),
            func.count(answer_ms).filter(answered),
            total(answer_ms, answered),
            func.count(calls.c.ring_ms).filter(~answered),
            func.count(calls.c.ring_ms).filter(abandoned),
            *(count_at(0, i, answered) for i in range(EDGES)),
            *(count_at(1, i, abandoned) for i in range(EDGES)),
            func.max(answer_ms).filter(answered),
            func.max(calls.c.ring_ms).filter(~answered),
            *(highest(0, i) for i in range(EDGES)),
            *(highest(1, i) for i in range(EDGES)),
        ]

    in_ranges = _in_ranges(calls.c.phone_number_id, calls.c.started_at, ranges)
    by_direction = (
        select(
            calls.c.phone_number_id, hour, literal(CALLS), calls.c.direction, null(), null(), null(), null(), *values()
        )
        .where(in_ranges)
        .group_by(calls.c.phone_number_id, hour, calls.c.direction)
    )
    by_agent = (
        select(
            calls.c.phone_number_id,
            hour,
            literal(AGENTS),
            calls.c.direction,
            calls.c.account_id,
            calls.c.agent_extension,
            null(),
            null(),
            *values(),
        )
        .where(in_ranges, calls.c.agent_extension.is_not(None))
        .group_by(calls.c.phone_number_id, hour, calls.c.direction, calls.c.account_id, calls.c.agent_extension)
    )
    extension = func.nullif(events.c.extension, "")
    counted_only = [zero] * (len(_SUMS) - 1) + [null()] * (len(_VALUES) - len(_SUMS))
    of_calls = and_(events.c.account_id == calls.c.account_id, events.c.call_external_id == calls.c.external_id)
    stop_rings = [in_ranges, func.lower(events.c.event_type).like("%stopringing"), extension.is_not(None)]
    filed_with_call = and_(
        events.c.phone_number_id == calls.c.phone_number_id, _HourStart(events.c.call_started_at) == hour
    )
    rings = (
        select(
            calls.c.phone_number_id,
            hour,
            literal(RINGS),
            calls.c.direction,
            calls.c.account_id,
            calls.c.agent_extension,
            events.c.account_id,
            extension,
            func.count(),
            *counted_only,
        )
        .join(events, of_calls)
        .where(*stop_rings, filed_with_call)
        .group_by(
            calls.c.phone_number_id,
            hour,
            calls.c.direction,
            calls.c.account_id,
            calls.c.agent_extension,
            events.c.account_id,
            extension,
        )
    )
    # A missed ring filed under another number or hour than its call's: who sees it is not this
    # hour's question, so the hour is read from rows.
    inexact = (
        select(calls.c.phone_number_id, hour, literal(INEXACT), null(), null(), null(), null(), null(), func.count())
        .add_columns(*counted_only)
        .join(events, of_calls)
        .where(*stop_rings, ~filed_with_call)
        .group_by(calls.c.phone_number_id, hour)
    )
    return [by_direction, by_agent, rings, inexact]


def compute(ranges: Ranges) -> dict[tuple, dict]:
    """The rollup rows of the ranges' hours, from rows: key columns -> value columns."""
    groups: dict[tuple, dict] = {}
    if not ranges:
        return groups
    for statement in _statements(ranges):
        for row in _run(statement):
            groups[tuple(row[: len(_KEYS)])] = dict(zip(_VALUES, row[len(_KEYS) :], strict=True))
    return groups


def _day_key(key: tuple, values: dict) -> tuple:
    """The key of the day row an hour row is summed into: its keys on the day, and its thresholds."""
    return (key[0], day_floor(key[1]), *key[2:], *(values[c] for c in _EDGE_COLUMNS))


def _days(hours: dict[tuple, dict]) -> dict[tuple, dict]:
    """Day rows summed from hour rows (`compute` or `_stored` ones), keyed by `_day_key`."""
    days: dict[tuple, dict] = {}
    for key, values in hours.items():
        if key[2] == INEXACT:
            continue
        day = days.setdefault(_day_key(key, values), {**dict.fromkeys(_SUMS, 0), **dict.fromkeys((*_MAXIMA, *BY_HOUR))})
        for column in _SUMS:
            day[column] += values[column]
        at = BY_HOUR[key[1].hour]
        day[at] = (day[at] or 0) + values["calls"]
        for column in _MAXIMA:
            if values[column] is not None and (day[column] is None or values[column] > day[column]):
                day[column] = values[column]
    return days


def _stored(ranges: Ranges, grain: str = HOUR) -> dict[tuple, dict]:
    table = CallRollup.__table__
    stored: dict[tuple, dict] = {}
    columns = (*_VALUES, *BY_HOUR) if grain == DAY else _VALUES
    for row in _run(
        select(*(table.c[k] for k in _KEYS), *(table.c[v] for v in columns)).where(
            table.c.grain == grain, _in_ranges(table.c.phone_number_id, table.c.hour_start, ranges)
        )
    ):
        key, values = tuple(row[: len(_KEYS)]), dict(zip(columns, row[len(_KEYS) :], strict=True))
        if grain == DAY:
            stored[(*key, *(values.pop(c) for c in _EDGE_COLUMNS))] = values
        else:
            stored[key] = values
    return stored


def _write(ranges: Ranges) -> int:
    """Replace the ranges' rollups with what the rows say; returns the rows written."""
    table = CallRollup.__table__
    _run(delete(table).where(table.c.grain == HOUR, _in_ranges(table.c.phone_number_id, table.c.hour_start, ranges)))
    columns = [*_KEYS, *_VALUES]
    return sum(_run(table.insert().from_select(columns, statement)).rowcount for statement in _statements(ranges))


def _write_days(ranges: Ranges) -> int:
    """Replace the day rows of the UTC days holding the ranges' hours with the sums of those days'
    hour rows (written first: the hours of a day outside the ranges are as stored, or stale, and then
    the engine reads that day by the hour). Returns the rows written."""
    table = CallRollup.__table__
    days = days_of(ranges)
    in_days = _in_ranges(table.c.phone_number_id, table.c.hour_start, days)
    _run(delete(table).where(table.c.grain == DAY, in_days))
    keys = [
        table.c.phone_number_id,
        _DayStart(table.c.hour_start),
        *(table.c[k] for k in _KEYS[2:]),
        *(table.c[c] for c in _EDGE_COLUMNS),
    ]
    sums = (
        select(
            *keys,
            literal(DAY),
            *(func.sum(table.c[c]) for c in _SUMS),
            *(func.max(table.c[c]) for c in _MAXIMA),
            *(func.sum(table.c.calls).filter(_HourOfDay(table.c.hour_start) == hour) for hour in range(24)),
        )
        .where(table.c.grain == HOUR, table.c.kind != INEXACT, in_days)
        .group_by(*keys)
    )
    columns = [*_KEYS, *_EDGE_COLUMNS, "grain", *_SUMS, *_MAXIMA, *BY_HOUR]
    return _run(table.insert().from_select(columns, sums)).rowcount


# Maintenance as rows are written


def refresh() -> int:
    """Recompute the hours this transaction made stale (PostgreSQL; on SQLite, every stale hour: one
    writer at a time) and clear their marks. Writers call it before they commit. Returns the hours."""
    dirty = RollupDirty.__table__
    mine = dirty.c.txid == func.txid_current() if _is_postgresql() else true()
    keys = _run(select(dirty.c.phone_number_id, dirty.c.hour_start).where(mine).distinct()).all()
    if not keys:
        return 0
    ranges = ranges_of((n, hour_floor(h)) for n, h in keys)
    _lock(ranges)
    _run(delete(dirty).where(_in_ranges(dirty.c.phone_number_id, dirty.c.hour_start, ranges)))
    _write(ranges)
    _write_days(ranges)
    return len(keys)


# Operations


@dataclass
class RebuildResult:
    hours: int = 0
    rows: int = 0


@dataclass
class CheckResult:
    """`differing`: the (number, start) of hours, and of days, whose stored rollups differ from the rows."""

    hours: int = 0
    differing: list[tuple[int, datetime]] = field(default_factory=list)
    stale: int = 0

    @property
    def consistent(self) -> bool:
        return not self.differing


def _window_ranges(start: datetime, end: datetime, org_id: int | None) -> Ranges:
    """Every number's (or the org's numbers') whole UTC days from `start`'s day to `end`'s, in chunks."""
    periods = NumberAssignment.__table__
    numbers = select(periods.c.phone_number_id).distinct()
    if org_id is not None:
        numbers = numbers.where(periods.c.org_id == org_id)
    first, last = day_floor(start), day_ceil(end)
    ranges: Ranges = {}
    for number_id in sorted(_run(numbers).scalars()):
        spans, at = [], first
        while at < last:
            spans.append((at, min(at + REBUILD_CHUNK, last)))
            at += REBUILD_CHUNK
        ranges[number_id] = spans
    return ranges


def _chunks(ranges: Ranges) -> Iterable[Ranges]:
    """The ranges a week at a time, every number's together."""
    weeks: dict[datetime, Ranges] = defaultdict(dict)
    for number_id, spans in ranges.items():
        for span in spans:
            weeks[span[0]][number_id] = [span]
    for week in sorted(weeks):
        yield weeks[week]


def rebuild(start: datetime, end: datetime, org_id: int | None = None) -> RebuildResult:
    """Recompute from rows the rollups of every UTC day touching [start, end), its hours and the day
    (of the org's numbers, or all), committing a week at a time, and clear those hours' stale marks.
    Safe to run twice, or beside writers (each week's numbers are locked as `refresh` locks them)."""
    dirty = RollupDirty.__table__
    result = RebuildResult()
    for chunk in _chunks(_window_ranges(start, end, org_id)):
        _lock(chunk)
        _run(delete(dirty).where(_in_ranges(dirty.c.phone_number_id, dirty.c.hour_start, chunk)))
        result.rows += _write(chunk) + _write_days(chunk)
        result.hours += sum(1 for spans in chunk.values() for s, e in spans for _ in _steps(s, e))
        db.session.commit()
    return result


def check(start: datetime, end: datetime, org_id: int | None = None) -> CheckResult:
    """Compare the stored rollups of the days touching [start, end), hours and days, with what the rows
    say now. Hours marked stale, and the days holding them, are counted as stale and not compared."""
    dirty = RollupDirty.__table__
    result = CheckResult()
    for chunk in _chunks(_window_ranges(start, end, org_id)):
        expected, stored = compute(chunk), _stored(chunk)
        stale = {
            (n, hour_floor(h))
            for n, h in _run(
                select(dirty.c.phone_number_id, dirty.c.hour_start).where(
                    _in_ranges(dirty.c.phone_number_id, dirty.c.hour_start, chunk)
                )
            )
        }
        result.stale += len(stale)
        stale_days = {(n, day_floor(hour)) for n, hour in stale}
        result.differing += sorted(_differing(expected, stored) - stale)
        result.differing += sorted(_differing(_days(expected), _stored(chunk, DAY)) - stale_days)
        result.hours += sum(1 for spans in chunk.values() for s, e in spans for _ in _steps(s, e))
    return result


def _differing(expected: dict[tuple, dict], stored: dict[tuple, dict]) -> set[tuple[int, datetime]]:
    """The (number, start) of the rows present on one side only or with other values."""
    return {key[:2] for key in expected.keys() ^ stored.keys()} | {
        key[:2] for key in expected.keys() & stored.keys() if expected[key] != stored[key]
    }
