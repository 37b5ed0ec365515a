"""KPI engine latency at a million calls, each figure beside one hand-written SQL query computing it.

    .venv/bin/python -m bench.metrics_latency [--calls 1000000] [--runs 30] [--database-url URL] [--keep]
                                              [--reuse] [--probe]

--calls         calls to generate (default 1,000,000) over 12 months
--runs          timed runs of each figure, after one warm-up run (default 30)
--database-url  a PostgreSQL URL whose database is DROPPED, recreated and, unless --keep, dropped at
                the end (default postgresql://postgres@127.0.0.1:5432/vsync_bench_metrics)
--keep          keep the database (then --reuse skips generation on the next run)
--reuse         use the database as it is (made by an earlier run with --keep)
--probe         then add an hourly rollup table and time a 365-day summary from it (hand-written SQL)

The data set is bench.common's (`generate`): a million calls of 3 orgs over 12 months.

Measured for the largest org (the first), inside its tenant scope as the API runs them:
`summary` over the last 30 and 365 days, daily `series` over 30 days and `by_agent` over 30 days,
each against one hand-written PostgreSQL query that computes the same figures (time zones with
AT TIME ZONE, ring times from the call row), run on the same connection. Both sides are
checked to agree before timing; both run with JIT off, as the engine sets it. Targets (p95): 30-day
summary and series <= 100 ms and <= 2x the hand-written query; 365-day summary <= 500 ms. The load
average is printed: other work on the machine skews every figure.

With --probe it then measures what would meet the 365-day target that plain indexed queries miss:
an hourly per-number rollup of the same partial aggregates (hand-written SQL on a table the probe
builds).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import timedelta

from flask_migrate import upgrade
from sqlalchemy import text

from bench.common import (
    END,
    HAND_AGENTS,
    HAND_SERIES,
    HAND_SUMMARY,
    ORGS,
    bench_app,
    generate,
    machine,
    percentile,
    recreate_database,
    say,
    setup_world,
    timed,
)
from vsync import metrics
from vsync.extensions import db
from vsync.models import Organization
from vsync.query import Window, org_zone
from vsync.tenancy import tenant

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/vsync_bench_metrics"
TARGET_30_MS, TARGET_365_MS, TARGET_RATIO = 100.0, 500.0, 2.0


# Probes: what would meet the targets the engine misses (hand-written SQL on a changed schema)


PROBE_SETUP = (
    # An hourly rollup per number of the same partial aggregates.
    "DROP TABLE IF EXISTS calls_hourly",
    """CREATE TABLE calls_hourly AS
       WITH c AS (SELECT *, CASE WHEN direction = 'inbound' AND status = 'answered'
                                   THEN round(extract(epoch FROM answered_at - started_at) * 1000)
                                 WHEN direction = 'inbound' THEN ring_ms END AS wait_ms FROM calls)
       SELECT phone_number_id, floor(date_part('epoch', started_at) / 3600)::bigint AS hour,
              {aggregates}
       FROM c GROUP BY 1, 2""",
    "ALTER TABLE calls_hourly ADD PRIMARY KEY (phone_number_id, hour)",
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
    """Time a 365-day summary from an hourly rollup, on this database (a table is added)."""
    say("probe: building an hourly rollup")
    db.session.rollback()
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for statement in PROBE_SETUP:
            conn.execute(text(statement.replace("{aggregates}", _PARTIAL_AGGREGATES)))
    org = db.session.get(Organization, org_id)
    db.session.execute(text("SET LOCAL jit = off"))
    bound = {"org": org_id, "tz": org.timezone, "start": END - timedelta(days=365), "end": END}
    samples, _ = timed(lambda: db.session.execute(text(PROBE_ROLLUP), bound).all(), runs)
    return [("hourly rollup (hand-written): summary, 365 days", samples)]


# Measuring


def measure(org_id: int, runs: int) -> list[tuple]:
    org = db.session.get(Organization, org_id)
    tz = org_zone(org)
    last_30 = Window(END - timedelta(days=30), END, tz)
    last_365 = Window(END - timedelta(days=365), END, tz)
    params = {
        "org": org_id,
        "tz": org.timezone,
        "short_ms": org.short_abandon_seconds * 1000,
        "threshold_ms": org.service_level_threshold_seconds * 1000,
    }

    def hand(sql: str, window: Window):
        bound = {**params, "start": window.start, "end": window.end}
        return lambda: db.session.execute(text(sql), bound).mappings().all()

    # The engine turns JIT off for its transaction (see vsync.metrics); the hand-written queries run
    # with it off too, so the comparison is of the queries alone.
    db.session.execute(text("SET LOCAL jit = off"))
    cases = [
        ("summary, 30 days", lambda: metrics.summary(org, last_30), hand(HAND_SUMMARY, last_30), TARGET_30_MS),
        ("summary, 365 days", lambda: metrics.summary(org, last_365), hand(HAND_SUMMARY, last_365), TARGET_365_MS),
        (
            "daily series, 30 days",
            lambda: metrics.series(org, last_30, "day"),
            hand(HAND_SERIES, last_30),
            TARGET_30_MS,
        ),
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

    keys = (
        "total_calls",
        "inbound_calls",
        "answered_calls",
        "missed_calls",
        "voicemail_calls",
        "avg_talk_seconds",
        "avg_speed_of_answer_seconds",
        "longest_wait_seconds",
    )
    if name.startswith("summary"):
        (row,) = hand
        denominator = row["sample"] - row["short"]
        return (
            all(close(engine[k], row[k]) for k in keys)
            and close(engine["abandon_rate"], row["abandons"] / denominator)
            and close(engine["service_level"], row["within"] / denominator)
            and engine["busiest_hour"] == int(row["busiest_hour"])
        )
    if name.startswith("daily"):
        return len(engine) == len(hand) and all(
            close(b["total_calls"], h["total_calls"] or 0)
            and close(b["answered_calls"], h["answered_calls"] or 0)
            and close(b["avg_speed_of_answer_seconds"], h["avg_speed_of_answer_seconds"])
            for b, h in zip(engine, hand, strict=False)
        )
    return len(engine) == len(hand) and all(
        b["extension"] == h["extension"]
        and b["calls_handled"] == (h["calls_handled"] or 0)
        and b["missed_rings"] == (h["missed_rings"] or 0)
        and close(b["avg_talk_seconds"], h["avg_talk_seconds"])
        for b, h in zip(engine, hand, strict=False)
    )


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
        print(
            f"| {name} | {percentile(engine_ms, 0.5):.1f} | {e95:.1f} | {percentile(hand_ms, 0.5):.1f} | "
            f"{h95:.1f} | {ratio:.2f}x | {'yes' if same else 'NO'} | {verdict} |"
        )
    return passed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.metrics_latency", description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--reuse", action="store_true")
    parser.add_argument("--probe", action="store_true")
    args = parser.parse_args(argv)

    if not args.reuse:
        recreate_database(args.database_url)
    app = bench_app(args.database_url)
    try:
        with app.app_context():
            if args.reuse:
                org_ids = list(db.session.scalars(text("SELECT id FROM organizations ORDER BY id")))
                written = db.session.execute(
                    text("SELECT (SELECT count(*) FROM calls), (SELECT count(*) FROM call_events)")
                ).one()
            else:
                upgrade()
                org_ids, accounts, number_ids = setup_world()
                begin = time.perf_counter()
                written = generate(args.calls, accounts, number_ids)
                say(f"generated in {time.perf_counter() - begin:.0f} s")
            header = (
                f"Machine: {machine()}\nLoad average before timing: "
                f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}\n"
                f"Data: {written[0]:,} calls, {written[1]:,} events; org '{ORGS[0][0]}' ({ORGS[0][1]})"
            )
            with tenant(org_ids[0]):
                rows = measure(org_ids[0], args.runs)
            with tenant(org_ids[0]):
                probes = probe(org_ids[0], args.runs) if args.probe else []
                org_calls = db.session.scalar(
                    text(
                        "SELECT count(*) FROM calls c WHERE EXISTS (SELECT 1 FROM number_assignments a WHERE "
                        "a.org_id = :org AND a.phone_number_id = c.phone_number_id AND a.assigned_at <= c.started_at "
                        "AND (a.unassigned_at IS NULL OR a.unassigned_at > c.started_at))"
                    ),
                    {"org": org_ids[0]},
                )
            db.session.remove()
            db.engine.dispose()
        passed = report(rows, f"{header} has {org_calls:,} of them", args.runs)
        if probes:
            print("\nWhat would meet the 365-day target (an added table; milliseconds)\n")
            print("| design | p50 | p95 |\n| --- | ---: | ---: |")
            for name, samples in probes:
                print(f"| {name} | {percentile(samples, 0.5):.1f} | {percentile(samples, 0.95):.1f} |")
    finally:
        if not args.keep:
            recreate_database(args.database_url, drop_only=True)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
