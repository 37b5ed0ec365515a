"""KPI engine latency at a million calls, each figure beside one hand-written SQL query computing it.

    .venv/bin/python -m bench.metrics_latency [--calls 1000000] [--runs 30] [--database-url URL] [--keep]
                                              [--reuse] [--probe]

--calls         calls to generate (default 1,000,000) over 12 months
--runs          timed runs of each figure, after one warm-up run (default 30)
--database-url  a PostgreSQL URL whose database is DROPPED, recreated and, unless --keep, dropped at
                the end (default postgresql://postgres@127.0.0.1:5432/vsync_bench_metrics)
--keep          keep the database (then --reuse skips generation on the next run)
--reuse         use the database as it is (made by an earlier run with --keep)
--probe         then change the schema and time what would meet the targets the engine misses: the
                engine reading ring times from the call row instead of joining the events, and an
                hourly rollup (hand-written SQL)

The data: 3 orgs (New York, Berlin and UTC time zones), 20 numbers, a number shared by the first two
orgs all year and a number moved from the first org to the third in mid-year, 12 agents per org;
calls spread over the year with business-hour peaks (inbound 60 %: 70 % answered, 15 % missed, 5 %
dropped, 10 % voicemail; outbound 35 %; callbacks 5 %), written with COPY in order of time, as syncs
and webhooks store them. Webhook events (and so
`answered_at` and ring times) exist for the last six months, as if webhooks were switched on then:
Ringing, then Connected or StopRinging, then Completed for inbound calls; Connected and Completed
for outbound ones. Raw payloads are ~250-byte JSON documents, so rows have a realistic width.

Measured for the largest org (the first), inside its tenant scope as the API runs them:
`summary` over the last 30 and 365 days, daily `series` over 30 days and `by_agent` over 30 days,
each against one hand-written PostgreSQL query that computes the same figures (time zones with
AT TIME ZONE, waits from events with a LATERAL join), run on the same connection. Both sides are
checked to agree before timing; both run with JIT off, as the engine sets it. Targets (p95): 30-day
summary and series <= 100 ms and <= 2x the hand-written query; 365-day summary <= 500 ms. The load
average is printed: other work on the machine skews every figure.

With --probe it then measures what would meet the targets the engine misses with plain indexed
queries: the engine with the ring time read from the call row (as the webhook processing could store
it beside `answered_at`) instead of joined from the events, and an hourly per-number rollup of the
same partial aggregates for long windows.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import platform
import random
import sys
import time
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg2
import sqlalchemy
from cryptography.fernet import Fernet
from flask_migrate import upgrade
from sqlalchemy import and_, case, literal_column, select, text

from bench.common import recreate_database
from vsync import create_app, metrics
from vsync.extensions import db
from vsync.metrics import Window
from vsync.models import Call, Integration, Organization
from vsync.services import numbers, orgs
from vsync.tenancy import platform_bypass, tenant

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/vsync_bench_metrics"
END = datetime(2026, 11, 21, tzinfo=UTC)
START = END - timedelta(days=365)
EVENTS_FROM = END - timedelta(days=182)
MOVED_AT = START + timedelta(days=182)
ORGS = (("alpha", "America/New_York"), ("bravo", "Europe/Berlin"), ("charlie", "UTC"))
# Number index -> owning org index; 19 is shared by orgs 0 and 1, 7 moves from org 0 to org 2.
OWNER = [0] * 8 + [1] * 6 + [2] * 5 + [0]
SHARED, MOVED = 19, 7
HOUR_WEIGHTS = [1, 1, 1, 1, 1, 2, 4, 8, 14, 18, 20, 20, 18, 19, 20, 18, 15, 10, 6, 4, 3, 2, 1, 1]
TARGET_30_MS, TARGET_365_MS, TARGET_RATIO = 100.0, 500.0, 2.0


def say(message: str) -> None:
    print(f"  .. {message}", file=sys.stderr, flush=True)




# The data


def setup_world() -> tuple[list[int], list[int], list[int]]:
    """Orgs, integrations, numbers and assignments through the domain services; returns their ids."""
    with platform_bypass("bench setup"):
        org_rows = [orgs.create_org(slug.title(), slug, tz) for slug, tz in ORGS]
        db.session.flush()
        integrations = [Integration(org_id=o.id, base_url="http://127.0.0.1:1/v4", credentials_encrypted="-")
                        for o in org_rows]
        db.session.add_all(integrations)
        number_rows = [numbers.add_number(f"+1212555{1000 + i}") for i in range(20)]
        since = START - timedelta(days=30)
        for i, number in enumerate(number_rows):
            numbers.assign_number(org_rows[OWNER[i]], number, at=since)
        numbers.assign_number(org_rows[1], number_rows[SHARED], at=since)
        numbers.unassign_number(org_rows[0], number_rows[MOVED], at=MOVED_AT)
        numbers.assign_number(org_rows[2], number_rows[MOVED], at=MOVED_AT)
        db.session.commit()
        return [o.id for o in org_rows], [i.id for i in integrations], [n.id for n in number_rows]


def _copy_value(value) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def generate(calls: int, integrations: list[int], number_ids: list[int], seed: int = 1) -> tuple[int, int]:
    """COPY `calls` calls and their events; returns (calls, events) written."""
    rng = random.Random(seed)
    span = (END - START).total_seconds()
    hours = list(range(24))
    raw = json.dumps({"caller": {"name": "Bench Caller", "phone": "+17185550123"}, "businessNumber": "x" * 12,
                      "callFlow": "main", "notes": "a typical provider payload of a few hundred bytes " * 3})
    call_columns = ("integration_id", "external_id", "phone_number_id", "direction", "status", "provider_status",
                    "from_number", "to_number", "started_at", "answered_at", "ended_at", "duration_ms",
                    "agent_extension", "raw", "synced_at")
    event_columns = ("integration_id", "guid", "call_external_id", "phone_number_id", "event_type", "extension",
                     "occurred_at", "raw")
    # In order of time, as syncs and webhooks store them: rows of one period sit on neighbouring pages.
    starts = sorted(START + timedelta(days=rng.random() * span // 86400, hours=hour,
                                      milliseconds=rng.randrange(3_600_000))
                    for hour in rng.choices(hours, HOUR_WEIGHTS, k=calls))
    raw_conn = db.engine.raw_connection()
    written_events = 0
    try:
        cursor = raw_conn.cursor()
        batch = 100_000
        for first in range(0, calls, batch):
            call_buf, event_buf = io.StringIO(), io.StringIO()
            for n in range(first, min(first + batch, calls)):
                number = rng.randrange(20)
                started = starts[n]
                owner = (0 if started < MOVED_AT else 2) if number == MOVED else OWNER[number]
                integration = integrations[owner]
                roll = rng.random()
                direction = "inbound" if roll < 0.6 else ("outbound" if roll < 0.95 else "callback")
                roll = rng.random()
                if direction == "inbound":
                    status = ("answered" if roll < 0.7 else "missed" if roll < 0.85 else "dropped" if roll < 0.9
                              else "voicemail")
                else:
                    status = "answered" if roll < 0.65 else "missed"
                duration = int(rng.expovariate(1 / 180_000)) if status == "answered" else rng.randrange(60_000)
                extension = f"{owner + 1}{rng.randrange(12):02d}"
                with_events = started >= EVENTS_FROM
                ring_at = started + timedelta(milliseconds=rng.randrange(500, 4_000))
                answered_at = (ring_at + timedelta(milliseconds=int(rng.expovariate(1 / 15_000))))
                ring_end = ring_at + timedelta(milliseconds=rng.randrange(1_000, 40_000))
                ended = started + timedelta(milliseconds=duration)
                external_id = f"c{n}"
                row = (integration, external_id, number_ids[number], direction, status, "x", "+17185550123",
                       "+12125551000", started, answered_at if with_events and status == "answered" else None,
                       ended, duration, extension, raw, END)
                call_buf.write("\t".join(map(_copy_value, row)) + "\n")
                if not with_events:
                    continue
                if direction == "inbound":
                    script = [("IncomingCallRinging", ring_at, extension)]
                    if status == "answered":
                        script.append(("IncomingCallConnected", answered_at, extension))
                    else:
                        script.append(("IncomingCallStopRinging", ring_end, extension))
                    script.append(("IncomingCallCompleted", max(ended, ring_end), None))
                else:
                    script = [("OutgoingCallConnected", answered_at, extension), ("OutgoingCallCompleted", ended, None)]
                for k, (kind, at, ext) in enumerate(script):
                    values = (integration, f"{external_id}-{k}", external_id, number_ids[number], kind, ext, at, "{}")
                    event_buf.write("\t".join(map(_copy_value, values)) + "\n")
                    written_events += 1
            call_buf.seek(0)
            event_buf.seek(0)
            cursor.copy_expert(f"COPY calls ({', '.join(call_columns)}) FROM STDIN", call_buf)
            cursor.copy_expert(f"COPY call_events ({', '.join(event_columns)}) FROM STDIN", event_buf)
            raw_conn.commit()
            say(f"{min(first + batch, calls):,} calls, {written_events:,} events")
    finally:
        raw_conn.close()
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    return calls, written_events


# Hand-written queries


_WAITS = """
  SELECT c.*,
         CASE WHEN c.direction = 'inbound' AND c.status = 'answered'
                THEN round(extract(epoch FROM c.answered_at - c.started_at) * 1000)
              WHEN c.direction = 'inbound' THEN r.ring_ms END AS wait_ms
  FROM calls c
  LEFT JOIN LATERAL (
    SELECT round(extract(epoch FROM
             coalesce(max(e.occurred_at) FILTER (WHERE lower(e.event_type) LIKE '%stopringing'),
                      min(e.occurred_at) FILTER (WHERE lower(e.event_type) LIKE '%completed'))
             - min(e.occurred_at) FILTER (WHERE lower(e.event_type) LIKE '%ringing'
                                            AND lower(e.event_type) NOT LIKE '%stopringing')) * 1000) AS ring_ms
    FROM call_events e
    WHERE c.direction = 'inbound' AND c.status <> 'answered'
      AND e.integration_id = c.integration_id AND e.call_external_id = c.external_id
      AND EXISTS (SELECT 1 FROM number_assignments a WHERE a.org_id = :org AND a.phone_number_id = e.phone_number_id
                  AND a.assigned_at <= e.occurred_at AND (a.unassigned_at IS NULL OR a.unassigned_at > e.occurred_at))
  ) r ON true
  WHERE c.started_at >= :start AND c.started_at < :end
    AND EXISTS (SELECT 1 FROM number_assignments a WHERE a.org_id = :org AND a.phone_number_id = c.phone_number_id
                AND a.assigned_at <= c.started_at AND (a.unassigned_at IS NULL OR a.unassigned_at > c.started_at))
"""

_AGGREGATES = """
  count(*) AS total_calls,
  count(*) FILTER (WHERE direction = 'inbound') AS inbound_calls,
  count(*) FILTER (WHERE direction IN ('outbound', 'callback')) AS outbound_calls,
  count(*) FILTER (WHERE direction = 'inbound' AND status = 'answered') AS answered_calls,
  count(*) FILTER (WHERE direction = 'inbound' AND status IN ('missed', 'dropped')) AS missed_calls,
  count(*) FILTER (WHERE direction = 'inbound' AND status = 'dropped') AS dropped_calls,
  count(*) FILTER (WHERE direction = 'inbound' AND status = 'voicemail') AS voicemail_calls,
  avg(duration_ms) FILTER (WHERE status = 'answered') / 1000 AS avg_talk_seconds,
  sum(duration_ms) FILTER (WHERE status = 'answered') / 1000 AS total_talk_seconds,
  avg(wait_ms) FILTER (WHERE direction = 'inbound' AND status = 'answered') / 1000 AS avg_speed_of_answer_seconds,
  count(wait_ms) FILTER (WHERE direction = 'inbound') AS sample,
  count(*) FILTER (WHERE direction = 'inbound' AND status IN ('missed', 'dropped') AND wait_ms < :short_ms) AS short,
  count(*) FILTER (WHERE direction = 'inbound' AND status IN ('missed', 'dropped')
                   AND wait_ms >= :short_ms) AS abandons,
  count(*) FILTER (WHERE direction = 'inbound' AND status = 'answered' AND wait_ms <= :threshold_ms) AS within,
  max(wait_ms) FILTER (WHERE direction = 'inbound') / 1000 AS longest_wait_seconds
"""

HAND_SUMMARY = f"""
WITH c AS MATERIALIZED ({_WAITS})
SELECT {_AGGREGATES},
  (SELECT extract(hour FROM started_at AT TIME ZONE :tz) AS h FROM c WHERE direction = 'inbound'
   GROUP BY h ORDER BY count(*) DESC, h LIMIT 1) AS busiest_hour
FROM c
"""

HAND_SERIES = f"""
WITH c AS ({_WAITS}),
days AS (SELECT generate_series(date_trunc('day', CAST(:start AS timestamptz) AT TIME ZONE :tz),
                                CAST(:end AS timestamptz) AT TIME ZONE :tz - interval '1 microsecond',
                                interval '1 day') AS day),
per_day AS (SELECT date_trunc('day', started_at AT TIME ZONE :tz) AS day, {_AGGREGATES} FROM c GROUP BY 1)
SELECT days.day, per_day.* FROM days LEFT JOIN per_day USING (day) ORDER BY days.day
"""

HAND_AGENTS = f"""
WITH c AS MATERIALIZED ({_WAITS}),
rings AS (SELECT e.extension, count(*) AS missed_rings FROM c
          JOIN call_events e ON e.integration_id = c.integration_id AND e.call_external_id = c.external_id
          WHERE lower(e.event_type) LIKE '%stopringing' AND e.extension <> ''
            AND EXISTS (SELECT 1 FROM number_assignments a WHERE a.org_id = :org
                        AND a.phone_number_id = e.phone_number_id AND a.assigned_at <= e.occurred_at
                        AND (a.unassigned_at IS NULL OR a.unassigned_at > e.occurred_at))
          GROUP BY e.extension),
per_agent AS (SELECT agent_extension AS extension, count(*) AS calls_handled,
                     count(*) FILTER (WHERE direction = 'inbound' AND status = 'answered') AS answered_calls,
                     sum(duration_ms) FILTER (WHERE status = 'answered') / 1000 AS total_talk_seconds,
                     avg(duration_ms) FILTER (WHERE status = 'answered') / 1000 AS avg_talk_seconds
              FROM c WHERE agent_extension <> '' GROUP BY agent_extension)
SELECT * FROM per_agent FULL JOIN rings USING (extension) ORDER BY extension
"""


# Probes: what would meet the targets the engine misses (hand-written SQL on a changed schema)


PROBE_SETUP = (
    # 1. Ring time kept on the call row (the webhook processing would write it with answered_at).
    "ALTER TABLE calls ADD COLUMN IF NOT EXISTS ring_ms bigint",
    """UPDATE calls c SET ring_ms = r.ring_ms FROM (
         SELECT integration_id, call_external_id, round(extract(epoch FROM
             coalesce(max(occurred_at) FILTER (WHERE lower(event_type) LIKE '%stopringing'),
                      min(occurred_at) FILTER (WHERE lower(event_type) LIKE '%completed'))
             - min(occurred_at) FILTER (WHERE lower(event_type) LIKE '%ringing'
                                          AND lower(event_type) NOT LIKE '%stopringing')) * 1000) AS ring_ms
         FROM call_events GROUP BY 1, 2) r
       WHERE r.integration_id = c.integration_id AND r.call_external_id = c.external_id
         AND c.direction = 'inbound' AND c.status <> 'answered'""",
    "DROP INDEX ix_calls_number_started",
    """CREATE INDEX ix_calls_number_started ON calls (phone_number_id, started_at) INCLUDE
       (direction, status, duration_ms, answered_at, agent_extension, integration_id, external_id, ring_ms)""",
    # 2. An hourly rollup per number of the same partial aggregates, on top of 1.
    "DROP TABLE IF EXISTS calls_hourly",
    """CREATE TABLE calls_hourly AS
       WITH c AS (SELECT *, CASE WHEN direction = 'inbound' AND status = 'answered'
                                   THEN round(extract(epoch FROM answered_at - started_at) * 1000)
                                 WHEN direction = 'inbound' THEN ring_ms END AS wait_ms FROM calls)
       SELECT phone_number_id, floor(date_part('epoch', started_at) / 3600)::bigint AS hour,
              {aggregates}
       FROM c GROUP BY 1, 2""",
    "ALTER TABLE calls_hourly ADD PRIMARY KEY (phone_number_id, hour)",
    "VACUUM ANALYZE calls",
    "VACUUM ANALYZE calls_hourly",
)

_PARTIAL_AGGREGATES = """
  count(*) AS total_calls, count(*) FILTER (WHERE direction = 'inbound') AS inbound_calls,
  count(*) FILTER (WHERE direction = 'inbound' AND status = 'answered') AS answered_calls,
  count(*) FILTER (WHERE direction = 'inbound' AND status IN ('missed', 'dropped')) AS missed_calls,
  count(*) FILTER (WHERE direction = 'inbound' AND status = 'voicemail') AS voicemail_calls,
  count(duration_ms) FILTER (WHERE status = 'answered') AS talk_known,
  sum(duration_ms) FILTER (WHERE status = 'answered') AS talk_ms,
  count(wait_ms) FILTER (WHERE direction = 'inbound' AND status = 'answered') AS asa_n,
  sum(wait_ms) FILTER (WHERE direction = 'inbound' AND status = 'answered') AS asa_ms,
  count(wait_ms) FILTER (WHERE direction = 'inbound') AS sample,
  count(*) FILTER (WHERE direction = 'inbound' AND status IN ('missed', 'dropped') AND wait_ms < 5000) AS short,
  count(*) FILTER (WHERE direction = 'inbound' AND status IN ('missed', 'dropped') AND wait_ms >= 5000) AS abandons,
  count(*) FILTER (WHERE direction = 'inbound' AND status = 'answered' AND wait_ms <= 20000) AS within,
  max(wait_ms) FILTER (WHERE direction = 'inbound') AS longest_wait_ms
"""

# Hours wholly inside an assignment period; a real rollup would recount the hours an assignment
# change cuts from the calls themselves (the bench's move falls on a whole hour).
PROBE_ROLLUP = """
WITH h AS MATERIALIZED (
  SELECT r.* FROM calls_hourly r JOIN number_assignments a ON a.phone_number_id = r.phone_number_id AND a.org_id = :org
  WHERE r.hour >= floor(date_part('epoch', CAST(:start AS timestamptz)) / 3600)
    AND r.hour < ceil(date_part('epoch', CAST(:end AS timestamptz)) / 3600)
    AND r.hour * 3600 >= date_part('epoch', a.assigned_at)
    AND (a.unassigned_at IS NULL OR (r.hour + 1) * 3600 <= date_part('epoch', a.unassigned_at)))
SELECT sum(total_calls) AS total_calls, sum(inbound_calls) AS inbound_calls, sum(answered_calls) AS answered_calls,
       sum(talk_ms) / nullif(sum(talk_known), 0) / 1000 AS avg_talk_seconds,
       sum(asa_ms) / nullif(sum(asa_n), 0) / 1000 AS avg_speed_of_answer_seconds,
       sum(abandons)::float / nullif(sum(sample) - sum(short), 0) AS abandon_rate,
       max(longest_wait_ms) / 1000 AS longest_wait_seconds,
       (SELECT extract(hour FROM to_timestamp(hour * 3600) AT TIME ZONE :tz) AS local_hour FROM h
        GROUP BY 1 ORDER BY sum(inbound_calls) DESC, 1 LIMIT 1) AS busiest_hour
FROM h
"""


def probe(org_id: int, runs: int) -> list[tuple[str, list[float]]]:
    """Time the two designs that would meet the targets, on this database (its schema is changed)."""
    say("probes: storing ring times on calls, building an hourly rollup")
    db.session.rollback()  # release the measured transaction's locks before altering the table
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for statement in PROBE_SETUP:
            conn.execute(text(statement.replace("{aggregates}", _PARTIAL_AGGREGATES)))
    org = db.session.get(Organization, org_id)
    tz = metrics.org_zone(org)
    results = []
    with ring_time_on_the_call_row():
        for days in (30, 365):
            window = Window(END - timedelta(days=days), END, tz)
            samples, _ = timed(lambda window=window: metrics.summary(org, window), runs)
            results.append((f"engine, ring time read from the call row: summary, {days} days", samples))
    db.session.execute(text("SET LOCAL jit = off"))
    bound = {"org": org_id, "tz": org.timezone, "start": END - timedelta(days=365), "end": END}
    samples, _ = timed(lambda: db.session.execute(text(PROBE_ROLLUP), bound).all(), runs)
    results.append(("hourly rollup (hand-written): summary, 365 days", samples))
    return results


@contextmanager
def ring_time_on_the_call_row():
    """The engine as it would be with `calls.ring_ms` kept by the webhook processing: its statement
    without the join to the events, reading the ring time from the call row instead."""
    original = metrics._grouped

    def grouped(org, window, filters, key):
        metrics._require_scope(org)
        wait = case((and_(Call.direction == "inbound", Call.status == "answered"),
                     metrics._MillisBetween(Call.answered_at, Call.started_at)),
                    (Call.direction == "inbound", literal_column("calls.ring_ms")))
        statement = (select(key, *metrics._aggregates(wait, org)).select_from(Call)
                     .where(*metrics._call_criteria(window, filters)).group_by(key))
        return {k: metrics._Parts(*values) for k, *values in metrics._execute(statement)}

    metrics._grouped = grouped
    try:
        yield
    finally:
        metrics._grouped = original


# Timing


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def timed(fn, runs: int) -> tuple[list[float], object]:
    result = fn()  # warm-up: plans, caches
    samples = []
    for _ in range(runs):
        begin = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - begin) * 1000)
    return samples, result


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor() or "unknown")
    version = db.session.scalar(text("SHOW server_version"))
    return (f"{len(os.sched_getaffinity(0))} cores ({model}), PostgreSQL {version}, Python "
            f"{platform.python_version()}, SQLAlchemy {sqlalchemy.__version__}, psycopg2 "
            f"{psycopg2.__version__.split()[0]}")


def measure(org_id: int, runs: int) -> list[tuple]:
    org = db.session.get(Organization, org_id)
    tz = metrics.org_zone(org)
    last_30 = Window(END - timedelta(days=30), END, tz)
    last_365 = Window(END - timedelta(days=365), END, tz)
    params = {"org": org_id, "tz": org.timezone, "short_ms": org.short_abandon_seconds * 1000,
              "threshold_ms": org.service_level_threshold_seconds * 1000}

    def hand(sql: str, window: Window):
        bound = {**params, "start": window.start, "end": window.end}
        return lambda: db.session.execute(text(sql), bound).mappings().all()

    # The engine turns JIT off for its transaction (see vsync.metrics); the hand-written queries run
    # with it off too, so the comparison is of the queries alone.
    db.session.execute(text("SET LOCAL jit = off"))
    cases = [
        ("summary, 30 days", lambda: metrics.summary(org, last_30), hand(HAND_SUMMARY, last_30), TARGET_30_MS),
        ("summary, 365 days", lambda: metrics.summary(org, last_365), hand(HAND_SUMMARY, last_365), TARGET_365_MS),
        ("daily series, 30 days", lambda: metrics.series(org, last_30, "day"), hand(HAND_SERIES, last_30),
         TARGET_30_MS),
        ("by_agent, 30 days", lambda: metrics.by_agent(org, last_30), hand(HAND_AGENTS, last_30), None),
    ]
    rows = []
    for name, engine_fn, hand_fn, target in cases:
        say(name)
        engine_ms, engine_result = timed(engine_fn, runs)
        hand_ms, hand_result = timed(hand_fn, runs)
        rows.append((name, engine_ms, hand_ms, target, agree(name, engine_result, hand_result)))
    return rows


def agree(name: str, engine, hand) -> bool:
    """The engine and the hand-written query computed the same figures."""
    def close(a, b) -> bool:
        if a is None or b is None:
            return a is None and b is None
        return abs(float(a) - float(b)) <= 1e-6 * max(1.0, abs(float(b)))

    keys = ("total_calls", "inbound_calls", "answered_calls", "missed_calls", "voicemail_calls",
            "avg_talk_seconds", "avg_speed_of_answer_seconds", "longest_wait_seconds")
    if name.startswith("summary"):
        (row,) = hand
        denominator = row["sample"] - row["short"]
        return (all(close(engine[k], row[k]) for k in keys)
                and close(engine["abandon_rate"], row["abandons"] / denominator)
                and close(engine["service_level"], row["within"] / denominator)
                and engine["busiest_hour"] == int(row["busiest_hour"]))
    if name.startswith("daily"):
        return len(engine) == len(hand) and all(
            close(b["total_calls"], h["total_calls"] or 0) and close(b["answered_calls"], h["answered_calls"] or 0)
            and close(b["avg_speed_of_answer_seconds"], h["avg_speed_of_answer_seconds"])
            for b, h in zip(engine, hand, strict=False))
    return len(engine) == len(hand) and all(
        b["extension"] == h["extension"] and b["calls_handled"] == (h["calls_handled"] or 0)
        and b["missed_rings"] == (h["missed_rings"] or 0) and close(b["avg_talk_seconds"], h["avg_talk_seconds"])
        for b, h in zip(engine, hand, strict=False))


def report(rows: list[tuple], header: str, runs: int) -> bool:
    print(header)
    print(f"{runs} timed runs each after one warm-up; milliseconds\n")
    print("| figure | engine p50 | engine p95 | hand SQL p50 | hand SQL p95 | p95 ratio | same figures | target |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- | --- |")
    passed = True
    for name, engine_ms, hand_ms, target, same in rows:
        e95, h95 = percentile(engine_ms, 0.95), percentile(hand_ms, 0.95)
        ratio = e95 / h95
        if target is None:
            verdict = "-"
        else:
            ok = e95 <= target and (target == TARGET_365_MS or ratio <= TARGET_RATIO)
            rule = f"<= {target:.0f} ms" + ("" if target == TARGET_365_MS else f", <= {TARGET_RATIO:.0f}x")
            verdict = f"{'PASS' if ok else 'MISS'} ({rule})"
            passed &= ok
        passed &= same
        print(f"| {name} | {percentile(engine_ms, 0.5):.1f} | {e95:.1f} | {percentile(hand_ms, 0.5):.1f} | "
              f"{h95:.1f} | {ratio:.2f}x | {'yes' if same else 'NO'} | {verdict} |")
    return passed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.metrics_latency",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--reuse", action="store_true")
    parser.add_argument("--probe", action="store_true")
    args = parser.parse_args(argv)

    if not args.reuse:
        recreate_database(args.database_url)
    app = create_app({"VSYNC_ENV": "development", "SQLALCHEMY_DATABASE_URI": args.database_url, "REDIS_URL": None,
                      "SECRET_KEY": "bench-secret-key", "VSYNC_ENCRYPTION_KEYS": [Fernet.generate_key().decode()],
                      "VSYNC_LOG_LEVEL": "WARNING"})
    try:
        with app.app_context():
            if args.reuse:
                org_ids = list(db.session.scalars(text("SELECT id FROM organizations ORDER BY id")))
                written = db.session.execute(text("SELECT (SELECT count(*) FROM calls), "
                                                  "(SELECT count(*) FROM call_events)")).one()
            else:
                upgrade()
                org_ids, integrations, number_ids = setup_world()
                begin = time.perf_counter()
                written = generate(args.calls, integrations, number_ids)
                say(f"generated in {time.perf_counter() - begin:.0f} s")
            header = (f"Machine: {machine()}\nLoad average before timing: "
                      f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}\n"
                      f"Data: {written[0]:,} calls, {written[1]:,} events; org '{ORGS[0][0]}' ({ORGS[0][1]})")
            with tenant(org_ids[0]):
                rows = measure(org_ids[0], args.runs)
            with tenant(org_ids[0]):
                probes = probe(org_ids[0], args.runs) if args.probe else []
                org_calls = db.session.scalar(text(
                    "SELECT count(*) FROM calls c WHERE EXISTS (SELECT 1 FROM number_assignments a WHERE "
                    "a.org_id = :org AND a.phone_number_id = c.phone_number_id AND a.assigned_at <= c.started_at "
                    "AND (a.unassigned_at IS NULL OR a.unassigned_at > c.started_at))"), {"org": org_ids[0]})
            db.session.remove()
            db.engine.dispose()
        passed = report(rows, f"{header} has {org_calls:,} of them", args.runs)
        if probes:
            print("\nWhat would meet the targets (on a changed schema; milliseconds)\n")
            print("| design | p50 | p95 |\n| --- | ---: | ---: |")
            for name, samples in probes:
                print(f"| {name} | {percentile(samples, 0.5):.1f} | {percentile(samples, 0.95):.1f} |")
    finally:
        if not args.keep:
            recreate_database(args.database_url, drop_only=True)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
