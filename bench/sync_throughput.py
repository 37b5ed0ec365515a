"""Calls sync throughput, end to end and write stage alone, against the baselines that say what is good.

    .venv/bin/python -m bench.sync_throughput [--calls 200000] [--also-million] [--database-url URL]
                                              [--naive-calls 10000] [--page-size 1000] [--seed 1]
                                              [--rollup-rounds 2]

--calls         calls in the synced window (default 200,000); the window is cut so that it holds exactly
                this many, by the simulator's own ground truth.
--also-million  also run the end-to-end sync for 1,000,000 calls, on a fresh database and in a fresh
                process, and report its rate and peak RSS (a few minutes).
--database-url  a PostgreSQL URL whose database is DROPPED and recreated for the bench
                (default postgresql://postgres@127.0.0.1:5432/vsync_bench). Never point it at real data.
--naive-calls   how many calls the row-by-row baseline writes (default 10,000; it is slow).
--page-size     calls per page fetched and written (default 1000, the production VSYNC_SYNC_PAGE_SIZE).
--seed          the simulator's seed (default 1); the same seed serves the same calls.
--rollup-rounds how many times the write stage runs with and without rollup maintenance, in turn
                (default 2; 0 skips the comparison).

How it measures, and why that way:

* The database is migrated with the real migrations, and the sync runs inline (no Redis), in-process,
  as the embedded default runs it; the MightyCall simulator runs in a separate process on loopback,
  so its CPU does not compete with the sync for the GIL. Its CPU seconds are reported, so a slow
  simulator shows as such rather than as a slow sync.
* End to end: `start_sync(integration, "calls", since=..., until=...)` in a fresh child process, so
  the peak RSS (VmHWM: interpreter, app and sync together) is the sync's own and nothing the bench
  holds counts. Not `ru_maxrss`: Linux carries the forking parent's resident size over into it.
  The stored count must equal the ground truth exactly.
* Write stage: the same pages, fetched once into memory beforehand, written with `write_calls` and a
  commit per page, as the engine does, into empty calls/recordings/agents/rollup tables.
* Rollup maintenance: the write stage again, with the KPI rollups kept (as always) and without them
  (the stale-rollup triggers on `calls` and `call_events` disabled, so each page's refresh finds no
  stale hour and ends after one indexed SELECT), --rollup-rounds times each, in turn, so load from
  other work falls on both alike. Reported as the ratio of their CPU (this process and PostgreSQL's
  backends, WAL writer and checkpointer), the figure the target is stated in, and of their wall time.
* COPY: the same calls rows (same columns, raw JSON included, serialised inside the timing) streamed
  with `COPY ... FROM STDIN` into `calls_copy (LIKE calls INCLUDING ALL)`, same indexes, one
  transaction: the practical limit. The write stage also writes recordings and agents; COPY does not.
* Naive: the first --naive-calls calls upserted one by one through the ORM (look up, create or
  update, flush; a commit per page) under a platform bypass, since provider rows are never written
  by the ORM in a tenant scope.

Targets: write stage >= 0.3x COPY; write stage >= 10x naive; end to end >= 5,000 calls/s on a
2-core machine; peak RSS < 300 MB at 1,000,000 calls. Other work on the machine (a test suite run in
parallel) skews every figure: the report shows the load average before each run.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from multiprocessing import get_context
from pathlib import Path

import psutil
import psycopg2
import requests
import sqlalchemy
from cryptography.fernet import Fernet
from flask import current_app
from flask_migrate import upgrade
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from bench.common import load_average, peak_rss, recreate_database
from vsync import create_app
from vsync.extensions import db
from vsync.mightycall.simulator import Simulator
from vsync.models import Call, Integration
from vsync.models.types import utcnow
from vsync.phones import try_e164
from vsync.services import orgs
from vsync.services.integrations import client_for, create_integration
from vsync.services.sync import start_sync
from vsync.services.sync.engine import day_chunks
from vsync.services.sync.ingest import NumberBook, write_calls
from vsync.tenancy import platform_bypass, tenant

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/vsync_bench"
WINDOW_START = datetime(2025, 3, 3, tzinfo=UTC)  # a Monday: whole weeks of the simulator's cycle
WINDOW_DAYS = 14
MILLION = 1_000_000
SIM_API_KEY, SIM_USER_KEY = "bench-api-key", "bench-user-key"
COPY_COLUMNS = (
    "account_id",
    "external_id",
    "phone_number_id",
    "direction",
    "status",
    "provider_status",
    "from_number",
    "to_number",
    "started_at",
    "ended_at",
    "duration_ms",
    "agent_extension",
    "raw",
    "synced_at",
)

TARGET_COPY_RATIO = 0.3
TARGET_NAIVE_RATIO = 10.0
TARGET_END_TO_END = 5_000
TARGET_RSS_MB = 300
TARGET_ROLLUP_COST = 0.25  # rollup maintenance adds at most this to the write stage's CPU
STALE_ROLLUP_TRIGGERS = [
    (table, f"{table}_stale_rollups_{op}")
    for table in ("calls", "call_events")
    for op in ("insert", "update", "delete")
]


def say(message: str) -> None:
    print(f"  .. {message}", file=sys.stderr, flush=True)


def mb(n_bytes: float) -> str:
    return f"{n_bytes / 2**20:,.0f} MB"


def rate(calls: int, seconds: float) -> float:
    return calls / seconds if seconds > 0 else float("inf")


# Machine and database


def machine(database_url: str) -> dict:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown",
    )
    engine = create_engine(make_url(database_url).set(database="postgres"))
    with engine.connect() as conn:
        version = conn.scalar(text("SHOW server_version"))
    engine.dispose()
    return {
        "cores": len(os.sched_getaffinity(0)),
        "cpu": model,
        "ram": psutil.virtual_memory().total,
        "postgres": version,
        "python": platform.python_version(),
        "sqlalchemy": sqlalchemy.__version__,
        "psycopg2": psycopg2.__version__.split()[0],
    }


def app_config(database_url: str, encryption_key: str, page_size: int) -> dict:
    """The embedded default's shape (jobs inline, no Redis) on the bench database."""
    return {
        "VSYNC_ENV": "development",
        "SQLALCHEMY_DATABASE_URI": database_url,
        "REDIS_URL": None,
        "SECRET_KEY": "bench-secret-key",
        "VSYNC_ENCRYPTION_KEYS": [encryption_key],
        "VSYNC_LOG_LEVEL": "WARNING",
        "VSYNC_SYNC_PAGE_SIZE": page_size,
    }


def migrated_app(config: dict):
    recreate_database(config["SQLALCHEMY_DATABASE_URI"])
    app = create_app(config)
    with app.app_context():
        upgrade()
    return app


@dataclass
class Connected:
    """The bench's org, its integration pointing at the simulator, and the MightyCall account it reads."""

    org_id: int
    integration_id: int
    account_id: int


def connect_org(app, base_url: str) -> Connected:
    with app.app_context(), platform_bypass("bench setup"):
        org = orgs.create_org("Bench", "bench", "UTC")
        integration, _ = create_integration(org, api_key=SIM_API_KEY, user_key=SIM_USER_KEY, base_url=base_url)
        db.session.commit()
        return Connected(org.id, integration.id, integration.account_id)


def stored_calls(app, account_id: int) -> int:
    with app.app_context():
        return db.session.scalar(text("SELECT count(*) FROM calls WHERE account_id = :a"), {"a": account_id})


def empty_traffic(app) -> None:
    with app.app_context(), db.engine.begin() as conn:
        conn.execute(text("TRUNCATE calls, recordings, agents, call_rollups, rollup_dirty RESTART IDENTITY"))


def rollup_maintenance(app, enabled: bool) -> None:
    """Switch the triggers that mark stale rollups on or off (a bench-only switch on its own database):
    off, writes mark no hour and the refresh each page ends with recomputes nothing."""
    with app.app_context(), db.engine.begin() as conn:
        for table, trigger in STALE_ROLLUP_TRIGGERS:
            conn.execute(text(f"ALTER TABLE {table} {'ENABLE' if enabled else 'DISABLE'} TRIGGER {trigger}"))


def postgres_cpu(database: str) -> float:
    """CPU seconds of the bench database's backends and of the WAL writer and checkpointer."""
    total = 0.0
    for proc in psutil.process_iter(["name", "cmdline"]):
        try:
            if proc.info["name"] != "postgres":
                continue
            command = " ".join(proc.info["cmdline"] or ())
            if f" {database} " in command or any(
                aux in command for aux in ("walwriter", "checkpointer", "background writer")
            ):
                times = proc.cpu_times()
                total += times.user + times.system
        except psutil.Error:
            continue
    return total


def process_cpu(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


# The simulator, in a process of its own


@dataclass
class Window:
    calls_per_day: float
    start: datetime
    end: datetime
    truth: int


def window_for(calls: int, seed: int) -> Window:
    """A window from WINDOW_START holding exactly `calls` calls (unless two share a millisecond at
    the end), found with the simulator's ground truth; counting whole days is cheap, so only the
    last day is generated."""
    calls_per_day = calls / WINDOW_DAYS * 1.05
    truth = Simulator(seed=seed, calls_per_day=calls_per_day, api_key=SIM_API_KEY, user_key=SIM_USER_KEY)
    day = 0
    while truth.count_between(WINDOW_START, WINDOW_START + timedelta(days=day + 1)) < calls:
        day += 1
    low_ms, high_ms = day * 86_400_000, (day + 1) * 86_400_000
    while high_ms - low_ms > 1:
        middle = (low_ms + high_ms) // 2
        if truth.count_between(WINDOW_START, WINDOW_START + timedelta(milliseconds=middle)) >= calls:
            high_ms = middle
        else:
            low_ms = middle
    end = WINDOW_START + timedelta(milliseconds=high_ms)
    return Window(calls_per_day, WINDOW_START, end, truth.count_between(WINDOW_START, end))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class SimulatorProcess:
    pid: int
    base_url: str


@contextmanager
def simulator_process(seed: int, calls_per_day: float):
    port = free_port()
    code = (
        "import sys; from vsync.mightycall.simulator import run_simulator; "
        "run_simulator(port=int(sys.argv[1]), seed=int(sys.argv[2]), calls_per_day=float(sys.argv[3]), "
        "api_key=sys.argv[4], user_key=sys.argv[5])"
    )
    log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115  (the simulator writes to it until the finally closes it)
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(port), str(seed), repr(calls_per_day), SIM_API_KEY, SIM_USER_KEY],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    root = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(root + "/", timeout=1).raise_for_status()
                break
            except requests.RequestException:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise RuntimeError(f"the simulator did not start on port {port}:\n{log.read()[-2000:]}") from None
                time.sleep(0.1)
        yield SimulatorProcess(proc.pid, f"{root}/v4")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


# End to end, in a fresh process


def end_to_end(config: dict, org_id: int, integration_id: int, window: Window, simulator_pid: int) -> dict:
    """Runs in a child process: the sync and nothing else, so the process's peak RSS is the sync's."""
    app = create_app(config)
    database = make_url(config["SQLALCHEMY_DATABASE_URI"]).database
    me = psutil.Process()
    with app.app_context(), tenant(org_id):
        integration = db.session.get(Integration, integration_id)
        rss_before = me.memory_info().rss
        cpu, simulator, postgres = process_cpu(me.pid), process_cpu(simulator_pid), postgres_cpu(database)
        started = time.perf_counter()
        run, _ = start_sync(integration, "calls", since=window.start, until=window.end)
        seconds = time.perf_counter() - started
        return {
            "seconds": seconds,
            "cpu": process_cpu(me.pid) - cpu,
            "simulator_cpu": process_cpu(simulator_pid) - simulator,
            "postgres_cpu": postgres_cpu(database) - postgres,
            "rss_before": rss_before,
            "peak_rss": peak_rss(),
            "status": run.status,
            "error": run.error,
            "pages": run.pages,
            "inserted": run.inserted,
        }


def run_end_to_end(config: dict, org_id: int, integration_id: int, window: Window, simulator_pid: int) -> dict:
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(end_to_end, config, org_id, integration_id, window, simulator_pid).result()


# The write stage and its baselines, on pages fetched beforehand


def fetch_pages(app, bench: Connected, window: Window) -> list:
    """The pages the engine would write, in its order: day chunks, then pages of each."""
    with app.app_context(), tenant(bench.org_id):
        client = client_for(db.session.get(Integration, bench.integration_id))
        page_size = current_app.config["VSYNC_SYNC_PAGE_SIZE"]
        try:
            return [
                page
                for start, end in day_chunks(window.start, window.end)
                for page in client.iter_call_pages(start, end, page_size=page_size)
            ]
        finally:
            client.close()


def time_write_stage(app, bench: Connected, pages: list) -> dict:
    database = make_url(app.config["SQLALCHEMY_DATABASE_URI"]).database
    inserted = 0
    with app.app_context(), tenant(bench.org_id):
        book = NumberBook(org_id=bench.org_id, integration_id=bench.integration_id)
        cpu, postgres = time.process_time(), postgres_cpu(database)
        started = time.perf_counter()
        for page in pages:
            inserted += write_calls(bench.account_id, page, book).inserted
            db.session.commit()
        seconds = time.perf_counter() - started
        return {
            "seconds": seconds,
            "cpu": time.process_time() - cpu,
            "postgres_cpu": postgres_cpu(database) - postgres,
            "inserted": inserted,
        }


def time_rollup_cost(app, bench: Connected, pages: list, rounds: int) -> dict:
    """The write stage with and without rollup maintenance, `rounds` times each, in turn (the order
    alternating between rounds), each into empty tables."""
    runs: dict[bool, list[dict]] = {True: [], False: []}
    try:
        for n in range(rounds):
            for enabled in (False, True) if n % 2 == 0 else (True, False):
                empty_traffic(app)
                rollup_maintenance(app, enabled)
                load = load_average()
                say(f"write stage {'with' if enabled else 'without'} rollup maintenance, round {n + 1} (load {load})")
                runs[enabled].append(time_write_stage(app, bench, pages) | {"load": load})
    finally:
        rollup_maintenance(app, True)

    def total(enabled: bool, key: str) -> float:
        return sum(run[key] for run in runs[enabled])

    return {
        "rounds": rounds,
        "runs": runs,
        "cpu": {e: total(e, "cpu") + total(e, "postgres_cpu") for e in (True, False)},
        "seconds": {e: total(e, "seconds") for e in (True, False)},
    }


def number_ids(app) -> dict[str, int]:
    with app.app_context():
        return dict(db.session.execute(text("SELECT e164, id FROM phone_numbers")).all())


def time_copy(app, account_id: int, pages: list) -> dict:
    numbers = number_ids(app)
    columns = ", ".join(COPY_COLUMNS)
    dumps = json.JSONEncoder(separators=(",", ":")).encode
    with app.app_context():
        with db.engine.begin() as conn:
            conn.execute(text("DROP TABLE IF EXISTS calls_copy"))
            conn.execute(text("CREATE TABLE calls_copy (LIKE calls INCLUDING ALL)"))
        connection = db.engine.raw_connection()
        try:
            cursor = connection.cursor()
            started = time.perf_counter()
            for page in pages:
                now = utcnow().isoformat()
                buffer = io.StringIO()
                out = csv.writer(buffer)
                for r in page:
                    out.writerow(
                        (
                            account_id,
                            r.external_id,
                            numbers[try_e164(r.business_number)],
                            r.direction,
                            r.status,
                            r.provider_status,
                            r.from_number,
                            r.to_number,
                            r.started_at.isoformat(),
                            r.ended_at.isoformat() if r.ended_at else None,
                            r.duration_ms,
                            r.agent_extension,
                            dumps(r.raw),
                            now,
                        )
                    )
                buffer.seek(0)
                cursor.copy_expert(f"COPY calls_copy ({columns}) FROM STDIN WITH (FORMAT csv)", buffer)
            connection.commit()
            seconds = time.perf_counter() - started
            cursor.execute("SELECT count(*) FROM calls_copy")
            copied = cursor.fetchone()[0]
            cursor.execute("DROP TABLE calls_copy")
            connection.commit()
        finally:
            connection.close()
    return {"seconds": seconds, "copied": copied}


def first_calls(pages: list, limit: int) -> list:
    subset, taken = [], 0
    for page in pages:
        if taken >= limit:
            break
        subset.append(page[: limit - taken])
        taken += len(subset[-1])
    return subset


def time_naive(app, account_id: int, pages: list) -> dict:
    """Row by row through the ORM: the way a sync is first written, and the figure a bulk upsert must beat."""
    numbers = number_ids(app)
    written = 0
    with app.app_context(), platform_bypass("bench naive baseline"):
        started = time.perf_counter()
        for page in pages:
            now = utcnow()
            for r in page:
                call = db.session.scalars(
                    select(Call).where(Call.account_id == account_id, Call.external_id == r.external_id)
                ).one_or_none()
                if call is None:
                    call = Call(account_id=account_id, external_id=r.external_id)
                    db.session.add(call)
                call.phone_number_id = numbers[try_e164(r.business_number)]
                call.direction, call.status, call.provider_status = r.direction, r.status, r.provider_status
                call.from_number, call.to_number = r.from_number, r.to_number
                call.started_at, call.ended_at, call.duration_ms = r.started_at, r.ended_at, r.duration_ms
                call.agent_extension, call.raw, call.synced_at = r.agent_extension, r.raw, now
                db.session.flush()
                written += 1
            db.session.commit()
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "written": written}


# The runs


def sync_case(args, key: str, calls: int, *, with_stages: bool) -> dict:
    """One fresh database and simulator for `calls` calls: end to end, then (optionally) the stages."""
    say(f"finding a window with exactly {calls:,} calls (seed {args.seed})")
    window = window_for(calls, args.seed)
    config = app_config(args.database_url, key, args.page_size)
    say(f"migrating a fresh {make_url(args.database_url).database}")
    app = migrated_app(config)
    case = {"calls": calls, "window": window}
    with simulator_process(args.seed, window.calls_per_day) as simulator:
        bench = connect_org(app, simulator.base_url)
        case["load"] = load_average()
        say(f"end-to-end sync of {window.truth:,} calls (load average {case['load']})")
        e2e = run_end_to_end(config, bench.org_id, bench.integration_id, window, simulator.pid)
        e2e["stored"] = stored_calls(app, bench.account_id)
        case["end_to_end"] = e2e
        if with_stages:
            say("fetching the same pages into memory for the write stage")
            pages = fetch_pages(app, bench, window)
            case["fetched"] = sum(map(len, pages))
            empty_traffic(app)
            say(f"write stage: {case['fetched']:,} calls in {len(pages)} pages, write_calls + commit per page")
            case["write"] = time_write_stage(app, bench, pages)
            case["write"]["stored"] = stored_calls(app, bench.account_id)
            if args.rollup_rounds:
                case["rollups"] = time_rollup_cost(app, bench, pages, args.rollup_rounds)
            say("COPY baseline into calls_copy")
            case["copy"] = time_copy(app, bench.account_id, pages)
            empty_traffic(app)
            subset = first_calls(pages, args.naive_calls)
            say(f"naive baseline: {sum(map(len, subset)):,} calls row by row through the ORM")
            case["naive"] = time_naive(app, bench.account_id, subset)
    with app.app_context():
        db.engine.dispose()
    return case


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def report(info: dict, cases: list[dict]) -> None:
    print()
    print("vsync calls sync throughput")
    print("=" * 78)
    print(f"machine     {info['cores']} cores, {info['cpu']}, {mb(info['ram'])} RAM")
    print(
        f"software    PostgreSQL {info['postgres']}, Python {info['python']}, SQLAlchemy {info['sqlalchemy']}, "
        f"psycopg2 {info['psycopg2']}"
    )
    targets = []
    for case in cases:
        window, e2e = case["window"], case["end_to_end"]
        print()
        print(f"-- {case['calls']:,} calls " + "-" * 60)
        end = window.end.isoformat(sep=" ", timespec="milliseconds")[:-6]
        print(
            f"window      {window.start:%Y-%m-%d %H:%M} .. {end} UTC, simulator at ~{window.calls_per_day:,.0f} "
            f"calls/day; ground truth {window.truth:,} calls"
        )
        print(f"load avg    {case['load']} (1, 5, 15 min) before the end-to-end run")
        e2e_rate = rate(window.truth, e2e["seconds"])
        correct = e2e["status"] == "succeeded" and e2e["stored"] == window.truth
        print(
            f"end to end  {e2e['seconds']:8.2f} s  {e2e_rate:10,.0f} calls/s  run {e2e['status']}, {e2e['pages']} "
            f"pages, {e2e['inserted']:,} inserted; stored {e2e['stored']:,} = truth: {'yes' if correct else 'NO'}"
            + (f"  ({e2e['error']})" if e2e["error"] else "")
        )
        print(
            f"  CPU       sync process {e2e['cpu']:.1f} s, PostgreSQL {e2e['postgres_cpu']:.1f} s, "
            f"simulator {e2e['simulator_cpu']:.1f} s (wall {e2e['seconds']:.1f} s)"
        )
        print(
            f"  RSS       peak {mb(e2e['peak_rss'])} (VmHWM of the sync's process; {mb(e2e['rss_before'])} "
            "before the sync started)"
        )
        if not correct:
            targets.append((f"{case['calls']:,}: stored calls equal the ground truth", "no", False))
        targets.append(
            (
                f"end to end >= {TARGET_END_TO_END:,} calls/s ({case['calls']:,} calls)",
                f"{e2e_rate:,.0f} calls/s",
                e2e_rate >= TARGET_END_TO_END,
            )
        )
        if case["calls"] >= MILLION:
            targets.append(
                (
                    f"peak RSS < {TARGET_RSS_MB} MB at {case['calls']:,} calls",
                    mb(e2e["peak_rss"]),
                    e2e["peak_rss"] < TARGET_RSS_MB * 2**20,
                )
            )
        if "write" in case:
            write, copy, naive = case["write"], case["copy"], case["naive"]
            write_rate = rate(case["fetched"], write["seconds"])
            copy_rate = rate(copy["copied"], copy["seconds"])
            naive_rate = rate(naive["written"], naive["seconds"])
            print(
                f"write stage {write['seconds']:8.2f} s  {write_rate:10,.0f} calls/s  write_calls + commit per page; "
                f"stored {write['stored']:,}"
            )
            print(f"  CPU       bench process {write['cpu']:.1f} s, PostgreSQL {write['postgres_cpu']:.1f} s")
            print(
                f"COPY        {copy['seconds']:8.2f} s  {copy_rate:10,.0f} calls/s  "
                f"calls rows only, one transaction; copied {copy['copied']:,}"
            )
            print(
                f"naive ORM   {naive['seconds']:8.2f} s  {naive_rate:10,.0f} calls/s  "
                f"first {naive['written']:,} calls, one by one, commit per page"
            )
            targets.append(
                (
                    f"write stage >= {TARGET_COPY_RATIO}x COPY",
                    f"{write_rate / copy_rate:.2f}x",
                    write_rate / copy_rate >= TARGET_COPY_RATIO,
                )
            )
            if "rollups" in case:
                cost = case["rollups"]
                cpu, seconds = cost["cpu"], cost["seconds"]
                ratio = cpu[True] / cpu[False]
                print(
                    f"rollups     write stage with rollups / without = {ratio:.2f}x CPU "
                    f"({cpu[True]:.1f} s / {cpu[False]:.1f} s, this process and PostgreSQL), "
                    f"{seconds[True] / seconds[False]:.2f}x wall ({seconds[True]:.1f} s / {seconds[False]:.1f} s); "
                    f"{cost['rounds']} rounds each, in turn"
                )
                for enabled in (True, False):
                    print(
                        f"  {'with' if enabled else 'without':<9} "
                        + "; ".join(
                            f"{run['cpu'] + run['postgres_cpu']:.1f} s CPU, {run['seconds']:.1f} s wall "
                            f"(load {run['load'].split()[0]})"
                            for run in cost["runs"][enabled]
                        )
                    )
                targets.append(
                    (
                        f"rollup maintenance <= +{TARGET_ROLLUP_COST:.0%} write stage CPU",
                        f"{ratio - 1:+.0%}",
                        ratio - 1 <= TARGET_ROLLUP_COST,
                    )
                )
            targets.append(
                (
                    f"write stage >= {TARGET_NAIVE_RATIO:g}x naive",
                    f"{write_rate / naive_rate:.1f}x",
                    write_rate / naive_rate >= TARGET_NAIVE_RATIO,
                )
            )
    if not any(case["calls"] >= MILLION for case in cases):
        targets.append((f"peak RSS < {TARGET_RSS_MB} MB at 1,000,000 calls", "not run (--also-million)", None))
    print()
    print("targets")
    for name, figure, ok in targets:
        print(f"  {name:<48} {figure:>26}  {'-' if ok is None else verdict(ok)}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.sync_throughput",
        description="Calls sync throughput against COPY and a row-by-row baseline.",
    )
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--also-million", action="store_true")
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--naive-calls", type=int, default=10_000)
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rollup-rounds", type=int, default=2)
    args = parser.parse_args(argv)

    info = machine(args.database_url)
    key = Fernet.generate_key().decode()
    cases = [sync_case(args, key, args.calls, with_stages=True)]
    if args.also_million:
        cases.append(sync_case(args, key, MILLION, with_stages=False))
    report(info, cases)
    return 0


if __name__ == "__main__":
    sys.exit(main())
