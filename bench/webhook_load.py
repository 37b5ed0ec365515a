"""Webhook receiver under load: acknowledgement throughput and latency, then nothing lost or doubled.

    .venv/bin/python -m bench.webhook_load [--seconds 15] [--rounds 3] [--senders 16] [--rate 200]
        [--paced-senders 64] [--workers 2] [--threads 4] [--database-url URL] [--redis-url URL] [--port 8765]

--seconds       how long each load phase sends (default 15).
--rounds        the trivial route and the receiver take turns this many times, each turn a share of
                --seconds (default 3), so a machine whose speed drifts skews both alike.
--senders       concurrent senders, each waiting for its answer before sending again (default 16, in
                two processes so the client does not share one GIL).
--rate          events/s of the paced phase, whose latency the p99 target applies to (default 200).
--paced-senders senders sharing that rate (default 64): enough that a slow answer delays no other send.
--workers       `rq worker` processes that drain the queue afterwards (default 2).
--database-url  PostgreSQL database that is DROPPED and recreated (default .../vsync_bench_webhooks).
--redis-url     Redis database that is FLUSHED (default redis://127.0.0.1:6379/13).
--threads       threads per gunicorn worker (default 4; 1 = sync workers).
--port          loopback port of the gunicorn it starts (default 8765).

How it measures, and why that way:

* gunicorn with 2 workers (--threads each, default 4, so a worker waiting on PostgreSQL or Redis
  serves another request meanwhile; 1 gives sync workers) serves `bench.webhook_app:app` (the real
  app plus one trivial route) on loopback, with PostgreSQL and Redis; events are queued to Redis.
* Phase 1, the baseline: the senders POST an event body to the trivial 200-OK route for --seconds.
* Phase 2: the same senders POST real MightyCall events (one per request, as MightyCall sends them)
  to the receiver, 10 % of them re-sending an event already acknowledged (a duplicate Guid).
  Throughput is acknowledged events per second; the ratio to phase 1 is the receiver's cost.
  Phases 1 and 2 take turns (--rounds): a shared virtual machine's speed drifts by a third within a
  minute here, which one long phase after the other would read as the receiver's doing.
* Phase 3: events paced at --rate per second over --paced-senders senders; latency is measured from
  each event's scheduled send time, so a server that falls behind is not flattered (no coordinated
  omission).
* No RQ worker runs during the load phases, so acknowledging is measured alone. Then --workers
  `rq worker` processes (SimpleWorker: the app is built once per process and every job runs in it)
  drain what was stored: the deliveries queued one drain, and the drain that meets the backlog wakes
  a second for the other worker. Their throughput is events applied per second of draining.
* Checks: events stored == unique events acknowledged; call events == unique events; events
  processed more than once == 0; every stored event processed.

Targets: receiver >= 0.5x the trivial route's throughput; p99 ack < 50 ms at --rate events/s;
the drain, rollups included, >= 500 events/s (its time includes starting the workers); nothing
lost, nothing doubled. The machine's load average is printed before each phase: anything
else running (a test suite) takes a core of two and skews every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
import redis
import requests
from cryptography.fernet import Fernet
from flask_migrate import upgrade
from sqlalchemy import create_engine, func, select

from bench.common import load_average, recreate_database
from vsync import create_app
from vsync.extensions import db
from vsync.mightycall.simulator import WebhookEmitter
from vsync.models import CallEvent, WebhookEvent
from vsync.services import numbers, orgs
from vsync.services.integrations import create_integration
from vsync.tenancy import platform_bypass

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/vsync_bench_webhooks"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/13"
API_KEY, NUMBER = "bench-api-key", "+12127363100"
DUPLICATE_SHARE = 0.10
TARGET_RATIO, TARGET_P99_MS, TARGET_DRAIN = 0.5, 50.0, 500.0
LIFECYCLES = ("answered", "missed", "voicemail", "outbound")


def say(message: str) -> None:
    print(f"  .. {message}", file=sys.stderr, flush=True)


def prepare(env: dict) -> str:
    """Migrate the bench database, add an org, its integration and number; return the webhook token."""
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": env["DATABASE_URL"],
            "REDIS_URL": None,
            "SECRET_KEY": env["SECRET_KEY"],
            "VSYNC_ENCRYPTION_KEYS": [env["VSYNC_ENCRYPTION_KEYS"]],
        }
    )
    with app.app_context():
        upgrade()
        with platform_bypass("benchmark setup"):
            org = orgs.create_org("Bench", "bench", "UTC")
            _, token = create_integration(
                org, api_key=API_KEY, user_key="bench-user-key", base_url="http://127.0.0.1:9/v4"
            )
            numbers.assign_number(org, numbers.add_number(NUMBER), at=datetime(2020, 1, 1, tzinfo=UTC))
            db.session.commit()
        db.engine.dispose()
    return token


def start_gunicorn(env: dict, port: int, threads: int) -> subprocess.Popen:
    server = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("gunicorn")),
            "--workers",
            "2",
            "--threads",
            str(threads),
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            "--backlog",
            "256",
            "bench.webhook_app:app",
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.post(f"http://127.0.0.1:{port}/_bench/ok", timeout=5).status_code == 200:
                return server
        except requests.RequestException:
            time.sleep(0.2)
    os.killpg(server.pid, signal.SIGKILL)
    raise SystemExit("gunicorn did not answer within 60 s")


@dataclass
class SenderResult:
    latencies: list[float] = field(default_factory=list)  # seconds, per acknowledged request
    acked: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    unique_guids: set[str] = field(default_factory=set)

    def add(self, other: SenderResult) -> None:
        self.latencies += other.latencies
        self.acked += other.acked
        self.unique_guids |= other.unique_guids
        for outcome, count in other.errors.items():
            self.errors[outcome] = self.errors.get(outcome, 0) + count


class EventSource:
    """Endless events of simulated calls, with a share of re-sent (duplicate) ones."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.emitter = WebhookEmitter("http://unused", API_KEY)
        self.pending: list[dict] = []
        self.sent: list[dict] = []
        self.started = datetime.now(UTC)

    def next(self) -> dict:
        if self.sent and self.rng.random() < DUPLICATE_SHARE:
            return self.rng.choice(self.sent)
        if not self.pending:
            self.started += timedelta(seconds=1)
            self.pending = self.emitter.events(
                self.rng.choice(LIFECYCLES),
                business_number=NUMBER,
                extension=f"1{self.rng.randint(0, 20):02d}",
                started_at=self.started,
                rng=self.rng,
            )[::-1]
        return self.pending.pop()


def _send_thread(
    url: str, seed: int, until: float, interval: float | None, start: float, result: SenderResult, lock: threading.Lock
) -> None:
    source, session = EventSource(seed), requests.Session()
    scheduled = start
    while True:
        if interval is not None:
            scheduled += interval
            pause = scheduled - time.monotonic()
            if pause > 0:
                time.sleep(pause)
        if time.monotonic() >= until:
            return
        event = source.next()
        body = json.dumps(event, separators=(",", ":"))
        began = scheduled if interval is not None else time.monotonic()
        try:
            response = session.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=10)
            outcome = str(response.status_code)
        except requests.RequestException as exc:
            outcome = type(exc).__name__
        took = time.monotonic() - began
        with lock:
            if outcome == "200":
                result.acked += 1
                result.latencies.append(took)
                result.unique_guids.add(event["Guid"])
                source.sent.append(event)
            else:
                result.errors[outcome] = result.errors.get(outcome, 0) + 1


def send_process(url: str, threads: int, seed: int, seconds: float, rate_per_thread: float | None) -> SenderResult:
    result, lock = SenderResult(), threading.Lock()
    start = time.monotonic()
    interval = 1 / rate_per_thread if rate_per_thread else None
    workers = [
        threading.Thread(
            target=_send_thread,
            args=(url, seed * 1000 + i, start + seconds, interval, start + (interval or 0) * i / threads, result, lock),
        )
        for i in range(threads)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return result


def load(url: str, senders: int, seconds: float, seed: int, rate: float | None = None) -> tuple[SenderResult, float]:
    processes = 2
    per_process = [senders // processes + (1 if i < senders % processes else 0) for i in range(processes)]
    per_thread_rate = rate / senders if rate else None
    began = time.monotonic()
    with ProcessPoolExecutor(processes) as pool:
        parts = list(
            pool.map(
                send_process,
                [url] * processes,
                per_process,
                [seed * 10 + i for i in range(processes)],
                [seconds] * processes,
                [per_thread_rate] * processes,
            )
        )
    elapsed = time.monotonic() - began
    total = SenderResult()
    for part in parts:
        total.add(part)
    return total, min(elapsed, seconds + 0.5)


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def drain(env: dict, redis_url: str, workers: int, database_url: str) -> tuple[float, dict]:
    """Workers run as in production (not in burst mode, so the second drain a backlog wakes finds a
    worker waiting) until no event is left `received`, then they are stopped."""
    engine = create_engine(database_url)
    connection = redis.Redis.from_url(redis_url)
    say(
        f"draining {connection.llen('rq:queue:vsync')} queued job(s) with {workers} rq worker(s); load {load_average()}"
    )
    waiting = select(func.count()).select_from(WebhookEvent).where(WebhookEvent.status == "received")
    began = time.monotonic()
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "rq.cli",
                "worker",
                "--url",
                redis_url,
                "--worker-class",
                "rq.worker.SimpleWorker",
                "--logging_level",
                "WARNING",
                "vsync",
            ],
            cwd=ROOT,
            env=env,
            start_new_session=True,
        )
        for _ in range(workers)
    ]
    try:
        while time.monotonic() - began < 3600:
            with engine.connect() as conn:
                if not conn.scalar(waiting):
                    break
            time.sleep(0.2)
        elapsed = time.monotonic() - began
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            proc.wait(30)
    with engine.connect() as conn:
        statuses = dict(conn.execute(select(WebhookEvent.status, func.count()).group_by(WebhookEvent.status)).all())
        counts = {
            "stored": conn.scalar(select(func.count()).select_from(WebhookEvent)),
            "call_events": conn.scalar(select(func.count()).select_from(CallEvent)),
            "twice": conn.scalar(select(func.count()).select_from(WebhookEvent).where(WebhookEvent.attempts > 1)),
            "statuses": statuses,
        }
    engine.dispose()
    return elapsed, counts


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--senders", type=int, default=16)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--paced-senders", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args(argv)

    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "VSYNC_ENV": "development",
        "DATABASE_URL": args.database_url,
        "REDIS_URL": args.redis_url,
        "SECRET_KEY": "bench-secret-key",
        "VSYNC_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "VSYNC_LOG_LEVEL": "WARNING",
    }
    recreate_database(args.database_url)
    redis.Redis.from_url(args.redis_url).flushdb()
    token = prepare(env)
    server = start_gunicorn(env, args.port, args.threads)
    base = f"http://127.0.0.1:{args.port}"
    try:
        trivial, flat, trivial_s, flat_s = SenderResult(), SenderResult(), 0.0, 0.0
        turn = args.seconds / args.rounds
        for round_ in range(1, args.rounds + 1):
            say(
                f"round {round_}/{args.rounds}: trivial route, {args.senders} senders, {turn:.0f} s; "
                f"load {load_average()}"
            )
            part, took = load(f"{base}/_bench/ok", args.senders, turn, seed=10 * round_ + 1)
            trivial.add(part)
            trivial_s += took
            say(f"round {round_}/{args.rounds}: receiver, {args.senders} senders, {turn:.0f} s; load {load_average()}")
            part, took = load(f"{base}/webhooks/mightycall/{token}", args.senders, turn, seed=10 * round_ + 2)
            flat.add(part)
            flat_s += took
        say(f"receiver paced at {args.rate:.0f} events/s, {args.seconds:.0f} s; load {load_average()}")
        paced, _ = load(f"{base}/webhooks/mightycall/{token}", args.paced_senders, args.seconds, seed=3, rate=args.rate)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(15)
    unique = len(flat.unique_guids | paced.unique_guids)
    drain_s, counts = drain(env, args.redis_url, args.workers, args.database_url)

    trivial_rate, receiver_rate = trivial.acked / trivial_s, flat.acked / flat_s
    ratio = receiver_rate / trivial_rate if trivial_rate else 0.0
    p99 = percentile(paced.latencies, 0.99)
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    checks = {
        "receiver >= 0.5x trivial route": ratio >= TARGET_RATIO,
        f"p99 ack < {TARGET_P99_MS:.0f} ms at {args.rate:.0f} events/s": p99 * 1000 < TARGET_P99_MS,
        f"drain >= {TARGET_DRAIN:.0f} events/s": counts["stored"] / drain_s >= TARGET_DRAIN,
        "events stored == unique events sent": counts["stored"] == unique,
        "call events == unique events": counts["call_events"] == unique,
        "events processed twice == 0": counts["twice"] == 0,
        "every stored event processed": counts["statuses"] == {"processed": unique},
    }
    print(
        f"machine: {len(os.sched_getaffinity(0))} cores ({model}), {psutil.virtual_memory().total / 2**30:.1f} GB, "
        f"Python {platform.python_version()}; gunicorn 2 workers x {args.threads} threads, PostgreSQL and Redis "
        "on loopback"
    )
    print(
        f"senders: {args.senders} concurrent, {args.seconds:.0f} s per phase ({args.rounds} turns each), "
        f"{DUPLICATE_SHARE:.0%} duplicates"
    )
    print(
        f"trivial route:   {trivial_rate:8.1f} req/s     p50 {ms(percentile(trivial.latencies, 0.5))}  "
        f"p99 {ms(percentile(trivial.latencies, 0.99))}  errors {trivial.errors or 0}"
    )
    print(
        f"receiver:        {receiver_rate:8.1f} events/s  p50 {ms(percentile(flat.latencies, 0.5))}  "
        f"p99 {ms(percentile(flat.latencies, 0.99))}  errors {flat.errors or 0}  ratio {ratio:.2f}x"
    )
    print(
        f"receiver paced:  {paced.acked / args.seconds:8.1f} events/s  p50 {ms(percentile(paced.latencies, 0.5))}  "
        f"p99 {ms(p99)}  errors {paced.errors or 0}"
    )
    print(
        f"drain: {counts['stored']} events through {args.workers} rq workers in {drain_s:.1f} s = "
        f"{counts['stored'] / drain_s:.1f} events/s; statuses {counts['statuses']}"
    )
    print(
        f"unique events acknowledged {unique}, stored {counts['stored']}, call events {counts['call_events']}, "
        f"processed twice {counts['twice']}"
    )
    for name, ok in checks.items():
        print(f"{'PASS' if ok else 'MISS'}  {name}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
