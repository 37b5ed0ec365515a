"""API latency at a million calls, through the real Flask app, each figure beside one hand-written SQL query.

    .venv/bin/python -m bench.api_latency [--calls 1000000] [--runs 30] [--database-url URL] [--keep] [--reuse]
    .venv/bin/python -m bench.api_latency --curve 100000,1000000,10000000 [--runs 30]
    .venv/bin/python -m bench.api_latency --reuse --compare [--runs 30]

--calls         calls to generate (default 1,000,000; 10,000,000 works: generation streams a day of calls
                at a time through COPY, in bounded memory) over 12 months, then rolled up as
                `flask rollups rebuild` does after a bulk load
--curve         the metrics figures only (p95), on a database generated anew at each size: the scale curve
--compare       (on a kept database) each metrics figure through the rollups and from rows alone, in turn
--runs          timed requests of each figure, after one warm-up request (default 30)
--database-url  a PostgreSQL URL whose database is DROPPED, recreated and, unless --keep, dropped at
                the end (default postgresql://postgres@127.0.0.1:5432/vsync_bench_api)
--keep          keep the database (then --reuse skips generation on the next run)
--reuse         use the database as it is (made by an earlier run with --keep)

The data set is bench.common's (`generate`), with the first org's numbers three times as busy as the
others, so that org holds about two thirds of the calls and its list is deeper than 500,000.

Requests go through the app's test client with a platform API key (`Authorization: Bearer …`), so
they pass authentication, the org resolver, the tenant scope, validation, rate limiting (with a limit
the bench cannot reach) and serialisation, as a real request does minus the HTTP server. Measured for
the largest org: `GET /api/v1/orgs/<org>/metrics` over the last 30 and 365 local days,
`/metrics/series?bucket=day` and `/metrics/agents` over 30 days, and a `/calls?limit=50` page at depth
0 and at depth 500,000 (reached by following `next_cursor` with the largest page the route accepts;
then the page from there is timed). Beside each, one hand-written PostgreSQL query computing the same
answer, run directly on a connection of its own (JIT off, as the KPI engine runs), and the ratio of the
p95s. A route the app does not have yet is reported as missing and its row skipped.

Then the CSV export of every call of the largest org (`/calls?format=csv`) runs in a fresh child
process that serves it through the test client and counts the streamed rows: its rows/s, and its peak
RSS (the serving process's own, VmHWM: `ru_maxrss` would carry the forking bench's size over),
beside `COPY (SELECT …) TO STDOUT (FORMAT csv)` of the same rows. Targets: 30-day metrics and
series p95 <= 50 ms; 365-day metrics p95 <= 150 ms; metrics/agents and metrics/numbers <= 100 ms; calls
page p95 <= 30 ms at any depth; CSV >= 50,000 rows/s with RSS < 200 MB.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import text

from bench.common import (
    END,
    HAND_AGENTS,
    HAND_SERIES,
    HAND_SUMMARY,
    ORGS,
    OWNER,
    START,
    bench_app,
    generate,
    load_average,
    machine,
    peak_rss,
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
from vsync.services import rollups
from vsync.services.keys import create_api_key
from vsync.tenancy import platform_bypass

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/vsync_bench_api"
ORG = ORGS[0][0]
NUMBER_WEIGHTS = [3 if owner == 0 else 1 for owner in OWNER]
DEPTH = 500_000
PAGE = 50
TARGET_30_MS, TARGET_365_MS, TARGET_BREAKDOWN_MS, TARGET_PAGE_MS, TARGET_RATIO = 50.0, 150.0, 100.0, 30.0, 2.0
TARGET_CSV_ROWS_S, TARGET_CSV_RSS_MB = 50_000, 200
# Flask-Limiter stays in the path, with a read limit the bench's requests cannot reach.
APP_OVERRIDES = {"VSYNC_RATE_LIMIT_READ": "100000000 per minute"}

_VISIBLE = """EXISTS (SELECT 1 FROM number_assignments a WHERE a.org_id = :org
                  AND a.phone_number_id = c.phone_number_id AND a.assigned_at <= c.started_at
                  AND (a.unassigned_at IS NULL OR a.unassigned_at > c.started_at))"""
CALL_COLUMNS = (
    "c.id, c.external_id, c.direction, c.status, c.from_number, c.to_number, c.started_at, "
    "c.answered_at, c.ended_at, c.duration_ms, c.agent_extension, c.phone_number_id"
)
_IN_WINDOW = "c.started_at >= :start AND c.started_at < :end"
HAND_PAGE = f"""
SELECT {CALL_COLUMNS} FROM calls c
WHERE {_IN_WINDOW} AND {_VISIBLE} AND (c.started_at, c.id) < (:after_started, :after_id)
ORDER BY c.started_at DESC, c.id DESC LIMIT {PAGE + 1}
"""
HAND_KEY_AT_DEPTH = f"""
SELECT c.started_at, c.id FROM calls c WHERE {_IN_WINDOW} AND {_VISIBLE} ORDER BY c.started_at DESC, c.id DESC
OFFSET :depth LIMIT 1
"""
HAND_CSV = (
    f"COPY (SELECT {CALL_COLUMNS} FROM calls c WHERE {_IN_WINDOW} AND {_VISIBLE} "
    "ORDER BY c.started_at DESC, c.id DESC) TO STDOUT (FORMAT csv, HEADER)"
)


@dataclass
class Row:
    name: str
    api_ms: list[float] | None = None
    sql_ms: list[float] | None = None
    target: str = "-"
    passed: bool | None = None
    note: str = ""


class Api:
    """The app's test client with the bench's key, and what the app routes."""

    def __init__(self, app: Flask, key: str) -> None:
        self.client = app.test_client()
        self.headers = {"Authorization": f"Bearer {key}"}
        self.rules = {rule.rule for rule in app.url_map.iter_rules()}

    def has(self, rule: str) -> bool:
        return rule in self.rules

    def get(self, path: str, **params) -> Any:
        response = self.client.get(path, query_string=params, headers=self.headers)
        if response.status_code != 200:
            raise RuntimeError(f"GET {path} {params} answered {response.status_code}: {response.get_data(True)[:300]}")
        return response.get_json()


# Setting up


def make_key(app: Flask) -> str:
    with app.app_context(), platform_bypass("bench key"):
        _, plaintext = create_api_key(org_id=None, name="api latency bench", scopes="read")
        db.session.commit()
    return plaintext


def build(args) -> tuple[Flask, str, tuple[int, int]]:
    if not args.reuse:
        recreate_database(args.database_url)
    app = bench_app(args.database_url, **APP_OVERRIDES)
    with app.app_context():
        if args.reuse:
            written = db.session.execute(
                text("SELECT (SELECT count(*) FROM calls), (SELECT count(*) FROM call_events)")
            ).one()
        else:
            upgrade()
            _, accounts, number_ids = setup_world()
            begin = time.perf_counter()
            written = generate(args.calls, accounts, number_ids, number_weights=NUMBER_WEIGHTS)
            say(f"generated in {time.perf_counter() - begin:.0f} s")
            roll_up()
        db.session.remove()
    return app, make_key(app), tuple(written)


def roll_up() -> None:
    """Make the rollups of the whole data set, as `flask rollups rebuild` does after a bulk load."""
    begin = time.perf_counter()
    with platform_bypass("bench: rollups of the bulk load"):
        result = rollups.rebuild(START - timedelta(days=31), END + timedelta(days=1))
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE call_rollups"))
        conn.execute(text("VACUUM ANALYZE rollup_dirty"))
    say(f"rolled up in {time.perf_counter() - begin:.0f} s: {result.rows:,} rollup rows over {result.hours:,} hours")


# Measuring


class Hand:
    """Hand-written queries on a connection of their own, JIT off as the KPI engine runs."""

    def __init__(self, app: Flask, org: Organization) -> None:
        self.app = app
        self.params = {
            "org": org.id,
            "tz": org.timezone,
            "short_ms": org.short_abandon_seconds * 1000,
            "threshold_ms": org.service_level_threshold_seconds * 1000,
        }

    def timed(self, sql: str, runs: int, **params) -> list[float]:
        with self.app.app_context(), db.engine.connect() as conn:
            conn.execute(text("SET jit = off"))
            samples, _ = timed(lambda: conn.execute(text(sql), {**self.params, **params}).all(), runs)
            conn.rollback()
        return samples

    def first_row(self, sql: str, **params):
        with self.app.app_context(), db.engine.connect() as conn:
            return conn.execute(text(sql), {**self.params, **params}).first()


def local_days(days: int) -> tuple[date, date]:
    """The last `days` days before the data set's end (local dates: `from` and `to`, both included)."""
    last = END.date() - timedelta(days=1)
    return last - timedelta(days=days - 1), last


# The calls list's window: every local day with calls of the data set (within the API's 400 days).
WHOLE_SET = (START.date() - timedelta(days=1), END.date())


def window_bounds(org: Organization, first: date, last: date) -> dict:
    """The UTC bounds the API computes for the local days `first` to `last`, for the hand-written queries."""
    window = Window.local_days(org_zone(org), first, last)
    return {"start": window.start, "end": window.end}


def span(first: date, last: date) -> dict[str, str]:
    return {"from": first.isoformat(), "to": last.isoformat()}


def measure_metrics(api: Api, hand: Hand, org: Organization, runs: int) -> list[Row]:
    base = f"/api/v1/orgs/{org.slug}/metrics"
    rows = []
    for name, suffix, days, sql, target in METRIC_CASES:
        rule = "/api/v1/orgs/<org>/metrics" + suffix
        if not api.has(rule):
            rows.append(Row(name, note=f"route missing: GET {rule}"))
            continue
        say(name)
        params = span(*local_days(days))
        if suffix == "/series":
            params["bucket"] = "day"
        api_ms, _ = timed(lambda params=params, suffix=suffix: api.get(base + suffix, **params), runs)
        sql_ms = hand.timed(sql, runs, **window_bounds(org, *local_days(days))) if sql else None
        rows.append(judge(Row(name, api_ms, sql_ms), target, ratio=False))
    return rows


METRIC_CASES = [
    ("metrics, 30 days", "", 30, HAND_SUMMARY, TARGET_30_MS),
    ("metrics, 365 days", "", 365, HAND_SUMMARY, TARGET_365_MS),
    ("metrics/series?bucket=day, 30 days", "/series", 30, HAND_SERIES, TARGET_30_MS),
    ("metrics/agents, 30 days", "/agents", 30, HAND_AGENTS, TARGET_BREAKDOWN_MS),
    ("metrics/numbers, 30 days", "/numbers", 30, None, TARGET_BREAKDOWN_MS),
]


def cursor_at_depth(api: Api, path: str, depth: int) -> tuple[str | None, int]:
    """Follow `next_cursor` to `depth` rows with the largest page the route accepts."""
    for limit in (1000, 500, 200, 100, PAGE):
        try:
            api.get(path, limit=limit, **span(*WHOLE_SET))
        except RuntimeError:
            continue
        break
    say(f"walking to depth {depth:,} in pages of {limit}")
    cursor, walked = None, 0
    while walked < depth:
        page = api.get(
            path, limit=min(limit, depth - walked), **span(*WHOLE_SET), **({"cursor": cursor} if cursor else {})
        )
        walked += len(page["data"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    return cursor, walked


def measure_calls(api: Api, hand: Hand, org: Organization, runs: int) -> list[Row]:
    rule, path = "/api/v1/orgs/<org>/calls", f"/api/v1/orgs/{org.slug}/calls"
    names = (f"calls?limit={PAGE}, depth 0", f"calls?limit={PAGE}, depth {DEPTH:,}")
    if not api.has(rule):
        return [Row(name, note=f"route missing: GET {rule}") for name in names]
    rows = []
    for name, depth in zip(names, (0, DEPTH), strict=True):
        say(name)
        params = {"limit": PAGE, **span(*WHOLE_SET)}
        if depth:
            cursor, walked = cursor_at_depth(api, path, depth)
            if walked < depth or cursor is None:
                rows.append(Row(name, note=f"the org's list ends at {walked:,} calls"))
                continue
            params["cursor"] = cursor
        page = api.get(path, **params)
        api_ms, _ = timed(lambda params=params: api.get(path, **params), runs)
        bounds = window_bounds(org, *WHOLE_SET)
        key = hand.first_row(HAND_KEY_AT_DEPTH, depth=depth - 1, **bounds) if depth else None
        bound = {
            **bounds,
            **(
                {"after_started": key[0], "after_id": key[1]}
                if key
                else {"after_started": END + timedelta(days=3650), "after_id": 0}
            ),
        }
        sql_ms = hand.timed(HAND_PAGE, runs, **bound)
        first_id = hand.first_row(HAND_PAGE, **bound)[0]
        same = bool(page["data"]) and page["data"][0].get("id") == first_id
        rows.append(
            judge(
                Row(name, api_ms, sql_ms, note="" if same else "first row differs from the SQL's"),
                TARGET_PAGE_MS,
                ratio=False,
            )
        )
    return rows


def judge(row: Row, target: float | None, *, ratio: bool) -> Row:
    if target is None or row.api_ms is None:
        return row
    api95 = percentile(row.api_ms, 0.95)
    sql95 = percentile(row.sql_ms, 0.95) if row.sql_ms else None
    row.passed = api95 <= target and (not ratio or sql95 is None or api95 / sql95 <= TARGET_RATIO)
    row.target = f"<= {target:.0f} ms" + (f", <= {TARGET_RATIO:.0f}x" if ratio else "")
    return row


# CSV export, in a process of its own


def export_csv(database_url: str, key: str, slug: str) -> dict:
    """Stream the org's whole CSV through the test client (this process serves it) and count rows."""
    app = bench_app(database_url, **APP_OVERRIDES)
    client = app.test_client()
    begin = time.perf_counter()
    response = client.get(
        f"/api/v1/orgs/{slug}/calls",
        query_string={"format": "csv", **span(*WHOLE_SET)},
        headers={"Authorization": f"Bearer {key}"},
        buffered=False,
    )
    lines = 0
    for chunk in response.response:
        lines += (chunk if isinstance(chunk, bytes) else chunk.encode()).count(b"\n")
    response.close()
    seconds = time.perf_counter() - begin
    return {
        "status": response.status_code,
        "rows": max(lines - 1, 0),
        "seconds": seconds,
        "peak_rss_mb": peak_rss() / 2**20,
    }


class _Counter:
    def __init__(self) -> None:
        self.lines = 0

    def write(self, data) -> None:
        self.lines += (data if isinstance(data, bytes) else data.encode()).count(b"\n")


def measure_csv(api: Api, app: Flask, database_url: str, key: str, org: Organization) -> list[Row]:
    rule = "/api/v1/orgs/<org>/calls"
    name = f"calls?format=csv, every call of '{org.slug}'"
    if not api.has(rule):
        return [Row(name, note=f"route missing: GET {rule}")]
    say(name)
    child = subprocess.run(
        [sys.executable, "-m", "bench.api_latency", "--csv-child", database_url, key, org.slug],
        capture_output=True,
        text=True,
        check=False,
    )
    if child.returncode != 0:
        return [Row(name, note=f"export failed: {child.stderr.strip().splitlines()[-1:]}")]
    result = json.loads(child.stdout.strip().splitlines()[-1])
    with app.app_context():
        raw = db.engine.raw_connection()
        try:
            sink, begin = _Counter(), time.perf_counter()
            sql = raw.cursor().mogrify(
                HAND_CSV.replace(":org", "%(org)s").replace(":start", "%(start)s").replace(":end", "%(end)s"),
                {"org": org.id, **window_bounds(org, *WHOLE_SET)},
            )
            raw.cursor().copy_expert(sql.decode(), sink)
            copy_s = time.perf_counter() - begin
        finally:
            raw.close()
    rows_s = result["rows"] / result["seconds"]
    copy_rows_s = (sink.lines - 1) / copy_s
    ok = (
        result["status"] == 200
        and result["rows"] == sink.lines - 1
        and rows_s >= TARGET_CSV_ROWS_S
        and result["peak_rss_mb"] < TARGET_CSV_RSS_MB
    )
    return [
        Row(
            name,
            target=f">= {TARGET_CSV_ROWS_S:,} rows/s, RSS < {TARGET_CSV_RSS_MB} MB",
            passed=ok,
            note=(
                f"{result['rows']:,} rows in {result['seconds']:.1f} s: {rows_s:,.0f} rows/s, peak RSS "
                f"{result['peak_rss_mb']:.0f} MB; COPY of the same rows: {sink.lines - 1:,} in {copy_s:.1f} s, "
                f"{copy_rows_s:,.0f} rows/s ({rows_s / copy_rows_s:.2f}x)"
            ),
        )
    ]


# Report


def report(rows: list[Row], header: str, runs: int) -> bool:
    print(header)
    print(f"{runs} timed requests each after one warm-up; milliseconds\n")
    print("| figure | API p50 | API p95 | hand SQL p50 | hand SQL p95 | p95 ratio | target |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    passed = True
    for row in rows:
        verdict = row.target if row.passed is None else f"{'PASS' if row.passed else 'MISS'} ({row.target})"
        passed &= row.passed is not False
        if row.api_ms is None:
            print(f"| {row.name} | {row.note} | | | | | {verdict if row.passed is not None else '-'} |")
            continue
        a50, a95 = percentile(row.api_ms, 0.5), percentile(row.api_ms, 0.95)
        note = f" ({row.note})" if row.note else ""
        if row.sql_ms is None:
            print(f"| {row.name}{note} | {a50:.1f} | {a95:.1f} | - | - | - | {verdict} |")
            continue
        s50, s95 = percentile(row.sql_ms, 0.5), percentile(row.sql_ms, 0.95)
        print(f"| {row.name}{note} | {a50:.1f} | {a95:.1f} | {s50:.1f} | {s95:.1f} | {a95 / s95:.2f}x | {verdict} |")
    return passed


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--csv-child"]:
        print(json.dumps(export_csv(*argv[1:4])))
        return 0
    parser = argparse.ArgumentParser(prog="python -m bench.api_latency", description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--reuse", action="store_true")
    parser.add_argument("--curve", help="comma-separated call counts: the metrics' scale curve only")
    parser.add_argument(
        "--compare", action="store_true", help="with --reuse: each figure through rollups and from rows alone"
    )
    args = parser.parse_args(argv)
    if args.curve:
        return scale_curve([int(size) for size in args.curve.split(",")], args)
    if args.compare:
        return compare_rows(args)

    app, key, written = build(args)
    try:
        api = Api(app, key)
        with app.app_context(), platform_bypass("bench: the measured org"):
            org = db.session.scalar(db.select(Organization).where(Organization.slug == ORG))
            db.session.expunge(org)
            hand = Hand(app, org)
            org_calls = hand.first_row(f"SELECT count(*) FROM calls c WHERE {_VISIBLE}")[0]
            header = (
                f"Machine: {machine()}, {_memory_gb():.0f} GB RAM\nLoad average before timing: {load_average()}\n"
                f"Data: {written[0]:,} calls, {written[1]:,} events; org '{ORG}' ({ORGS[0][1]}) has "
                f"{org_calls:,} of them"
            )
        rows = [
            *measure_metrics(api, hand, org, args.runs),
            *measure_calls(api, hand, org, args.runs),
            *measure_csv(api, app, args.database_url, key, org),
        ]
        passed = report(rows, header, args.runs)
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
    finally:
        if not args.keep:
            recreate_database(args.database_url, drop_only=True)
    return 0 if passed else 1


def scale_curve(sizes: list[int], args) -> int:
    """The metrics' p95 at each size, on a database generated (and rolled up) anew for each."""
    curve: dict[int, dict[str, float]] = {}
    facts: dict[int, str] = {}
    host = ""
    for size in sizes:
        args.calls, args.reuse = size, False
        app, key, written = build(args)
        api = Api(app, key)
        with app.app_context(), platform_bypass("bench: the measured org"):
            org = db.session.scalar(db.select(Organization).where(Organization.slug == ORG))
            db.session.expunge(org)
            rolled = db.session.execute(text("SELECT count(*) FROM call_rollups")).scalar_one()
            host = f"Machine: {machine()}, {_memory_gb():.0f} GB RAM"
        facts[size] = f"{written[0]:,} calls, {rolled:,} rollup rows, load {load_average()}"
        curve[size] = {}
        for name, suffix, days, _sql, _target in METRIC_CASES:
            say(f"{size:,}: {name}")
            params = span(*local_days(days))
            if suffix == "/series":
                params["bucket"] = "day"
            path = f"/api/v1/orgs/{org.slug}/metrics{suffix}"
            samples, _ = timed(lambda api=api, path=path, params=params: api.get(path, **params), args.runs)
            curve[size][name] = percentile(samples, 0.95)
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
    if not args.keep:
        recreate_database(args.database_url, drop_only=True)
    print(host)
    for size in sizes:
        print(f"- {size:,}: {facts[size]}")
    print(f"\np95 of {args.runs} requests after one warm-up, milliseconds, largest org\n")
    print("| figure | " + " | ".join(f"{size:,} calls" for size in sizes) + " | target |")
    print("| --- | " + " | ".join("---:" for _ in sizes) + " | --- |")
    for name, _suffix, _days, _sql, target in METRIC_CASES:
        values = " | ".join(f"{curve[size][name]:.1f}" for size in sizes)
        print(f"| {name} | {values} | <= {target:.0f} ms |")
    return 0


def compare_rows(args) -> int:
    """Each metrics figure through the rollups and from rows alone (`metrics.rows_only()`), the two
    requests taken in turn so that other load on the machine weighs on both alike."""
    app, key, written = build(args)
    api = Api(app, key)
    with app.app_context(), platform_bypass("bench: the measured org"):
        org = db.session.scalar(db.select(Organization).where(Organization.slug == ORG))
        db.session.expunge(org)
        print(f"Machine: {machine()}, {_memory_gb():.0f} GB RAM; load {load_average()}")
    print(f"Data: {written[0]:,} calls; p50 / p95 of {args.runs} requests each, milliseconds, largest org\n")
    print("| figure | rollups p50 | rollups p95 | rows p50 | rows p95 | rows / rollups (p50) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, suffix, days, _sql, _target in METRIC_CASES:
        params = span(*local_days(days))
        if suffix == "/series":
            params["bucket"] = "day"
        path = f"/api/v1/orgs/{org.slug}/metrics{suffix}"
        through, alone = [], []
        for run in range(args.runs + 1):
            for samples, rows_alone in ((through, False), (alone, True)):
                begin = time.perf_counter()
                if rows_alone:
                    with metrics.rows_only():
                        api.get(path, **params)
                else:
                    api.get(path, **params)
                if run:  # the first of each is a warm-up
                    samples.append((time.perf_counter() - begin) * 1000)
        r50, r95, o50, o95 = (percentile(x, q) for x in (through, alone) for q in (0.5, 0.95))
        print(f"| {name} | {r50:.1f} | {r95:.1f} | {o50:.1f} | {o95:.1f} | {o50 / r50:.2f}x |")
    return 0


def _memory_gb() -> float:
    with open("/proc/meminfo") as meminfo:
        total_kb = int(next(line for line in meminfo if line.startswith("MemTotal")).split()[1])
    return total_kb / 1024 / 1024


if __name__ == "__main__":
    sys.exit(main())
