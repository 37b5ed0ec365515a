"""What the benchmarks share: each works on a database of its own, dropped and made anew; the
million-call data set of the KPI and API benchmarks, and the hand-written queries they are held to.

The data set: 3 orgs (New York, Berlin and UTC time zones), each connected to a MightyCall account of
its own, 20 numbers, a number shared by the first two orgs all year (its calls are the first org's
account's) and a number moved from the first org to the third in mid-year (each of its calls is of
the account of the org that holds it at the call's start), 12 agents per org;
calls spread over the year with business-hour peaks (inbound 60 %: 70 % answered, 15 % missed, 5 %
dropped, 10 % voicemail; outbound 35 %; callbacks 5 %), written with COPY in order of time, as syncs
and webhooks store them. Webhook events (and so `answered_at` and ring times) exist for the last six
months, as if webhooks were switched on then: Ringing, then Connected or StopRinging, then Completed
for inbound calls; Connected and Completed for outbound ones. A call with events carries what the
webhook processing derives from them (`answered_at`, `wait_ended_at`, `ring_ms`, `events_at`). Raw
payloads are ~250-byte JSON documents, so rows have a realistic width.
"""

from __future__ import annotations

import io
import json
import os
import platform
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg2
import sqlalchemy
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from vsync import create_app, crypto
from vsync.extensions import db
from vsync.mightycall.webhook_events import event_kind, ring_ms
from vsync.models import Integration
from vsync.services import numbers, orgs
from vsync.services.accounts import learn_account
from vsync.tenancy import platform_bypass

END = datetime(2026, 11, 21, tzinfo=UTC)
START = END - timedelta(days=365)
EVENTS_FROM = END - timedelta(days=182)
MOVED_AT = START + timedelta(days=182)
ORGS = (("alpha", "America/New_York"), ("bravo", "Europe/Berlin"), ("charlie", "UTC"))
# Number index -> owning org index; 19 is shared by orgs 0 and 1, 7 moves from org 0 to org 2.
OWNER = [0] * 8 + [1] * 6 + [2] * 5 + [0]
SHARED, MOVED = 19, 7
HOUR_WEIGHTS = [1, 1, 1, 1, 1, 2, 4, 8, 14, 18, 20, 20, 18, 19, 20, 18, 15, 10, 6, 4, 3, 2, 1, 1]


def say(message: str) -> None:
    print(f"  .. {message}", file=sys.stderr, flush=True)


def recreate_database(url: str, *, drop_only: bool = False) -> None:
    """Drop the database `url` names (never one you keep) and, unless `drop_only`, create it empty."""
    parsed = make_url(url)
    engine = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))
        if not drop_only:
            conn.execute(text(f'CREATE DATABASE "{parsed.database}"'))
    engine.dispose()


def peak_rss() -> int:
    """This process's peak resident size in bytes, since it was exec'd."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def bench_app(database_url: str, **overrides):
    """The real app on the bench database, jobs inline, quiet logs."""
    return create_app(
        {
            "VSYNC_ENV": "development",
            "SQLALCHEMY_DATABASE_URI": database_url,
            "REDIS_URL": None,
            "SECRET_KEY": "bench-secret-key",
            "VSYNC_ENCRYPTION_KEYS": [Fernet.generate_key().decode()],
            "VSYNC_LOG_LEVEL": "WARNING",
            **overrides,
        }
    )


# The data set


def setup_world() -> tuple[list[int], list[int], list[int]]:
    """Orgs, integrations, numbers and assignments through the domain services; returns the ids of
    the orgs, of their MightyCall accounts (one each: a distinct API key) and of the numbers."""
    with platform_bypass("bench setup"):
        org_rows = [orgs.create_org(slug.title(), slug, tz) for slug, tz in ORGS]
        db.session.flush()
        integrations = []
        for org in org_rows:
            credentials = {"api_key": f"bench-api-key-{org.slug}", "user_key": "bench-user-key"}
            integration = Integration(
                org_id=org.id, base_url="http://127.0.0.1:1/v4", credentials_encrypted=crypto.encrypt_json(credentials)
            )
            learn_account(integration)
            integrations.append(integration)
        db.session.add_all(integrations)
        number_rows = [numbers.add_number(f"+1212555{1000 + i}") for i in range(20)]
        since = START - timedelta(days=30)
        for i, number in enumerate(number_rows):
            numbers.assign_number(org_rows[OWNER[i]], number, at=since)
        numbers.assign_number(org_rows[1], number_rows[SHARED], at=since)
        numbers.unassign_number(org_rows[0], number_rows[MOVED], at=MOVED_AT)
        numbers.assign_number(org_rows[2], number_rows[MOVED], at=MOVED_AT)
        db.session.commit()
        return [o.id for o in org_rows], [i.account_id for i in integrations], [n.id for n in number_rows]


def _copy_value(value) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def generate(
    calls: int, accounts: list[int], number_ids: list[int], seed: int = 1, number_weights: list[int] | None = None
) -> tuple[int, int]:
    """COPY `calls` calls and their events; returns (calls, events) written. Calls fall on the 20
    numbers evenly, or in proportion to `number_weights`; each is of the account (`accounts`, by org)
    of the org holding its number at its start, and its events are filed under that start."""
    rng = random.Random(seed)
    span = (END - START).total_seconds()
    hours = list(range(24))
    raw = json.dumps(
        {
            "caller": {"name": "Bench Caller", "phone": "+17185550123"},
            "businessNumber": "x" * 12,
            "callFlow": "main",
            "notes": "a typical provider payload of a few hundred bytes " * 3,
        }
    )
    call_columns = (
        "account_id",
        "external_id",
        "phone_number_id",
        "direction",
        "status",
        "provider_status",
        "from_number",
        "to_number",
        "started_at",
        "answered_at",
        "wait_ended_at",
        "ring_ms",
        "ended_at",
        "duration_ms",
        "agent_extension",
        "raw",
        "synced_at",
        "events_at",
    )
    event_columns = (
        "account_id",
        "guid",
        "call_external_id",
        "phone_number_id",
        "event_type",
        "kind",
        "extension",
        "occurred_at",
        "call_started_at",
        "raw",
    )
    days = round(span / 86400)

    def starts():
        """Every call's start in order of time, as syncs and webhooks store them (rows of one period sit
        on neighbouring pages), one day at a time: memory holds a day of calls, at any size."""
        for day in range(days):
            count = (day + 1) * calls // days - day * calls // days
            yield from sorted(
                START + timedelta(days=day, hours=hour, milliseconds=rng.randrange(3_600_000))
                for hour in rng.choices(hours, HOUR_WEIGHTS, k=count)
            )

    raw_conn = db.engine.raw_connection()
    written_events = 0
    started_at = starts()
    try:
        cursor = raw_conn.cursor()
        batch = 100_000
        for first in range(0, calls, batch):
            call_buf, event_buf = io.StringIO(), io.StringIO()
            for n in range(first, min(first + batch, calls)):
                number = rng.choices(range(20), number_weights)[0] if number_weights else rng.randrange(20)
                started = next(started_at)
                owner = (0 if started < MOVED_AT else 2) if number == MOVED else OWNER[number]
                account = accounts[owner]
                roll = rng.random()
                direction = "inbound" if roll < 0.6 else ("outbound" if roll < 0.95 else "callback")
                roll = rng.random()
                if direction == "inbound":
                    status = (
                        "answered"
                        if roll < 0.7
                        else "missed"
                        if roll < 0.85
                        else "dropped"
                        if roll < 0.9
                        else "voicemail"
                    )
                else:
                    status = "answered" if roll < 0.65 else "missed"
                duration = int(rng.expovariate(1 / 180_000)) if status == "answered" else rng.randrange(60_000)
                extension = f"{owner + 1}{rng.randrange(12):02d}"
                with_events = started >= EVENTS_FROM
                ring_at = started + timedelta(milliseconds=rng.randrange(500, 4_000))
                answered_at = ring_at + timedelta(milliseconds=int(rng.expovariate(1 / 15_000)))
                ring_end = ring_at + timedelta(milliseconds=rng.randrange(1_000, 40_000))
                ended = started + timedelta(milliseconds=duration)
                external_id = f"c{n}"
                script = []
                if with_events and direction == "inbound":
                    script = [("IncomingCallRinging", ring_at, extension)]
                    if status == "answered":
                        script.append(("IncomingCallConnected", answered_at, extension))
                    else:
                        script.append(("IncomingCallStopRinging", ring_end, extension))
                    script.append(("IncomingCallCompleted", max(ended, ring_end), None))
                elif with_events:
                    script = [("OutgoingCallConnected", answered_at, extension), ("OutgoingCallCompleted", ended, None)]
                kinds = [(event_kind(kind), at) for kind, at, _ in script]
                answered = answered_at if script and status == "answered" else None
                row = (
                    account,
                    external_id,
                    number_ids[number],
                    direction,
                    status,
                    "x",
                    "+17185550123",
                    "+12125551000",
                    started,
                    answered,
                    answered or (script[-1][1] if script else None),
                    ring_ms(kinds),
                    ended,
                    duration,
                    extension,
                    raw,
                    END,
                    script[-1][1] if script else None,
                )
                call_buf.write("\t".join(map(_copy_value, row)) + "\n")
                for k, (kind, at, ext) in enumerate(script):
                    values = (
                        account,
                        f"{external_id}-{k}",
                        external_id,
                        number_ids[number],
                        kind,
                        event_kind(kind),
                        ext,
                        at,
                        started,
                        "{}",
                    )
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


# Hand-written queries (PostgreSQL), each computing one figure of the engine in one statement


_WAITS = """
  SELECT c.*,
         CASE WHEN c.direction = 'inbound' AND c.status = 'answered'
                THEN round(extract(epoch FROM c.answered_at - c.started_at) * 1000)
              WHEN c.direction = 'inbound' THEN c.ring_ms END AS wait_ms
  FROM calls c
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

# An agent is an extension of one of the org's own accounts; a call event is filed under its call's start.
HAND_AGENTS = f"""
WITH c AS MATERIALIZED ({_WAITS}),
own AS (SELECT account_id FROM integrations WHERE org_id = :org),
rings AS (SELECT e.extension, count(*) AS missed_rings FROM c
          JOIN call_events e ON e.account_id = c.account_id AND e.call_external_id = c.external_id
          WHERE lower(e.event_type) LIKE '%stopringing' AND e.extension <> ''
            AND e.account_id IN (SELECT account_id FROM own)
            AND EXISTS (SELECT 1 FROM number_assignments a WHERE a.org_id = :org
                        AND a.phone_number_id = e.phone_number_id AND a.assigned_at <= e.call_started_at
                        AND (a.unassigned_at IS NULL OR a.unassigned_at > e.call_started_at))
          GROUP BY e.extension),
per_agent AS (SELECT agent_extension AS extension, count(*) AS calls_handled,
                     count(*) FILTER (WHERE direction = 'inbound' AND status = 'answered') AS answered_calls,
                     sum(duration_ms) FILTER (WHERE status = 'answered') / 1000 AS total_talk_seconds,
                     avg(duration_ms) FILTER (WHERE status = 'answered') / 1000 AS avg_talk_seconds
              FROM c WHERE agent_extension <> '' AND account_id IN (SELECT account_id FROM own)
              GROUP BY agent_extension)
SELECT * FROM per_agent FULL JOIN rings USING (extension) ORDER BY extension
"""


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
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown",
    )
    version = db.session.scalar(text("SHOW server_version"))
    return (
        f"{len(os.sched_getaffinity(0))} cores ({model}), PostgreSQL {version}, Python "
        f"{platform.python_version()}, SQLAlchemy {sqlalchemy.__version__}, psycopg2 "
        f"{psycopg2.__version__.split()[0]}"
    )
