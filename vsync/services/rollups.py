"""Exact rollups of calls by hour and by day: made as calls and events are written, rebuilt and checked on demand.

What is rolled up
-----------------
Per phone number and UTC hour (`vsync.models.CallRollup`): the calls of each direction, the calls of
each direction and agent, and the StopRinging events with an extension (the agents' missed rings) by
their call's direction and agent and their own account and extension; as columns, the status
counts, talk, answer waits, ring times, and the waits at or under (ring times under) each threshold
of the organisations with a period on the number. Those are all the KPI engine splits by, so every
figure of `vsync.metrics` adds up from them (the engine decides which hours may, see there). Each
UTC day's hour rows are summed again into `day` rows with the same keys and thresholds, and the day's
calls per UTC hour, so a year's question reads a few hundred rows per number instead of thousands. An org
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

What a refresh costs
--------------------
A refresh is eight statements, each built once per dialect and compiled once (`@cache`): the
transaction's marks, the number locks, the marks' deletion, the numbers' thresholds, the hour rows'
deletion and one `INSERT … SELECT` of every kind of row, then the day rows' deletion and their
`INSERT … SELECT` from the day's hour rows. The hours they work on are parameters, not
SQL: a table of spans (`_span_table`: number, [start, end) and the number's thresholds), unpacked on
PostgreSQL from one array per column, which psycopg2 sends as constants, so the planner knows how few
spans there are and reads `calls`, `call_rollups` and `rollup_dirty` by index (deletions join the
spans with `DELETE … USING`; an EXISTS would be a semi-join over the whole table). The calls are read
once: grouped per direction and agent (or none), the per-direction rows are summed from those groups
(counts and sums add up, maxima are maxima of maxima: exact). The webhook processing's refreshes of
an hour or two run the same statements.

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

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache

from sqlalchemy import (
    CompoundSelect,
    Delete,
    Insert,
    Integer,
    Select,
    and_,
    bindparam,
    cast,
    column,
    delete,
    exists,
    func,
    literal,
    null,
    select,
    text,
    true,
    union_all,
)
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


def _spans(ranges: Ranges) -> list[tuple[int, datetime, datetime]]:
    """The ranges as (number, start, end), overlapping or adjacent spans of a number merged, so that a
    row of a number and hour falls in exactly one of them."""
    merged: list[tuple[int, datetime, datetime]] = []
    for number_id in sorted(ranges):
        for start, end in sorted(ranges[number_id]):
            if merged and merged[-1][0] == number_id and start <= merged[-1][2]:
                merged[-1] = (number_id, merged[-1][1], max(end, merged[-1][2]))
            else:
                merged.append((number_id, start, end))
    return merged


def _run(statement):
    return db.session.connection().execute(reviewed_sql(statement))


def _run_built(statement, params: dict | None = None):
    """Run one of the statements built once (`@cache`, marked reviewed when built): the same object
    each time, so SQLAlchemy finds its compiled form without walking it again."""
    return db.session.connection().execute(statement, params)


def _dialect() -> str:
    return db.session.get_bind().dialect.name


def _is_postgresql() -> bool:
    return _dialect() == "postgresql"


_LOCK_NUMBERS = text(
    "SELECT pg_advisory_xact_lock(:space, n) FROM "
    "(SELECT n FROM unnest(CAST(:numbers AS integer[])) AS k(n) ORDER BY n OFFSET 0) AS ordered"
)


def _lock(ranges: Ranges) -> None:
    """Serialise refreshes of the same numbers until the transaction ends (PostgreSQL), taken in one
    order by everyone, so two writers never deadlock on each other's numbers. A refresh runs last in
    its transaction, so a number is held only while its hours are recomputed and committed."""
    if _is_postgresql() and ranges:
        _run_built(_LOCK_NUMBERS, {"space": LOCK_SPACE, "numbers": sorted(ranges)})


def _steps(start: datetime, end: datetime, step: timedelta = ONE_HOUR) -> Iterable[datetime]:
    while start < end:
        yield start
        start += step


# The spans of hours a statement works on


_SPAN_COLUMNS = ("n", "s", "e", *(f"a{i}" for i in range(1, EDGES + 1)), *(f"r{i}" for i in range(1, EDGES + 1)))
_TIME = UtcDateTime()


@cache
def _span_table(dialect: str):
    """The spans a statement works on, as a table `r` of parameters (`_spans_param`): a number `n`,
    its span of whole hours [`s`, `e`) and its thresholds in ms (`a1`.. service level, `r1`.. short
    abandon; NULL past the number's last). Parameters rather than a criterion per span give every
    statement over them one shape, built and compiled once. PostgreSQL gets one array per column
    (psycopg2 sends them as constants, so the planner knows how many spans there are and reads
    `calls` by index for a few); SQLite one JSON document."""
    if dialect == "postgresql":
        arrays = ", ".join(
            f"CAST(:span_{c} AS {'timestamptz' if c in ('s', 'e') else 'integer'}[])" for c in _SPAN_COLUMNS
        )
        sql = f"SELECT * FROM unnest({arrays}) AS spans({', '.join(_SPAN_COLUMNS)})"
    else:
        picked = ", ".join(f"json_extract(value, '$[{i}]') AS {c}" for i, c in enumerate(_SPAN_COLUMNS))
        sql = f"SELECT {picked} FROM json_each(:spans)"
    times = [column(c, UtcDateTime) for c in ("s", "e")]
    columns = [column("n", Integer), *times, *(column(c, Integer) for c in _SPAN_COLUMNS[3:])]
    return text(sql).columns(*columns).subquery("r")


def _spans_param(ranges: Ranges, *, thresholds: bool = False) -> dict:
    """The parameters of `_span_table` for the ranges (with their numbers' thresholds, read now, if asked)."""
    dialect = db.session.get_bind().dialect
    edges = _edges(ranges) if thresholds else {}
    rows = []
    for number_id, start, end in _spans(ranges):
        answer, ring = edges.get(number_id, ((), ()))
        rows.append((number_id, start, end, *_padded(answer), *_padded(ring)))
    if dialect.name == "postgresql":
        columns = list(zip(*rows, strict=True)) or [()] * len(_SPAN_COLUMNS)
        return {f"span_{c}": list(values) for c, values in zip(_SPAN_COLUMNS, columns, strict=True)}
    stored = _TIME.dialect_impl(dialect).bind_processor(dialect)  # a time as the text SQLite stores
    assert stored is not None, "SQLite's DATETIME formats times"
    return {"spans": json.dumps([(n, stored(s), stored(e), *rest) for n, s, e, *rest in rows])}


def _padded(limits) -> list:
    return [*limits, *[None] * (EDGES - len(limits))]


def _in_spans(r, number_column, time_column):
    return and_(number_column == r.c.n, time_column >= r.c.s, time_column < r.c.e)


def _in_spans_rows(dialect: str, table, time_column):
    """The table's rows in the spans (a number and time in one of them: the spans are disjoint)."""
    r = _span_table(dialect)
    return table.join(r, _in_spans(r, table.c.phone_number_id, time_column))


def _delete_in_spans(dialect: str, table, time_column, *where) -> Delete:
    """Delete the table's rows in the spans (and `where`): on PostgreSQL as a join with them
    (`DELETE … USING`), which it reads by index, where an EXISTS would be a semi-join over the whole
    table; SQLite has no `USING`."""
    r = _span_table(dialect)
    in_spans = _in_spans(r, table.c.phone_number_id, time_column)
    if dialect == "postgresql":
        return delete(table).where(in_spans, *where)
    return delete(table).where(exists(select(literal(1)).select_from(r).where(in_spans)), *where)


# Computing rollups from rows


def _edges(number_ids: Iterable[int]) -> dict[int, tuple[list[int], list[int]]]:
    """Per number: the service-level and the short-abandon thresholds (ms) of the orgs with a period on it."""
    answer: dict[int, set[int]] = defaultdict(set)
    ring: dict[int, set[int]] = defaultdict(set)
    rows = _run_built(_thresholds(), {"numbers": list(number_ids)})
    for number_id, threshold, short in rows:
        answer[number_id].add(threshold * 1000)
        ring[number_id].add(short * 1000)
    return {n: (sorted(answer[n])[:EDGES], sorted(ring[n])[:EDGES]) for n in answer}


@cache
def _thresholds():
    periods, orgs = NumberAssignment.__table__, Organization.__table__
    return reviewed_sql(
        select(periods.c.phone_number_id, orgs.c.service_level_threshold_seconds, orgs.c.short_abandon_seconds)
        .join(orgs, orgs.c.id == periods.c.org_id)
        .where(periods.c.phone_number_id.in_(bindparam("numbers", expanding=True)))
    )


class _UtcStart(FunctionElement):
    """The start of the UTC `unit` (hour, day) holding a timestamp, as a timestamp (stored as
    `hour_start` is); `sqlite_format` is the unit's start in the text SQLite stores."""

    type = UtcDateTime()
    inherit_cache = True
    unit: str
    sqlite_format: str


class _HourStart(_UtcStart):
    unit, sqlite_format = "hour", "%Y-%m-%d %H:00:00.000000"
    inherit_cache = True


class _DayStart(_UtcStart):
    unit, sqlite_format = "day", "%Y-%m-%d 00:00:00.000000"
    inherit_cache = True


@compiles(_UtcStart, "postgresql")
def _utc_start_pg(element, compiler, **kw):
    (column,) = (compiler.process(c, **kw) for c in element.clauses)
    return f"(date_trunc('{element.unit}', {column} AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')"


@compiles(_UtcStart, "sqlite")
def _utc_start_sqlite(element, compiler, **kw):
    (column,) = (compiler.process(c, **kw) for c in element.clauses)
    return f"strftime('{element.sqlite_format}', {column})"


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


@cache
def _rollup_rows(dialect: str) -> CompoundSelect:
    """The rollup rows of the spans' hours from rows, in `_KEYS + _VALUES` order: the calls per
    direction, the calls per direction and agent, the missed rings, and the inexact hours."""
    calls, events, r = Call.__table__, CallEvent.__table__, _span_table(dialect)
    spans_calls = calls.join(r, _in_spans(r, calls.c.phone_number_id, calls.c.started_at))
    answered = calls.c.status == ANSWERED
    abandoned = calls.c.status.in_(_ABANDONED)
    answer_ms = millis_between(calls.c.answered_at, calls.c.started_at)
    hour = _HourStart(calls.c.started_at)
    zero = literal(0)

    def nothing(name: str):
        """A NULL of the rollup column's type (so the branches of the union agree on it)."""
        return cast(null(), CallRollup.__table__.c[name].type)

    def total(value, *where):
        return func.coalesce(func.sum(value).filter(*where), 0)

    # A NULL threshold (the number has fewer) counts nothing and is kept as NULL.
    answer_edges = [r.c[f"a{i}"] for i in range(1, EDGES + 1)]
    ring_edges = [r.c[f"r{i}"] for i in range(1, EDGES + 1)]
    values = [
        func.count(),
        *(func.count().filter(calls.c.status == status) for status in _STATUS_COLUMNS),
        func.count(calls.c.duration_ms).filter(answered),
        total(calls.c.duration_ms, answered),
        func.count(answer_ms).filter(answered),
        total(answer_ms, answered),
        func.count(calls.c.ring_ms).filter(~answered),
        func.count(calls.c.ring_ms).filter(abandoned),
        *(func.count().filter(answered, answer_ms <= limit) for limit in answer_edges),
        *(func.count().filter(abandoned, calls.c.ring_ms < limit) for limit in ring_edges),
        func.max(answer_ms).filter(answered),
        func.max(calls.c.ring_ms).filter(~answered),
        *(func.max(limit) for limit in (*answer_edges, *ring_edges)),
    ]
    # One pass over the calls: per direction and agent (or none), then the directions from those groups.
    groups = (
        select(
            calls.c.phone_number_id,
            hour.label("hour_start"),
            calls.c.direction,
            calls.c.account_id,
            calls.c.agent_extension,
            *(value.label(name) for name, value in zip(_VALUES, values, strict=True)),
        )
        .select_from(spans_calls)
        .group_by(calls.c.phone_number_id, hour, calls.c.direction, calls.c.account_id, calls.c.agent_extension)
        .cte("agent_groups")
    )

    def of_groups(name: str):
        if name in _SUMS:
            return cast(func.sum(groups.c[name]), CallRollup.__table__.c[name].type)
        return func.max(groups.c[name])

    by_direction = select(
        groups.c.phone_number_id,
        groups.c.hour_start,
        literal(CALLS),
        groups.c.direction,
        *map(nothing, _KEYS[4:]),
        *map(of_groups, _VALUES),
    ).group_by(groups.c.phone_number_id, groups.c.hour_start, groups.c.direction)
    by_agent = select(
        *(groups.c[key] for key in _KEYS[:2]),
        literal(AGENTS),
        *(groups.c[key] for key in _KEYS[3:6]),
        *map(nothing, _KEYS[6:]),
        *(groups.c[name] for name in _VALUES),
    ).where(groups.c.agent_extension.is_not(None))
    extension = func.nullif(events.c.extension, "")
    counted_only = [zero] * (len(_SUMS) - 1) + [nothing(name) for name in _VALUES[len(_SUMS) :]]
    of_calls = and_(events.c.account_id == calls.c.account_id, events.c.call_external_id == calls.c.external_id)
    rings_of_calls = spans_calls.join(events, of_calls)
    stop_rings = [func.lower(events.c.event_type).like("%stopringing"), extension.is_not(None)]
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
        .select_from(rings_of_calls)
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
        select(calls.c.phone_number_id, hour, literal(INEXACT), *map(nothing, _KEYS[3:]), func.count())
        .add_columns(*counted_only)
        .select_from(rings_of_calls)
        .where(*stop_rings, ~filed_with_call)
        .group_by(calls.c.phone_number_id, hour)
    )
    return reviewed_sql(union_all(by_direction, by_agent, rings, inexact))


def compute(ranges: Ranges) -> dict[tuple, dict]:
    """The rollup rows of the ranges' hours, from rows: key columns -> value columns."""
    groups: dict[tuple, dict] = {}
    if not ranges:
        return groups
    for row in _run_built(_rollup_rows(_dialect()), _spans_param(ranges, thresholds=True)):
        groups[tuple(row[: len(_KEYS)])] = dict(zip(_VALUES, row[len(_KEYS) :], strict=True))
    return groups


def _columns_of(grain: str) -> tuple[str, ...]:
    return (*_VALUES, *BY_HOUR) if grain == DAY else _VALUES


@cache
def _stored_rows(dialect: str, grain: str) -> Select:
    table = CallRollup.__table__
    return reviewed_sql(
        select(*(table.c[k] for k in _KEYS), *(table.c[v] for v in _columns_of(grain)))
        .select_from(_in_spans_rows(dialect, table, table.c.hour_start))
        .where(table.c.grain == grain)
    )


def _stored(ranges: Ranges, grain: str = HOUR) -> dict[tuple, dict]:
    """The stored rollup rows of a grain in the ranges, keyed as `compute` (hours) or `_days` (days) keys them."""
    stored: dict[tuple, dict] = {}
    columns = _columns_of(grain)
    for row in _run_built(_stored_rows(_dialect(), grain), _spans_param(ranges)):
        key, values = tuple(row[: len(_KEYS)]), dict(zip(columns, row[len(_KEYS) :], strict=True))
        if grain == DAY:
            key += tuple(values.pop(c) for c in _EDGE_COLUMNS)
        stored[key] = values
    return stored


def _days(hours: dict[tuple, dict]) -> dict[tuple, dict]:
    """Day rows summed from hour rows (`compute` or `_stored` ones): keyed by the hour row's keys on
    its day and its thresholds, as the day rows group them."""
    days: dict[tuple, dict] = {}
    for key, values in hours.items():
        if key[2] == INEXACT:
            continue
        day_key = (key[0], day_floor(key[1]), *key[2:], *(values[c] for c in _EDGE_COLUMNS))
        day = days.setdefault(day_key, {**dict.fromkeys(_SUMS, 0), **dict.fromkeys((*_MAXIMA, *BY_HOUR))})
        for name in _SUMS:
            day[name] += values[name]
        for name in _MAXIMA:
            if values[name] is not None and (day[name] is None or values[name] > day[name]):
                day[name] = values[name]
        at = BY_HOUR[key[1].hour]
        day[at] = (day[at] or 0) + values["calls"]
    return days


@cache
def _replace_rollups(dialect: str) -> tuple[Delete, Insert]:
    table = CallRollup.__table__
    return (
        reviewed_sql(_delete_in_spans(dialect, table, table.c.hour_start, table.c.grain == HOUR)),
        # `grain` is left to its server default, `hour`.
        reviewed_sql(table.insert().from_select([*_KEYS, *_VALUES], _rollup_rows(dialect), include_defaults=False)),
    )


def _write(ranges: Ranges) -> int:
    """Replace the ranges' hour rows with what the rows say; returns the rows written."""
    if not ranges:
        return 0
    remove, insert = _replace_rollups(_dialect())
    spans = _spans_param(ranges, thresholds=True)
    _run_built(remove, spans)
    return _run_built(insert, spans).rowcount


@cache
def _replace_days(dialect: str) -> tuple[Delete, Insert]:
    """The day rows of the spans' days: their deletion, and their sums of the days' hour rows."""
    table = CallRollup.__table__
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
        .select_from(_in_spans_rows(dialect, table, table.c.hour_start))
        .where(table.c.grain == HOUR, table.c.kind != INEXACT)
        .group_by(*keys)
    )
    columns = [*_KEYS, *_EDGE_COLUMNS, "grain", *_SUMS, *_MAXIMA, *BY_HOUR]
    return (
        reviewed_sql(_delete_in_spans(dialect, table, table.c.hour_start, table.c.grain == DAY)),
        reviewed_sql(table.insert().from_select(columns, sums)),
    )


def _write_days(ranges: Ranges) -> int:
    """Replace the day rows of the UTC days holding the ranges' hours with the sums of those days'
    hour rows (written first: a day's other hours are as stored, or stale, and then the engine reads
    that day by the hour). Returns the rows written."""
    if not ranges:
        return 0
    remove, insert = _replace_days(_dialect())
    spans = _spans_param(days_of(ranges))
    _run_built(remove, spans)
    return _run_built(insert, spans).rowcount


@cache
def _marks(dialect: str) -> tuple[Select, Delete]:
    """The stale marks in the spans: which (number, hour)s they name, and their deletion."""
    dirty = RollupDirty.__table__
    return (
        reviewed_sql(
            select(dirty.c.phone_number_id, dirty.c.hour_start).select_from(
                _in_spans_rows(dialect, dirty, dirty.c.hour_start)
            )
        ),
        reviewed_sql(_delete_in_spans(dialect, dirty, dirty.c.hour_start)),
    )


@cache
def _own_marks(dialect: str) -> Select:
    """The (number, hour)s this transaction marked stale (PostgreSQL); on SQLite, every marked one."""
    dirty = RollupDirty.__table__
    mine = dirty.c.txid == func.txid_current() if dialect == "postgresql" else true()
    return reviewed_sql(select(dirty.c.phone_number_id, dirty.c.hour_start).where(mine).distinct())


def _clear_marks(ranges: Ranges) -> None:
    _run_built(_marks(_dialect())[1], _spans_param(ranges))


# Maintenance as rows are written


def refresh() -> int:
    """Recompute the hours this transaction made stale (PostgreSQL; on SQLite, every stale hour: one
    writer at a time) and clear their marks. Writers call it before they commit. Returns the hours."""
    keys = _run_built(_own_marks(_dialect())).all()
    if not keys:
        return 0
    ranges = ranges_of((n, hour_floor(h)) for n, h in keys)
    _lock(ranges)
    _clear_marks(ranges)
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
    result = RebuildResult()
    for chunk in _chunks(_window_ranges(start, end, org_id)):
        _lock(chunk)
        _clear_marks(chunk)
        result.rows += _write(chunk) + _write_days(chunk)
        result.hours += sum(1 for spans in chunk.values() for s, e in spans for _ in _steps(s, e))
        db.session.commit()
    return result


def check(start: datetime, end: datetime, org_id: int | None = None) -> CheckResult:
    """Compare the stored rollups of the UTC days touching [start, end), hours and days, with what the
    rows say now. Hours marked stale, and the days holding them, are counted as stale and not compared."""
    result = CheckResult()
    for chunk in _chunks(_window_ranges(start, end, org_id)):
        expected, stored = compute(chunk), _stored(chunk)
        stale = {(n, hour_floor(h)) for n, h in _run_built(_marks(_dialect())[0], _spans_param(chunk))}
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
