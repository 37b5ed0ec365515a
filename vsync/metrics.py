"""The KPI engine: every figure of `shared/reference/kpis.md`, computed by the database, for the JSON API
and the admin dashboard alike, so the two never disagree.

The figures
-----------
Each figure is declared once, in `FIGURES` (name, label, description, unit, how it is computed, which
way is better, and the breakdowns it exists in: totals, per agent, per number, series, per direction,
per weekday and hour, outbound, outbound per agent). The engine computes a breakdown's
figures from it, `for_display` rounds by its units, and the API's metrics schemas, the dashboard's
tiles and the reference page (`/api/v1/docs`) are built from it; `tests/test_kpi_registry.py` fails
when one of them and the registry disagree. The window and filters of a question are the query
vocabulary's (`vsync.query`).

How a figure is made
--------------------
One SQL statement selects the calls of the window (by their **start**, `[window.start, window.end)`),
narrowed by the `Filters`, and aggregates them with conditional counts (`count(*) FILTER (WHERE …)`)
and integer sums, grouped by a small key: a fine UTC time bucket (`summary`, `series`), the agent
extension (`by_agent`) or the phone number (`by_number`). Python only adds those partial aggregates
up and divides. Every sum is an integer number of milliseconds, so adding partials is exact and the
figures do not depend on how they were grouped; seconds and rates are derived at the very end.

Statements are ORM selects over `Call` (and `CallEvent` for missed rings), so the tenant hook of
`vsync.tenancy` adds the organisation's criterion (a call is seen while one of the org's assignments
of its number covers its start; an event while one covers its `occurred_at`) and any narrowing the
scope carries. Each statement names `Call` at its top level and never aggregates over a derived table
of calls: the hook puts its criteria on the entities of a statement and of the subqueries it joins,
and a select over only a derived table gets none. Callers run these functions inside
`tenant(org.id)`; any other scope is refused. The statements also say "numbers assigned to this org
during the window", which the tenant criterion implies, so that PostgreSQL reads the window's calls
of those numbers from the covering index `calls (phone_number_id, started_at) INCLUDE (…)` instead
of every org's calls. On PostgreSQL JIT compilation is switched off for the transaction (`_execute`).

Time zones without time zones in the database
---------------------------------------------
SQLite (the embedded default) has no time zones, so local periods are computed here with `zoneinfo`.
Calls are grouped in SQL by fine UTC buckets of `g` seconds, where `g` is the greatest common divisor
of an hour and every UTC offset the org's zone has around the window (3600 for whole-hour zones,
1800 or 900 for zones such as Asia/Kolkata or Asia/Kathmandu). Every local hour, day, week and month
boundary is a local wall time on the hour, hence a multiple of `g` in UTC, so each fine bucket lies in
exactly one local period and folding fine buckets into local periods is exact, including DST days of
23 and 25 hours. Offsets are sampled once a day, from a day before the window to a day after it: no
zone in the tz database keeps an offset for less than a day.

Local periods: an hour starts where the local clock reads hh:00 (so the repeated hour of a DST
fall-back is two buckets, each with its own UTC offset); a day at the first instant of its local
date; a week on Monday; a month on its first day. The first and last buckets of a series are the
local periods containing the window's start and end, and count only the window's part of them.

Wait times, from webhook events
-------------------------------
Times are compared in whole milliseconds (MightyCall's resolution) on both databases.

* Answered inbound call: its wait is `answered_at - started_at` (`answered_at` comes from the first
  Connected event). Without `answered_at` (a call only the sync has seen) it has no wait.
* Other inbound call: its wait is its **ring time** `calls.ring_ms`, from its first Ringing event to
  its last StopRinging event, or to its first Completed event when no extension stopped ringing (the
  caller hung up while it rang). Without a Ringing event or without such an end, it has no ring time.
  The webhook processing derives it from all the call's events whenever one arrives
  (`vsync.mightycall.webhook_events.ring_ms`), so it is the call's own, like the call's status and
  start: an org that sees the call sees its whole ring time. Types are matched case-insensitively by
  what they contain, so the legacy `IncomingCallRinging` and agent-level names such as `AgentRinging`
  both count.
* Inbound calls with a wait are the **sample** of the wait-based KPIs. A *short abandon* is a missed or
  dropped call whose ring time is under the org's short-abandon seconds; an *abandon* is one at or over.
  `abandon_rate = abandons / (sample - short abandons)` and `service_level = answered calls with
  wait <= threshold / (sample - short abandons)`, both None when that denominator is 0, with the
  denominator returned as their sample size. `avg_speed_of_answer_seconds` averages the waits of
  answered calls (`asa_sample_size` of them); `longest_wait_seconds` is the longest wait in the sample.
  Outbound calls have no wait: they are not in any wait-based KPI.

Rollups
-------
A question is split (`_plan`) into whole UTC days and hours read from `call_rollups`
(`vsync.services.rollups` keeps them, in the transaction that writes the calls) and segments read
from rows, and the partial aggregates of all three are added up: they are the same integer counts,
sums and maxima, so the figures are the same to the last call. An hour comes from the rollups only
when it lies wholly inside the window and inside one of the org's periods of its number, no stale
mark (`rollup_dirty`) names it and nothing in it is inexact; the window's zone must put every local
hour on a UTC hour (the fine bucket is an hour). A run of 24 such hours making a UTC day is read from
the day's row instead, unless the question groups by hour (the series and the heatmap read hours;
the summary's busiest hour takes the days' calls per UTC hour). So a year costs about 365 rows per
number and key, however many calls it holds. An agent's own scope, a breakdown that names no rollup
key, partial aggregates the rollups do not hold and thresholds they kept no count for are read from
rows (`rows_only()` forces it).

Other definitions kept here
---------------------------
* `outbound_calls` counts outbound and callback calls; the `direction="outbound"` filter means the
  same two, `"callback"` callbacks alone.
* Talk: durations of answered calls of every direction that have one. `total_talk_seconds` is 0 when no
  call was answered and None when answered calls exist but none has a duration.
* `busiest_hour`: the local hour of day (0-23) with most inbound calls, the earliest on a tie; None
  without inbound calls.
* Per agent: calls whose agent (`calls.agent_extension`) is the extension, and `missed_rings`, the
  StopRinging events carrying the extension on the calls of the window and filters (so on calls the
  agent may not have handled). Calls with no agent are in no agent row.
* Per number: one row per number with calls in the window and filters.
* Per direction (`by_direction`): one row per stored direction, callbacks apart from outbound calls.
* Heatmap (`heatmap`): inbound calls per local weekday and hour of their start, the 168 cells of a
  week, folded from the same fine buckets as the series, so it is exact on DST days too.
* Outbound work (`outbound`): the figures of the outbound breakdowns aggregate outbound calls and
  callbacks alone (their `_Parts` are of those calls only): attempts are `outbound_calls`, a connected
  call is an answered one, `connect_rate = connected / attempts`, and talk is that of connected calls;
  per agent for the extensions of the org's own accounts, as `by_agent`.
* Transfers are not counted: MightyCall's call list and webhook events carry no transfer (a call's
  `called[]` is the order extensions were rung, not a hand-over), so vsync has nothing to count.

Values leave this module unrounded; `for_display` rounds them at the edge (rates 4 decimals, seconds
1 decimal) and writes times as ISO-8601.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Callable
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import reduce
from typing import Any, NamedTuple

from sqlalchemy import BigInteger, and_, case, cast, false, func, or_, select, text
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from vsync.errors import ValidationError
from vsync.extensions import db
from vsync.models import (
    Agent,
    Call,
    CallEvent,
    CallRollup,
    Integration,
    NumberAssignment,
    Organization,
    PhoneNumber,
    RollupDirty,
)
from vsync.models import rollups as grains
from vsync.models.rollups import AGENTS, CALLS, INEXACT, RINGS
from vsync.models.traffic import ANSWERED, DIRECTIONS, DROPPED, INBOUND, MISSED, VOICEMAIL
from vsync.models.traffic import OUTBOUND as OUTBOUND_DIRECTION
from vsync.query import NO_FILTERS, OUTBOUND_DIRECTIONS, Filters, Window, local_day_start, own_account
from vsync.tenancy import TenancyError, current_scope
from vsync.timeutil import isoformat_z

BUCKETS = ("hour", "day", "week", "month")
_ABANDONED = (MISSED, DROPPED)


# Portable SQL pieces


class _EpochBucket(FunctionElement):
    """Unix seconds at the start of the `size`-second UTC bucket holding a timestamp (floor, exact)."""

    type = BigInteger()
    inherit_cache = True


def _floor_to(seconds: str, size: str, mod) -> str:
    """`seconds` rounded down to a multiple of `size`, for either sign (SQL's % truncates)."""
    return f"({seconds} - {mod(mod(seconds, size) + ' + ' + size, size)})"


@compiles(_EpochBucket, "postgresql")
def _epoch_bucket_pg(element, compiler, **kw):
    # date_part (a double) rather than EXTRACT (a numeric): much cheaper, and exact here. Epoch seconds
    # hold microseconds to within 2.4e-7 s, and a quotient by the bucket size is off by under 1e-10
    # of a bucket, while an instant one microsecond before a bucket's start is 2.8e-10 of an hour
    # (the largest bucket) short of it: floor() never crosses a boundary.
    column, size = (compiler.process(c, **kw) for c in element.clauses)
    return f"(CAST(floor(date_part('epoch', {column}) / {size}) AS BIGINT) * {size})"


@compiles(_EpochBucket, "sqlite")
def _epoch_bucket_sqlite(element, compiler, **kw):
    column, size = (compiler.process(c, **kw) for c in element.clauses)
    return _floor_to(f"CAST(strftime('%s', {column}) AS INTEGER)", size, lambda a, b: f"(({a}) % {b})")


class _MillisBetween(FunctionElement):
    """`later - earlier` in whole milliseconds (NULL when either is NULL)."""

    type = BigInteger()
    inherit_cache = True


@compiles(_MillisBetween, "postgresql")
def _millis_between_pg(element, compiler, **kw):
    later, earlier = (compiler.process(c, **kw) for c in element.clauses)
    return f"CAST(round((date_part('epoch', {later}) - date_part('epoch', {earlier})) * 1000) AS BIGINT)"


@compiles(_MillisBetween, "sqlite")
def _millis_between_sqlite(element, compiler, **kw):
    # julianday() holds SQLite's internal whole milliseconds; the error of the double is far under 1 ms.
    later, earlier = (compiler.process(c, **kw) for c in element.clauses)
    return f"CAST(round((julianday({later}) - julianday({earlier})) * 86400000) AS INTEGER)"


def _event_kind(suffix: str):
    return func.lower(CallEvent.event_type).like(f"%{suffix}")


def _call_criteria(window: Window, filters: Filters) -> list:
    """The window and filters on `Call`. The assignment clause is implied by the tenant criterion; it
    is there so that PostgreSQL reads only this org's numbers from `calls (phone_number_id, started_at)`."""
    numbers_of_window = select(NumberAssignment.phone_number_id).where(
        NumberAssignment.assigned_at < window.end,
        or_(NumberAssignment.unassigned_at.is_(None), NumberAssignment.unassigned_at > window.start),
    )
    return [
        Call.started_at >= window.start,
        Call.started_at < window.end,
        Call.phone_number_id.in_(numbers_of_window),
        *filters.criteria(),
    ]


def _joins_call(events) -> Any:
    """`Call` = the call of the `CallEvent` row."""
    return and_(Call.account_id == events.account_id, Call.external_id == events.call_external_id)


# The one aggregate


class _Parts(NamedTuple):
    """Partial aggregates of a set of calls, as the SQL returns them: integer counts and sums of
    milliseconds, and the longest wait (combined by max)."""

    total: int = 0
    inbound: int = 0
    outbound: int = 0
    answered: int = 0
    missed: int = 0
    dropped: int = 0
    voicemail: int = 0
    talked: int = 0
    talk_known: int = 0
    talk_ms: int = 0
    asa_n: int = 0
    asa_ms: int = 0
    within_threshold: int = 0
    sample: int = 0
    short_abandons: int = 0
    abandons: int = 0
    longest_wait_ms: int | None = None

    @classmethod
    def combine(cls, parts: list[_Parts]) -> _Parts:
        if not parts:
            return cls()
        *additive, longest = zip(*parts, strict=False)
        waits = [w for w in longest if w is not None]
        return cls(*map(sum, additive), longest_wait_ms=max(waits) if waits else None)


def _sum(value, *where):
    """An integer sum, 0 over no rows (PostgreSQL's sum of bigints is a numeric: cast it back)."""
    return cast(func.coalesce(func.sum(value).filter(*where), 0), BigInteger)


def _aggregates(org: Organization) -> list:
    """The partial aggregates of `_Parts`. A call's wait is `answered_at - started_at` when it is an
    answered inbound call and its ring time when it is another inbound call; each aggregate names the
    one its filter leaves, so the time arithmetic runs only over answered inbound calls, and once per
    aggregate that needs it (a single CASE over both was evaluated in seven aggregates per call)."""
    inbound = Call.direction == INBOUND
    answered = Call.status == ANSWERED
    unanswered = and_(inbound, Call.status != ANSWERED)
    abandoned = and_(inbound, Call.status.in_(_ABANDONED))
    answer_ms = _MillisBetween(Call.answered_at, Call.started_at)
    short_ms = org.short_abandon_seconds * 1000
    count = func.count
    longest_answer = func.max(answer_ms).filter(inbound, answered)
    longest_ring = func.max(Call.ring_ms).filter(unanswered)
    return [
        count().label("total"),
        count().filter(inbound).label("inbound"),
        count().filter(Call.direction.in_(OUTBOUND_DIRECTIONS)).label("outbound"),
        count().filter(inbound, answered).label("answered"),
        count().filter(inbound, Call.status == MISSED).label("missed"),
        count().filter(inbound, Call.status == DROPPED).label("dropped"),
        count().filter(inbound, Call.status == VOICEMAIL).label("voicemail"),
        count().filter(answered).label("talked"),
        count(Call.duration_ms).filter(answered).label("talk_known"),
        _sum(Call.duration_ms, answered).label("talk_ms"),
        count(Call.answered_at).filter(inbound, answered).label("asa_n"),
        _sum(answer_ms, inbound, answered).label("asa_ms"),
        count()
        .filter(inbound, answered, answer_ms <= org.service_level_threshold_seconds * 1000)
        .label("within_threshold"),
        (count(Call.answered_at).filter(inbound, answered) + count(Call.ring_ms).filter(unanswered)).label("sample"),
        count().filter(abandoned, Call.ring_ms < short_ms).label("short_abandons"),
        count().filter(abandoned, Call.ring_ms >= short_ms).label("abandons"),
        case(
            (longest_answer.is_(None), longest_ring),
            (longest_ring.is_(None), longest_answer),
            (longest_answer >= longest_ring, longest_answer),
            else_=longest_ring,
        ).label("longest_wait_ms"),
    ]


def _grouped(
    org: Organization,
    window: Window,
    filters: Filters,
    key,
    *criteria,
    rollup: _RollupKey | None = None,
    plan: _Plan | None = None,
) -> dict[Any, _Parts]:
    """`_Parts` of the window's calls per value of `key` (an expression on `Call`; None: one group, of
    every call, even of none): one pass over the calls alone, read on PostgreSQL from the covering index
    `ix_calls_number_started`.

    With `rollup` (the same key on `CallRollup`), the whole settled hours (and days, unless the key
    groups by hour) the plan allows (`plan`, or one made here) are read from the rollups and only the
    rest from rows (see "Rollups" above); without it, all from rows."""
    _require_scope(org)
    if rollup is not None and plan is None:
        plan = _plan(org, window, filters, days=rollup.days)
    if rollup is not None and plan is not None:
        from_rollups = _rollup_grouped(org, plan, filters, rollup)
        if from_rollups is not None:
            if plan.rows:
                from_rows = _rows_grouped(org, window, filters, key, _Parts._fields, *criteria, plan.rows_criterion())
            else:
                from_rows = {}
            for group, part in from_rows.items():
                other = from_rollups.get(group)
                from_rollups[group] = part if other is None else _Parts.combine([other, part])
            return from_rollups
    return _rows_grouped(org, window, filters, key, _Parts._fields, *criteria)


def _rows_grouped(
    org: Organization, window: Window, filters: Filters, key, fields: tuple[str, ...], *criteria
) -> dict[Any, _Parts]:
    """`_Parts` of the window's calls per value of `key`, from rows; only the partial aggregates named
    in `fields` are computed, the others left at 0."""
    keys = () if key is None else (key,)
    statement = (
        select(*keys, *(a for a in _aggregates(org) if a.name in fields))
        .select_from(Call)
        .where(*_call_criteria(window, filters), *criteria)
        .group_by(*keys)
    )
    if key is None:
        return {None: _Parts(**dict(zip(fields, _execute(statement).one(), strict=True)))}
    return {group: _Parts(**dict(zip(fields, values, strict=True))) for group, *values in _execute(statement)}


# Rollups


_ROWS_ONLY: ContextVar[bool] = ContextVar("vsync_metrics_rows_only", default=False)


@contextmanager
def rows_only():
    """Compute every figure from rows alone, as without rollups: the reference the rollups are held to."""
    token = _ROWS_ONLY.set(True)
    try:
        yield
    finally:
        _ROWS_ONLY.reset(token)


@dataclass(frozen=True)
class _RollupKey:
    """A grouping key on `CallRollup` standing for one on `Call` (None: one group), its extra criteria
    (on `CallRollup`), how a group's value is turned into the value the rows' key gives, and whether
    day rows may answer (not when the key groups by hour)."""

    column: Any
    criteria: tuple = ()
    convert: Callable[[Any], Any] = lambda value: value
    days: bool = True


Spans = dict[int, list[tuple[datetime, datetime]]]  # per number, ranges of `hour_start`


@dataclass
class _Plan:
    """Which calls of a question come from where: the whole hours and the whole UTC days read from
    rollups, and the (number, start, end) segments read from rows."""

    hours: Spans
    rows: list[tuple[int, datetime, datetime]]
    days: Spans = field(default_factory=dict)

    def rollup_criterion(self, kind: str):
        """The plan's rollup rows of `kind`. Each term names the whole key of the rollups' index, so
        PostgreSQL reads each span from it alone (a `kind` beside the terms was read as a bitmap of
        every row of the kind)."""
        return or_(
            false(),  # no span: nothing
            *(
                and_(CallRollup.grain == grain, CallRollup.kind == kind, term)
                for grain, spans in ((grains.HOUR, self.hours), (grains.DAY, self.days))
                for term in _spans_criteria(CallRollup.phone_number_id, CallRollup.hour_start, spans)
            ),
        )

    def rows_criterion(self):
        segments: Spans = {}
        for n, a, b in self.rows:
            segments.setdefault(n, []).append((a, b))
        return or_(false(), *_spans_criteria(Call.phone_number_id, Call.started_at, segments))  # none: nothing


def _spans_criteria(number_column, time_column, spans: Spans) -> list:
    """One term per distinct [start, end) of `spans`, naming every number that has it: a window's
    numbers mostly share their spans, so a question is a few terms, not a few per number."""
    numbers: dict[tuple[datetime, datetime], list[int]] = {}
    for n, ranges in spans.items():
        for span in ranges:
            numbers.setdefault(span, []).append(n)
    return [
        and_(number_column.in_(sorted(ns)), time_column >= a, time_column < b) for (a, b), ns in sorted(numbers.items())
    ]


_HOUR, _DAY = timedelta(hours=1), timedelta(days=1)


def _hour_floor(at: datetime) -> datetime:
    return at.replace(minute=0, second=0, microsecond=0)


def _hour_ceil(at: datetime) -> datetime:
    floor = _hour_floor(at)
    return floor if floor == at else floor + _HOUR


def _day_ceil(at: datetime) -> datetime:
    floor = _hour_floor(at).replace(hour=0)
    return floor if floor == at else floor + _DAY


def _plan(org: Organization, window: Window, filters: Filters, days: bool = True) -> _Plan | None:
    """Split the question into rollup days and hours and row segments, or None to read it all from rows.

    Rollups answer a (number, UTC hour) only when the hour lies wholly inside the window and inside one
    of the org's periods of the number, no stale mark names it and it holds nothing inexact; the
    window's zone must put every local hour on a UTC hour (whole-hour offsets around the window). An
    agent's own scope reads rows. The rest of each period's part of the window is read from rows.
    With `days`, the UTC days all of whose hours the rollups answer are read as days."""
    scope = current_scope()
    if _ROWS_ONLY.get() or scope is None or scope.own_traffic_only or _bucket_seconds(window) != 3600:
        return None
    periods = select(
        NumberAssignment.phone_number_id, NumberAssignment.assigned_at, NumberAssignment.unassigned_at
    ).where(
        NumberAssignment.assigned_at < window.end,
        or_(NumberAssignment.unassigned_at.is_(None), NumberAssignment.unassigned_at > window.start),
    )
    if isinstance(filters.number, str):
        periods = periods.where(
            NumberAssignment.phone_number_id.in_(select(PhoneNumber.id).where(PhoneNumber.e164 == filters.number))
        )
    elif filters.number is not None:
        periods = periods.where(NumberAssignment.phone_number_id == filters.number)
    rollups: dict[int, list[tuple[datetime, datetime]]] = {}
    rows: list[tuple[int, datetime, datetime]] = []
    for number_id, assigned_at, unassigned_at in db.session.execute(periods):
        lo, hi = max(window.start, assigned_at), min(window.end, unassigned_at or window.end)
        a, b = _hour_ceil(lo), _hour_floor(hi)
        if a >= b:
            rows.append((number_id, lo, hi))
            continue
        rollups.setdefault(number_id, []).append((a, b))
        rows += [(number_id, s, e) for s, e in ((lo, a), (b, hi)) if s < e]
    if not rollups:
        return None
    plan = _Plan(rollups, rows)
    unsettled = {
        (n, h)
        for n, h in db.session.execute(
            select(RollupDirty.phone_number_id, RollupDirty.hour_start)
            .where(or_(*_spans_criteria(RollupDirty.phone_number_id, RollupDirty.hour_start, rollups)))
            .union(select(CallRollup.phone_number_id, CallRollup.hour_start).where(plan.rollup_criterion(INEXACT)))
        )
    }
    for number_id, hour in sorted(unsettled):
        spans = []
        for a, b in rollups[number_id]:
            if a <= hour < b:
                spans += [(s, e) for s, e in ((a, hour), (hour + _HOUR, b)) if s < e]
                rows.append((number_id, hour, hour + _HOUR))
            else:
                spans.append((a, b))
        rollups[number_id] = spans
    if days:
        for number_id, spans in rollups.items():
            hours = []
            for a, b in spans:
                first, last = _day_ceil(a), _hour_floor(b).replace(hour=0)
                if first >= last:
                    hours.append((a, b))
                    continue
                plan.days.setdefault(number_id, []).append((first, last))
                hours += [(s, e) for s, e in ((a, first), (last, b)) if s < e]
            rollups[number_id] = hours
    return plan


def _rollup_filters(filters: Filters) -> list:
    """The filters' criteria on `CallRollup` rows (the number is the plan's)."""
    clauses = []
    if filters.agent is not None:
        clauses += [CallRollup.agent_extension == filters.agent, own_account(CallRollup)]
    if filters.direction == OUTBOUND_DIRECTION:
        clauses.append(CallRollup.direction.in_(OUTBOUND_DIRECTIONS))
    elif filters.direction is not None:
        clauses.append(CallRollup.direction == filters.direction)
    return clauses


def _at_edge(edges: list, counts: list, value: int):
    """The count kept for the edge equal to `value` (0 when none is: see `undecided`)."""
    return case(*((edge == value, count) for edge, count in zip(edges, counts, strict=True)), else_=0)


def _off_edges(edges: list, value: int):
    return and_(*(func.coalesce(edge, -1) != value for edge in edges))


def _rollup_aggregates(org: Organization) -> dict[str, Any]:
    """`_aggregates` over rollup rows, by `_Parts` field, plus `undecided`: the calls whose wait an
    org's threshold decides but the rollup kept no count at it for (then the question is read from rows)."""
    r = CallRollup
    inbound = r.direction == INBOUND
    threshold_ms = org.service_level_threshold_seconds * 1000
    short_ms = org.short_abandon_seconds * 1000
    answer_edges = [r.answer_edge_1, r.answer_edge_2, r.answer_edge_3]
    ring_edges = [r.ring_edge_1, r.ring_edge_2, r.ring_edge_3]
    short = _sum(_at_edge(ring_edges, [r.short_1, r.short_2, r.short_3], short_ms), inbound)
    longest_answer = func.max(r.answer_max_ms).filter(inbound)
    longest_ring = func.max(r.ring_max_ms).filter(inbound)
    return {
        "total": _sum(r.calls),
        "inbound": _sum(r.calls, inbound),
        "outbound": _sum(r.calls, r.direction.in_(OUTBOUND_DIRECTIONS)),
        "answered": _sum(r.answered, inbound),
        "missed": _sum(r.missed, inbound),
        "dropped": _sum(r.dropped, inbound),
        "voicemail": _sum(r.voicemail, inbound),
        "talked": _sum(r.answered),
        "talk_known": _sum(r.talk_n),
        "talk_ms": _sum(r.talk_ms),
        "asa_n": _sum(r.answer_n, inbound),
        "asa_ms": _sum(r.answer_ms, inbound),
        "within_threshold": _sum(_at_edge(answer_edges, [r.within_1, r.within_2, r.within_3], threshold_ms), inbound),
        "sample": _sum(r.answer_n, inbound) + _sum(r.ring_n, inbound),
        "short_abandons": short,
        "abandons": _sum(r.abandon_n, inbound) - short,
        "longest_wait_ms": case(
            (longest_answer.is_(None), longest_ring),
            (longest_ring.is_(None), longest_answer),
            (longest_answer >= longest_ring, longest_answer),
            else_=longest_ring,
        ),
        "undecided": _sum(r.answer_n, inbound, _off_edges(answer_edges, threshold_ms))
        + _sum(r.abandon_n, inbound, _off_edges(ring_edges, short_ms)),
    }


def _rollup_grouped(org: Organization, plan: _Plan, filters: Filters, key: _RollupKey) -> dict[Any, _Parts] | None:
    """`_Parts` of the plan's rollup days and hours per key value; None when the rollups cannot say
    them: a threshold of the org's without counts (set or changed since those hours were rolled up),
    or a partial aggregate they do not hold."""
    aggregates = _rollup_aggregates(org)
    if set(_Parts._fields) - aggregates.keys():
        return None
    by_agent = filters.agent is not None or key.column is CallRollup.agent_extension
    keys = () if key.column is None else (key.column,)
    statement = (
        select(*keys, *(aggregates[name].label(name) for name in (*_Parts._fields, "undecided")))
        .where(
            plan.rollup_criterion(AGENTS if by_agent else CALLS),
            *_rollup_filters(filters),
            *key.criteria,
        )
        .group_by(*keys)
    )
    parts = {}
    for row in _execute(statement):
        group, (*values, undecided) = (None, row) if key.column is None else (row[0], row[1:])
        if undecided:
            return None
        parts[key.convert(group)] = _Parts(*values)
    return parts


def _rollup_rings(plan: _Plan, filters: Filters) -> dict[str, int]:
    """Missed rings per extension in the plan's rollup hours."""
    statement = (
        select(CallRollup.ring_extension, _sum(CallRollup.calls))
        .where(
            plan.rollup_criterion(RINGS),
            *_rollup_filters(filters),
            CallRollup.ring_account_id.in_(select(Integration.account_id).scalar_subquery()),
        )
        .group_by(CallRollup.ring_extension)
    )
    return {ext: count for ext, count in _execute(statement).tuples() if ext is not None}


def epoch_hour(column):
    """Unix seconds at the start of the UTC hour holding a timestamp column (for the rollups)."""
    return _EpochBucket(column, 3600)


def millis_between(later, earlier):
    """`later - earlier` in whole milliseconds, as the engine computes waits (for the rollups)."""
    return _MillisBetween(later, earlier)


def _execute(statement):
    """Run a KPI statement. On PostgreSQL, JIT compilation is turned off for the rest of the
    transaction first: compiling these statements' many small expressions takes longer (~350 ms,
    measured at a million calls) than running them. Sorting is discouraged for the statement alone:
    PostgreSQL sorts a few thousand rollup rows to group them where hashing them is a quarter faster
    (it prices the hash of many aggregates too high); the driver has every row when `execute`
    returns, so the setting is back before anything else runs."""
    if db.session.get_bind().dialect.name != "postgresql":
        return db.session.execute(statement)
    db.session.execute(text("SET LOCAL jit = off; SET LOCAL enable_sort = off"))
    try:
        return db.session.execute(statement)
    finally:
        db.session.execute(text("SET LOCAL enable_sort = on"))


def _require_scope(org: Organization) -> None:
    scope = current_scope()
    if scope is None or scope.org_id != org.id:
        raise TenancyError(f"Metrics of org {org.id} are computed inside tenant({org.id}), not in {scope}.")


# The figures


class Unit(NamedTuple):
    """What a figure's number is: `integer` ones are exact counts, hours or settings; the rest are
    rounded at the edge to `decimals` (None: shown as the org set it)."""

    name: str
    integer: bool
    decimals: int | None = None


COUNT = Unit("count", integer=True)
RATE = Unit("rate", integer=False, decimals=4)  # a fraction 0..1
SECONDS = Unit("seconds", integer=False, decimals=1)
HOUR = Unit("hour", integer=True)  # a local hour of day, 0-23
SETTING_SECONDS = Unit("whole seconds", integer=True)  # an org setting returned beside the figure it shapes
SETTING_FRACTION = Unit("fraction", integer=False)

TOTALS, PER_AGENT, PER_NUMBER, SERIES = "totals", "per agent", "per number", "series"
PER_DIRECTION, HEATMAP = "per direction", "per weekday and hour"
OUTBOUND, OUTBOUND_PER_AGENT = "outbound", "outbound per agent"
BREAKDOWNS = (TOTALS, PER_AGENT, PER_NUMBER, SERIES, PER_DIRECTION, HEATMAP, OUTBOUND, OUTBOUND_PER_AGENT)
_EVERY_WINDOW = frozenset({TOTALS, SERIES})
_OUTBOUND_WORK = frozenset({OUTBOUND, OUTBOUND_PER_AGENT})
HIGHER, LOWER = "higher", "lower"  # which way a figure is better; volumes and settings have none


@dataclass(frozen=True)
class Figure:
    """One figure of `shared/reference/kpis.md`, declared once: the API's schemas, the dashboard's tiles
    and the reference page (`/api/v1/docs`) are built from it, and the engine computes it with `value`.

    `value` reads the partial aggregates of `_aggregates` (the SQL, one labelled expression per
    `_Parts` field) and the org's settings; a figure without one is computed by the function named in
    `computed_by`. `breakdowns` says where it exists: `summary` (totals), `by_agent`, `by_number`,
    `series`, `by_direction`, `heatmap`, `outbound` (totals and per agent). `nullable` is what the API's
    schema says of it. `better` says which way a change is good news (`HIGHER`, `LOWER`) for the
    dashboard's comparisons; None for a volume or a setting, whose change is neither."""

    name: str
    label: str
    unit: Unit
    description: str
    breakdowns: frozenset[str]
    value: Callable[[_Parts, Organization], Any] | None = None
    computed_by: str | None = None
    nullable: bool = True
    better: str | None = None


def _wait_denominator(p: _Parts) -> int:
    """Inbound calls with a known wait, short abandons left out: abandon_rate's and service_level's."""
    return p.sample - p.short_abandons


def _total_talk(p: _Parts, org: Organization) -> float | None:
    return p.talk_ms / 1000 if p.talk_known else None if p.talked else 0.0


def _avg_talk(p: _Parts, org: Organization) -> float | None:
    return p.talk_ms / p.talk_known / 1000 if p.talk_known else None


def _declare(*figures: Figure) -> dict[str, Figure]:
    return {figure.name: figure for figure in figures}


FIGURES = _declare(
    Figure(
        "total_calls",
        "Total calls",
        COUNT,
        "Calls started in the window, every direction.",
        _EVERY_WINDOW | {PER_NUMBER, PER_DIRECTION},
        lambda p, org: p.total,
    ),
    Figure(
        "calls_handled",
        "Calls handled",
        COUNT,
        "Calls this extension handled.",
        frozenset({PER_AGENT}),
        lambda p, org: p.total,
        nullable=False,
    ),
    Figure(
        "inbound_calls",
        "Inbound",
        COUNT,
        "Inbound calls.",
        _EVERY_WINDOW | {PER_AGENT, PER_NUMBER, HEATMAP},
        lambda p, org: p.inbound,
    ),
    Figure(
        "outbound_calls",
        "Outbound",
        COUNT,
        "Outbound calls, callbacks included.",
        _EVERY_WINDOW | {PER_AGENT, PER_NUMBER} | _OUTBOUND_WORK,
        lambda p, org: p.outbound,
    ),
    Figure(
        "answered_calls",
        "Answered",
        COUNT,
        "Inbound calls answered.",
        _EVERY_WINDOW | {PER_AGENT, PER_NUMBER, HEATMAP},
        lambda p, org: p.answered,
    ),
    Figure(
        "missed_rings",
        "Missed rings",
        COUNT,
        "StopRinging events of this extension on the window's calls.",
        frozenset({PER_AGENT}),
        computed_by="by_agent",
        nullable=False,
    ),
    Figure(
        "missed_calls",
        "Missed",
        COUNT,
        "Inbound calls missed or dropped.",
        _EVERY_WINDOW | {PER_NUMBER, HEATMAP},
        lambda p, org: p.missed + p.dropped,
        better=LOWER,
    ),
    Figure(
        "dropped_calls",
        "Dropped",
        COUNT,
        "Inbound calls dropped (also counted in missed_calls).",
        _EVERY_WINDOW,
        lambda p, org: p.dropped,
        better=LOWER,
    ),
    Figure(
        "voicemail_calls",
        "Voicemail",
        COUNT,
        "Inbound calls that went to voicemail.",
        _EVERY_WINDOW | {PER_NUMBER},
        lambda p, org: p.voicemail,
        better=LOWER,
    ),
    Figure(
        "answer_rate",
        "Answer rate",
        RATE,
        "answered_calls / inbound_calls, 0..1; null without inbound calls.",
        _EVERY_WINDOW | {PER_NUMBER},
        lambda p, org: p.answered / p.inbound if p.inbound else None,
        better=HIGHER,
    ),
    Figure(
        "abandon_rate",
        "Abandon rate",
        RATE,
        "Inbound missed or dropped calls whose ring time is at least short_abandon_seconds, over (inbound "
        "calls with a known wait - short abandons); needs webhook events, else null.",
        _EVERY_WINDOW,
        lambda p, org: p.abandons / _wait_denominator(p) if _wait_denominator(p) else None,
        better=LOWER,
    ),
    Figure(
        "abandon_sample_size",
        "Abandon sample",
        COUNT,
        "The denominator of abandon_rate.",
        _EVERY_WINDOW,
        lambda p, org: _wait_denominator(p),
    ),
    Figure(
        "short_abandon_seconds",
        "Short abandon",
        SETTING_SECONDS,
        "The org's short-abandon threshold.",
        _EVERY_WINDOW,
        lambda p, org: org.short_abandon_seconds,
    ),
    Figure(
        "avg_talk_seconds",
        "Average talk",
        SECONDS,
        "Mean duration of answered calls (both directions); null when none has a duration.",
        _EVERY_WINDOW | {PER_AGENT, PER_DIRECTION},
        _avg_talk,
    ),
    Figure(
        "total_talk_seconds",
        "Total talk",
        SECONDS,
        "Sum of the durations of answered calls.",
        _EVERY_WINDOW | {PER_AGENT, PER_NUMBER, PER_DIRECTION},
        _total_talk,
    ),
    Figure(
        "avg_speed_of_answer_seconds",
        "Speed of answer",
        SECONDS,
        "Mean of answered_at - started_at over inbound answered calls that have answered_at (from webhook events).",
        _EVERY_WINDOW,
        lambda p, org: p.asa_ms / p.asa_n / 1000 if p.asa_n else None,
        better=LOWER,
    ),
    Figure(
        "asa_sample_size",
        "Speed of answer sample",
        COUNT,
        "Calls averaged in avg_speed_of_answer_seconds.",
        _EVERY_WINDOW,
        lambda p, org: p.asa_n,
    ),
    Figure(
        "service_level",
        "Service level",
        RATE,
        "Inbound calls answered within service_level_threshold_seconds, over (inbound calls with a known wait "
        "- short abandons); null without events.",
        _EVERY_WINDOW,
        lambda p, org: p.within_threshold / _wait_denominator(p) if _wait_denominator(p) else None,
        better=HIGHER,
    ),
    Figure(
        "service_level_target",
        "Service level target",
        SETTING_FRACTION,
        "The org's service-level target, 0..1.",
        _EVERY_WINDOW,
        lambda p, org: org.service_level_target,
    ),
    Figure(
        "service_level_threshold_seconds",
        "Service level threshold",
        SETTING_SECONDS,
        "The org's answer-time threshold.",
        _EVERY_WINDOW,
        lambda p, org: org.service_level_threshold_seconds,
    ),
    Figure(
        "service_level_sample_size",
        "Service level sample",
        COUNT,
        "The denominator of service_level.",
        _EVERY_WINDOW,
        lambda p, org: _wait_denominator(p),
    ),
    Figure(
        "longest_wait_seconds",
        "Longest wait",
        SECONDS,
        "Longest wait of an inbound call with events: time to answer, or ring time of an unanswered call.",
        _EVERY_WINDOW,
        lambda p, org: p.longest_wait_ms / 1000 if p.longest_wait_ms is not None else None,
        better=LOWER,
    ),
    Figure(
        "busiest_hour",
        "Busiest hour",
        HOUR,
        "Local hour of day (0-23) with most inbound calls, earliest on a tie.",
        frozenset({TOTALS}),
        computed_by="summary",
    ),
    # The outbound breakdowns aggregate outbound calls (callbacks included) alone: there a call that
    # was answered is one the other party picked up, and its talk is outbound talk.
    Figure(
        "connected_calls",
        "Connected",
        COUNT,
        "Outbound calls (callbacks included) the other party answered.",
        _OUTBOUND_WORK,
        lambda p, org: p.talked,
        nullable=False,
        better=HIGHER,
    ),
    Figure(
        "connect_rate",
        "Connect rate",
        RATE,
        "connected_calls / outbound_calls, 0..1; null without outbound calls.",
        _OUTBOUND_WORK,
        lambda p, org: p.talked / p.outbound if p.outbound else None,
        better=HIGHER,
    ),
    Figure(
        "outbound_avg_talk_seconds",
        "Average outbound talk",
        SECONDS,
        "Mean duration of connected outbound calls; null when none has a duration.",
        _OUTBOUND_WORK,
        _avg_talk,
    ),
    Figure(
        "outbound_talk_seconds",
        "Outbound talk",
        SECONDS,
        "Sum of the durations of connected outbound calls (0 without any; null when none has a duration).",
        _OUTBOUND_WORK,
        _total_talk,
    ),
)
_DECIMALS = {figure.name: figure.unit.decimals for figure in FIGURES.values() if figure.unit.decimals is not None}


def figures(breakdown: str) -> list[Figure]:
    """The figures of one breakdown, in the registry's order (the order of the API's schemas)."""
    return [figure for figure in FIGURES.values() if breakdown in figure.breakdowns]


def _values(parts: _Parts, org: Organization, breakdown: str) -> dict[str, Any]:
    """The figures of `breakdown` that the partial aggregates give, unrounded."""
    return {figure.name: figure.value(parts, org) for figure in figures(breakdown) if figure.value is not None}


# Local time


def _bucket_seconds(window: Window) -> int:
    """The fine UTC bucket size that every local period boundary around the window falls on."""
    offsets = set()
    t = window.start - timedelta(days=1)
    while t <= window.end + timedelta(days=1):
        offset = t.astimezone(window.tz).utcoffset()
        assert offset is not None, "an aware time has its offset"
        offsets.add(int(offset.total_seconds()))
        t += timedelta(days=1)
    return reduce(math.gcd, offsets, 3600)


def _epoch(value: datetime) -> int:
    return math.floor(value.timestamp())


def _boundaries(window: Window, bucket: str, step: int) -> list[datetime]:
    """UTC starts of the local periods that overlap the window, then the end of the last one."""
    tz = window.tz
    bounds: list[datetime] = []
    if bucket == "hour":
        t = datetime.fromtimestamp(_epoch(window.start) // step * step, UTC)
        while (local := t.astimezone(tz)).minute or local.second:
            t -= timedelta(seconds=step)
        while not bounds or bounds[-1] < window.end:
            local = t.astimezone(tz)
            if not (local.minute or local.second):
                bounds.append(t)
            t += timedelta(seconds=step)
        return bounds
    day = window.start_local.date()
    if bucket == "week":
        day -= timedelta(days=day.weekday())
    elif bucket == "month":
        day = day.replace(day=1)
    while not bounds or bounds[-1] < window.end:
        bounds.append(local_day_start(day, tz))
        if bucket == "day":
            day += timedelta(days=1)
        elif bucket == "week":
            day += timedelta(days=7)
        else:
            day = date(day.year + day.month // 12, day.month % 12 + 1, 1)
    return bounds


def _fine_parts(org: Organization, window: Window, filters: Filters) -> tuple[int, dict[int, _Parts]]:
    step = _bucket_seconds(window)
    hours = _RollupKey(CallRollup.hour_start, convert=lambda hour: int(hour.timestamp()), days=False)
    return step, _grouped(org, window, filters, _EpochBucket(Call.started_at, step), rollup=hours)


def _inbound_by_hour(org: Organization, window: Window, filters: Filters, plan: _Plan | None) -> list[int]:
    """Inbound calls per local hour of day (0-23): the plan's rollup hours by their start, its days by
    their calls per UTC hour (each UTC hour lies in one local hour, see `_bucket_seconds`), its rows by
    fine bucket."""
    counts = [0] * 24

    def add(start: datetime, calls: int | None) -> None:
        if calls:
            counts[start.astimezone(window.tz).hour] += calls

    fine = _EpochBucket(Call.started_at, _bucket_seconds(window))
    if plan is not None:
        r = CallRollup
        statement = (
            select(r.grain, r.hour_start, _sum(r.calls), *(func.sum(r.__table__.c[c]) for c in grains.BY_HOUR))
            .where(
                plan.rollup_criterion(CALLS if filters.agent is None else AGENTS),
                r.direction == INBOUND,
                *_rollup_filters(filters),
            )
            .group_by(r.grain, r.hour_start)
        )
        for grain, start, calls, *by_hour in _execute(statement):
            if grain == grains.HOUR:
                add(start, calls)
                continue
            local = start.astimezone(window.tz)
            if (start + _DAY).astimezone(window.tz).utcoffset() == local.utcoffset():  # one offset all day
                for hour, n in enumerate(by_hour):
                    if n:
                        counts[(local.hour + hour) % 24] += n
            else:
                for hour, n in enumerate(by_hour):
                    add(start + timedelta(hours=hour), n)
        rows = _rows_grouped(org, window, filters, fine, ("inbound",), plan.rows_criterion()) if plan.rows else {}
    else:
        rows = _rows_grouped(org, window, filters, fine, ("inbound",))
    for start, part in rows.items():
        add(datetime.fromtimestamp(start, UTC), part.inbound)
    return counts


# Public functions


def summary(org: Organization, window: Window, filters: Filters = NO_FILTERS) -> dict[str, Any]:
    """Every KPI of kpis.md for the window, plus `busiest_hour` (local hour of day)."""
    _require_scope(org)
    plan = _plan(org, window, filters)
    (totals,) = _grouped(org, window, filters, None, rollup=_RollupKey(None), plan=plan).values()
    inbound_by_hour = _inbound_by_hour(org, window, filters, plan)
    busiest = max(range(24), key=lambda h: (inbound_by_hour[h], -h)) if any(inbound_by_hour) else None
    return {**_values(totals, org, TOTALS), "busiest_hour": busiest}


def series(org: Organization, window: Window, bucket: str, filters: Filters = NO_FILTERS) -> list[dict[str, Any]]:
    """The KPIs (all but `busiest_hour`) per local hour, day, week or month, zero-filled.

    Each bucket has `start` and `end` (UTC) and `start_local`; the first and last are the local
    periods holding the window's start and end, and count only calls inside the window.
    """
    if bucket not in BUCKETS:
        raise ValidationError(f"bucket is one of {', '.join(BUCKETS)}.", field="bucket")
    step, parts = _fine_parts(org, window, filters)
    bounds = _boundaries(window, bucket, step)
    edges = [_epoch(b) for b in bounds]
    members: list[list[_Parts]] = [[] for _ in bounds[1:]]
    for fine_start, part in parts.items():
        members[bisect_right(edges, max(fine_start, edges[0])) - 1].append(part)
    return [
        {
            "start": start,
            "end": end,
            "start_local": start.astimezone(window.tz),
            **_values(_Parts.combine(group), org, SERIES),
        }
        for start, end, group in zip(bounds, bounds[1:], members, strict=False)
    ]


def by_agent(org: Organization, window: Window, filters: Filters = NO_FILTERS) -> list[dict[str, Any]]:
    """One row per agent of the org (an extension of its own accounts, see `own_account`) with calls or
    missed rings in the window, by extension."""
    _require_scope(org)
    plan = _plan(org, window, filters)
    agents = _RollupKey(CallRollup.agent_extension, (own_account(CallRollup),))
    grouped = _grouped(org, window, filters, Call.agent_extension, own_account(Call), rollup=agents, plan=plan)
    parts = {ext: p for ext, p in grouped.items() if ext}
    extension = func.nullif(CallEvent.extension, "")
    rings: dict[str, int] = {}
    if plan is None or plan.rows:
        rings = dict(
            _execute(
                select(extension, func.count())
                .join(Call, _joins_call(CallEvent))
                .where(
                    *_call_criteria(window, filters),
                    _event_kind("stopringing"),
                    extension.is_not(None),
                    own_account(CallEvent),
                    *((plan.rows_criterion(),) if plan is not None else ()),
                )
                .group_by(extension)
            )
            .tuples()
            .all()
        )
    if plan is not None:
        for ext, count in _rollup_rings(plan, filters).items():
            rings[ext] = rings.get(ext, 0) + count
    extensions = sorted(parts.keys() | rings.keys())
    names = (
        dict(
            db.session.execute(
                select(Agent.extension, func.min(Agent.display_name))
                .where(Agent.extension.in_(extensions))
                .group_by(Agent.extension)
            )
            .tuples()
            .all()
        )
        if extensions
        else {}
    )
    return [
        {
            "extension": ext,
            "display_name": names.get(ext),
            **_values(parts.get(ext, _Parts()), org, PER_AGENT),
            "missed_rings": int(rings.get(ext, 0)),
        }
        for ext in extensions
    ]


def by_number(org: Organization, window: Window, filters: Filters = NO_FILTERS) -> list[dict[str, Any]]:
    """One row per phone number with calls in the window, by E.164."""
    parts = _grouped(org, window, filters, Call.phone_number_id, rollup=_RollupKey(CallRollup.phone_number_id))
    numbers = {n.id: n for n in db.session.scalars(select(PhoneNumber).where(PhoneNumber.id.in_(list(parts))))}
    rows = [
        {
            "phone_number_id": number_id,
            "e164": numbers[number_id].e164,
            "label": numbers[number_id].label,
            **_values(p, org, PER_NUMBER),
        }
        for number_id, p in parts.items()
    ]
    return sorted(rows, key=lambda row: row["e164"])


def by_direction(org: Organization, window: Window, filters: Filters = NO_FILTERS) -> list[dict[str, Any]]:
    """One row per call direction with calls in the window (`inbound`, `outbound`, `callback`,
    `other`, in that order): callbacks have their own row here, while `outbound_calls` counts them
    with outbound calls."""
    parts = _grouped(org, window, filters, Call.direction)
    order = {direction: i for i, direction in enumerate(DIRECTIONS)}
    return [
        {"direction": direction, **_values(parts[direction], org, PER_DIRECTION)}
        for direction in sorted(parts, key=lambda d: (order.get(d, len(order)), d))
    ]


def heatmap(org: Organization, window: Window, filters: Filters = NO_FILTERS) -> list[dict[str, Any]]:
    """Inbound calls per local weekday (0 Monday .. 6 Sunday) and local hour of day (0-23): all 168
    cells, zero-filled, weekday by weekday. A call is in the cell of the local weekday and hour it
    started; each fine UTC bucket lies in one local hour (see "Time zones"), so on a DST day the
    skipped hour's cell gets nothing and the repeated hour's cell gets both of its hours."""
    _, parts = _fine_parts(org, window, filters)
    cells: list[list[_Parts]] = [[] for _ in range(7 * 24)]
    for start, part in parts.items():
        local = datetime.fromtimestamp(start, window.tz)
        cells[local.weekday() * 24 + local.hour].append(part)
    return [
        {"weekday": i // 24, "hour": i % 24, **_values(_Parts.combine(members), org, HEATMAP)}
        for i, members in enumerate(cells)
    ]


def outbound(org: Organization, window: Window, filters: Filters = NO_FILTERS) -> dict[str, Any]:
    """Outbound work (outbound calls and callbacks): `totals` for the window, and `agents`, one row per
    agent of the org (an extension of its own accounts) who placed outbound calls, by extension:
    attempts (`outbound_calls`), connected calls, connect rate and talk."""
    placed = Call.direction.in_(OUTBOUND_DIRECTIONS)
    totals = _grouped(org, window, filters, Call.direction, placed)
    agents = {
        ext: p
        for ext, p in _grouped(org, window, filters, Call.agent_extension, placed, own_account(Call)).items()
        if ext
    }
    names = _agent_names(sorted(agents))
    return {
        "totals": _values(_Parts.combine(list(totals.values())), org, OUTBOUND),
        "agents": [
            {"extension": ext, "display_name": names.get(ext), **_values(agents[ext], org, OUTBOUND_PER_AGENT)}
            for ext in sorted(agents)
        ],
    }


def _agent_names(extensions: list[str]) -> dict[str, str | None]:
    """The display names of the org's agents by extension (one name per extension)."""
    if not extensions:
        return {}
    return dict(
        db.session.execute(
            select(Agent.extension, func.min(Agent.display_name))
            .where(Agent.extension.in_(extensions))
            .group_by(Agent.extension)
        )
        .tuples()
        .all()
    )


# The edge


def for_display(value: Any) -> Any:
    """`value` (a result of this module) ready for JSON: rates to 4 decimals, seconds to 1 decimal,
    UTC times as `…Z`, local times with their offset. Counts and everything else pass unchanged."""
    if isinstance(value, dict):
        return {k: _display_item(k, v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [for_display(v) for v in value]
    if isinstance(value, datetime):
        return isoformat_z(value) if value.tzinfo is UTC else value.isoformat()
    return value


def _display_item(key: str, value: Any) -> Any:
    if value is None:
        return None
    if key in _DECIMALS:
        return round(value, _DECIMALS[key])
    return for_display(value)
