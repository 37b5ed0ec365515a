"""A vsync cluster on one machine, and a machine lost: what clients see, what the balancer retries,
and that no webhook event is lost or doubled.

    .venv/bin/python -m bench.cluster [--seconds 90] [--port-base 5120] [--readers 4] [--senders 4]
        [--database-url URL] [--keep-database]

Runs as root or as a user who may run `runuser -u postgres` (PostgreSQL refuses to run as root).
Everything it starts listens on loopback, on --port-base and the next six ports:

    +1 a streaming replica of the running PostgreSQL (127.0.0.1:5432): a second cluster in a temp dir,
       made with `pg_basebackup -R` and started with `pg_ctl`, as `DATABASE_REPLICA_URL`
    +2, +3 two gunicorn instances of vsync (2 workers x 4 threads each) on a fresh, migrated bench
       database (--database-url, DROPPED and recreated; dropped again at the end)
    +4 HAProxy (Debian's `haproxy`) balancing them: health check `GET /api/v1/health` (alive while its
       database is reachable, whatever Redis says), `retry-on` connection failures, empty responses
       and 502/503/504, `option redispatch` (a retry goes to the other instance)
    +5 HAProxy's statistics (CSV: retries and redispatches per server)
    +6 a private `redis-server` (append-only file in the temp dir, so a restart keeps the queue):
       the shared Redis of the machine is never touched
    and two `rq worker -w vsync.jobs.worker.AppWorker --with-scheduler` plus one `rq cron vsync.jobs.cron`.

If PostgreSQL's pg_hba.conf has no `host replication` entry, one line allowing replication from
127.0.0.1 (trust, like the machine's other loopback entries) is appended and the configuration
reloaded; the line is removed and the configuration reloaded again at the end.

For --seconds, --readers threads GET the org's KPIs (`/api/v1/orgs/bench/metrics`, with an API key)
and --senders threads POST signed MightyCall webhook events (one call's events after another, every
event a new Guid), all through the balancer. At 20 % of the run one web instance is killed
(SIGKILL to its whole process group: a machine lost), at 30 % one rq worker (SIGKILL, in the middle of
whatever drain it runs), and at 40 % the private Redis is stopped for 30 s and started again. After
the load the bench waits (up to 3 minutes) until no stored event is left unprocessed.

Report: client-visible errors (reads and deliveries, in total and during the Redis outage), reads
answered during the outage, requests HAProxy retried and redispatched, every acknowledged event id
stored exactly once and applied exactly once (webhook_events and call_events against the ids the
senders were told were stored), how fast queued work resumed after Redis returned, and the reads
the replica served (its own transaction counters for the bench database). Everything it started is
stopped and the temp dir removed at the end, on an error and on Ctrl-C.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import platform
import pwd
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg2
import requests
from cryptography.fernet import Fernet
from flask_migrate import upgrade
from sqlalchemy.engine import make_url

from bench.common import load_average, recreate_database
from vsync import create_app
from vsync.extensions import db
from vsync.mightycall.simulator import WebhookEmitter
from vsync.services import numbers, orgs
from vsync.services.integrations import create_integration
from vsync.services.keys import create_api_key
from vsync.services.webhooks import add_signing_secret
from vsync.tenancy import platform_bypass

ROOT = Path(__file__).resolve().parent.parent
PRIMARY = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/vsync_bench_cluster"
API_KEY, NUMBER, SLUG = "bench-api-key", "+12127363100", "bench"
LIFECYCLES = ("answered", "missed", "voicemail", "outbound")
REDIS_OUTAGE_SECONDS = 30
RESTART_SECONDS = 5  # a service manager's pause before starting an exited worker again
SUPERVISED = ("worker2", "cron")
HBA_MARK = "# vsync bench/cluster.py: replication from loopback, removed when the bench ends"
BACKEND_CHECK = '\'"database": ?"ok"\''


def say(message: str) -> None:
    print(f"  .. [{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def sql(url: str, statement: str, *params):
    conn = psycopg2.connect(url, connect_timeout=3)
    conn.autocommit = True
    try:
        with conn.cursor() as cursor:
            cursor.execute(statement, params)
            return cursor.fetchall() if cursor.description else None
    finally:
        conn.close()


class Cluster:
    """What the bench started, so that all of it stops whatever happens."""

    def __init__(self, base: int, database_url: str):
        self.base = base
        self.database_url = database_url
        self.tmp = Path(tempfile.mkdtemp(prefix="vsync-cluster-"))
        self.processes: dict[str, subprocess.Popen] = {}
        self.commands: dict[str, tuple[list[str], dict | None]] = {}
        self.restarts: dict[str, int] = {}
        self.exited_at: dict[str, float] = {}
        self.replica_dir = self.tmp / "replica"
        self.hba_file: str | None = None
        self.replica_started = False
        self.as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        major = int(sql(PRIMARY, "SHOW server_version_num")[0][0]) // 10000
        self.pg_bin = Path(f"/usr/lib/postgresql/{major}/bin")

    # --- PostgreSQL replica -------------------------------------------------------------------

    def allow_replication(self) -> None:
        rules = sql(
            PRIMARY, "SELECT count(*) FROM pg_hba_file_rules WHERE type = 'host' AND 'replication' = ANY(database)"
        )
        if rules[0][0]:
            return
        self.hba_file = sql(PRIMARY, "SHOW hba_file")[0][0]
        say(f"pg_hba.conf has no replication entry: adding one to {self.hba_file} for the run")
        with open(self.hba_file, "a") as fh:
            fh.write(f"\n{HBA_MARK}\nhost replication all 127.0.0.1/32 trust\n")
        sql(PRIMARY, "SELECT pg_reload_conf()")

    def revert_replication(self) -> None:
        if self.hba_file is None:
            return
        lines = Path(self.hba_file).read_text().splitlines(keepends=True)
        kept, skip = [], False
        for line in lines:
            if line.strip() == HBA_MARK:
                skip = True
                if kept and kept[-1] == "\n":
                    kept.pop()
                continue
            if skip:
                skip = False
                continue
            kept.append(line)
        Path(self.hba_file).write_text("".join(kept))
        sql(PRIMARY, "SELECT pg_reload_conf()")
        say("pg_hba.conf restored")
        self.hba_file = None

    def start_replica(self) -> str:
        postgres = pwd.getpwnam("postgres")
        os.chown(self.tmp, postgres.pw_uid, postgres.pw_gid)
        os.chmod(self.tmp, 0o755)
        began = time.monotonic()
        subprocess.run(
            [*self.as_postgres, str(self.pg_bin / "pg_basebackup"), "-h", "127.0.0.1", "-p", "5432", "-U", "postgres"]
            + ["-D", str(self.replica_dir), "-R", "-X", "stream", "-c", "fast", "--no-sync"],
            check=True,
        )
        say(f"pg_basebackup took {time.monotonic() - began:.1f} s")
        port = self.base + 1
        # A hot standby refuses to start with any of these lower than its primary's.
        at_least = "".join(
            f"{name} = {sql(PRIMARY, f'SHOW {name}')[0][0]}\n"
            for name in (
                "max_connections",
                "max_worker_processes",
                "max_wal_senders",
                "max_prepared_transactions",
                "max_locks_per_transaction",
            )
        )
        config = {
            "postgresql.conf": (
                f"port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{self.tmp}'\n"
                "hot_standby = on\nhot_standby_feedback = on\nshared_buffers = 64MB\n"
                # A throwaway copy: no fsync (nor the startup sync of the whole data directory).
                "fsync = off\ncluster_name = 'vsync_bench_replica'\n" + at_least
            ),
            "pg_hba.conf": "local all all trust\nhost all all 127.0.0.1/32 trust\n",
            "pg_ident.conf": "",
        }
        for name, text in config.items():
            path = self.replica_dir / name
            path.write_text(text)
            os.chown(path, postgres.pw_uid, postgres.pw_gid)
        subprocess.run(
            [*self.as_postgres, str(self.pg_bin / "pg_ctl"), "-D", str(self.replica_dir), "-l"]
            + [str(self.tmp / "replica.log"), "-w", "-t", "60", "start"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        self.replica_started = True
        return f"postgresql://postgres@127.0.0.1:{port}/{make_url(self.database_url).database}"

    def stop_replica(self) -> None:
        if self.replica_started:
            subprocess.run(
                [*self.as_postgres, str(self.pg_bin / "pg_ctl"), "-D", str(self.replica_dir), "-m", "fast", "stop"],
                check=False,
                stdout=subprocess.DEVNULL,
            )
            self.replica_started = False

    # --- processes --------------------------------------------------------------------------------

    def start(self, name: str, argv: list[str], env: dict | None = None) -> subprocess.Popen:
        log = open(self.tmp / f"{name}.log", "ab")  # noqa: SIM115 (kept open for the child's life)
        process = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.processes[name] = process
        self.commands[name] = (argv, env)
        return process

    def supervise(self, names: tuple[str, ...]) -> None:
        """Start again, after `RESTART_SECONDS`, any of `names` that exited by itself, as a service
        manager does (systemd `Restart=always`); one killed on purpose (`kill`) stays down."""
        for name in names:
            process = self.processes.get(name)
            if process is None or process.poll() is None:
                continue
            exited = self.exited_at.setdefault(name, time.monotonic())
            if time.monotonic() - exited >= RESTART_SECONDS:
                del self.exited_at[name]
                self.restarts[name] = self.restarts.get(name, 0) + 1
                say(f"{name} exited (status {process.returncode}): started again")
                self.start(name, *self.commands[name])

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        process = self.processes.pop(name, None)
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)

    def alive(self, name: str) -> bool:
        process = self.processes.get(name)
        return process is not None and process.poll() is None

    def close(self, keep_database: bool, logs: Path | None) -> None:
        for name in list(self.processes):
            self.kill(name, signal.SIGTERM)
        self.stop_replica()
        if logs is not None:
            logs.mkdir(parents=True, exist_ok=True)
            for log in self.tmp.glob("*.log"):
                shutil.copy(log, logs / log.name)
        try:
            self.revert_replication()
        finally:
            if not keep_database:
                recreate_database(self.database_url, drop_only=True)
            shutil.rmtree(self.tmp, ignore_errors=True)


def wait_until(check, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:  # not up yet: anything it raises means "try again"
            pass
        time.sleep(0.2)
    raise SystemExit(f"{what} not ready within {seconds:.0f} s")


def prepare(env: dict) -> tuple[str, str, str]:
    """Migrate the bench database and add an org with an integration (signatures required), its
    number and a read API key; return (webhook token, signing secret, API key)."""
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": env["DATABASE_URL"],
            "REDIS_URL": None,
            "SECRET_KEY": env["SECRET_KEY"],
            "VSYNC_ENCRYPTION_KEYS": [env["VSYNC_ENCRYPTION_KEYS"]],
            "VSYNC_LOG_LEVEL": "WARNING",
        }
    )
    with app.app_context():
        upgrade()
        with platform_bypass("benchmark setup"):
            org = orgs.create_org("Bench", SLUG, "UTC")
            integration, token = create_integration(
                org, api_key=API_KEY, user_key="bench-user-key", base_url="http://127.0.0.1:9/v4"
            )
            secret = add_signing_secret(integration)
            numbers.assign_number(org, numbers.add_number(NUMBER), at=datetime(2020, 1, 1, tzinfo=UTC))
            _, api_key = create_api_key(org_id=org.id, name="bench reads", scopes="read")
            db.session.commit()
        db.engine.dispose()
    return token, secret, api_key


HAPROXY_CONFIG = """global
    maxconn 2000
defaults
    mode http
    timeout connect 1s
    timeout client 30s
    timeout server 30s
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response response-timeout 502 503 504
    option http-buffer-request
frontend vsync
    bind 127.0.0.1:{front}
    default_backend web
backend web
    balance roundrobin
    option httpchk GET /api/v1/health
    http-check expect rstring {check}
    server web1 127.0.0.1:{web1} check inter 1s fall 2 rise 2
    server web2 127.0.0.1:{web2} check inter 1s fall 2 rise 2
listen stats
    bind 127.0.0.1:{stats}
    stats enable
    stats uri /stats
"""


def haproxy_stats(base: int) -> dict[str, dict[str, str]]:
    text = requests.get(f"http://127.0.0.1:{base + 5}/stats;csv", timeout=5).text.lstrip("# ")
    return {f"{row['pxname']}/{row['svname']}": row for row in csv.DictReader(io.StringIO(text))}


# --- load -------------------------------------------------------------------------------------------


@dataclass
class Tally:
    """What the clients saw: (monotonic time, outcome) per request; the ids of acknowledged events."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    reads: list[tuple[float, str, float]] = field(default_factory=list)
    deliveries: list[tuple[float, str, float]] = field(default_factory=list)
    acked: set[str] = field(default_factory=set)
    unacked: set[str] = field(default_factory=set)


def reader(url: str, api_key: str, until: float, tally: Tally) -> None:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {api_key}"
    today = datetime.now(UTC).date()
    params = {"from": (today - timedelta(days=6)).isoformat(), "to": today.isoformat()}
    while time.monotonic() < until:
        began = time.monotonic()
        try:
            outcome = str(session.get(url, params=params, timeout=15).status_code)
        except requests.RequestException as exc:
            outcome = type(exc).__name__
        with tally.lock:
            tally.reads.append((began, outcome, time.monotonic() - began))


def sender(url: str, secret: str, seed: int, until: float, tally: Tally) -> None:
    rng, session = random.Random(seed), requests.Session()
    emitter = WebhookEmitter("http://unused", API_KEY, signing_secret=secret)
    started = datetime.now(UTC) - timedelta(hours=1)
    pending: list[dict] = []
    while time.monotonic() < until:
        if not pending:
            started += timedelta(seconds=1)
            pending = emitter.events(
                rng.choice(LIFECYCLES),
                business_number=NUMBER,
                extension=f"1{rng.randint(0, 20):02d}",
                started_at=started,
                rng=rng,
            )[::-1]
        event = pending.pop()
        body = json.dumps(event, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", emitter.SIGNATURE_HEADER: emitter.signature(body) or ""}
        began = time.monotonic()
        try:
            outcome = str(session.post(url, data=body, headers=headers, timeout=15).status_code)
        except requests.RequestException as exc:
            outcome = type(exc).__name__
        with tally.lock:
            tally.deliveries.append((began, outcome, time.monotonic() - began))
            (tally.acked if outcome == "200" else tally.unacked).add(event["Guid"])


def backlog(database_url: str) -> tuple[int, int]:
    """(events stored and waiting, events applied) in the bench database."""
    rows = dict(sql(database_url, "SELECT status, count(*) FROM webhook_events GROUP BY status") or [])
    return rows.get("received", 0), sum(v for k, v in rows.items() if k != "received")


def replica_counters(replica_url: str) -> tuple[int, int]:
    """The replica's own (transactions, rows returned) in the bench database."""
    name = make_url(replica_url).database
    row = sql(
        replica_url, "SELECT xact_commit + xact_rollback, tup_returned FROM pg_stat_database WHERE datname = %s", name
    )
    return int(row[0][0]), int(row[0][1])


def summarise(samples: list[tuple[float, str, float]], start: float, end: float | None = None) -> dict:
    chosen = [(o, d) for t, o, d in samples if t >= start and (end is None or t < end)]
    outcomes: dict[str, int] = {}
    for outcome, _ in chosen:
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    durations = sorted(d for o, d in chosen if o == "200")
    p95 = durations[min(len(durations) - 1, int(0.95 * len(durations)))] * 1000 if durations else float("nan")
    return {
        "total": len(chosen),
        "ok": outcomes.get("200", 0),
        "errors": {k: v for k, v in outcomes.items() if k != "200"},
        "p95_ms": p95,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=90)
    parser.add_argument("--port-base", type=int, default=5120)
    parser.add_argument("--readers", type=int, default=4)
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--keep-database", action="store_true", help="leave the bench database for a look")
    parser.add_argument("--logs", type=Path, help="copy every process's log here before the temp dir goes")
    args = parser.parse_args(argv)
    if args.seconds < 75:
        raise SystemExit("--seconds must be at least 75: the Redis outage takes 30 s from 40 % of the run")
    for tool in ("haproxy", "redis-server"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed (apt-get install -y {tool.split('-')[0]})")
    base = args.port_base
    cluster = Cluster(base, args.database_url)

    def stop(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)  # also when started in the background, where SIGINT is ignored
    try:
        return run(cluster, args)
    except KeyboardInterrupt:
        say("interrupted: stopping everything")
        return 130
    finally:
        cluster.close(args.keep_database, args.logs)
        say("stopped every process the bench started and removed its temp dir")


def run(cluster: Cluster, args) -> int:
    base, tmp = cluster.base, cluster.tmp
    redis_url = f"redis://127.0.0.1:{base + 6}/0"
    redis_argv = ["redis-server", "--port", str(base + 6), "--bind", "127.0.0.1", "--dir", str(tmp)]
    redis_argv += ["--appendonly", "yes", "--save", "", "--daemonize", "no"]
    cluster.start("redis", redis_argv)

    say(f"load {load_average()}: a streaming replica of 127.0.0.1:5432 on port {base + 1}")
    cluster.allow_replication()
    recreate_database(args.database_url)
    replica_url = cluster.start_replica()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "VSYNC_ENV": "development",
        "DATABASE_URL": args.database_url,
        "DATABASE_REPLICA_URL": replica_url,
        "REDIS_URL": redis_url,
        "SECRET_KEY": "bench-secret-key",
        "VSYNC_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "VSYNC_LOG_LEVEL": "WARNING",
        "VSYNC_RATE_LIMIT_READ": "1000000 per minute",
    }
    token, secret, api_key = prepare(env)
    wait_until(lambda: sql(replica_url, "SELECT 1 FROM organizations WHERE slug = %s", SLUG), 60, "the replica's copy")

    bin_dir = Path(sys.executable).parent
    for name, port in (("web1", base + 2), ("web2", base + 3)):
        cluster.start(
            name,
            [str(bin_dir / "gunicorn"), "--workers", "2", "--threads", "4", "--bind", f"127.0.0.1:{port}"]
            + ["--log-level", "warning", "wsgi:app"],
            env,
        )
    for name in ("worker1", "worker2"):
        cluster.start(
            name,
            [str(bin_dir / "rq"), "worker", "-w", "vsync.jobs.worker.AppWorker", "--with-scheduler", "--url", redis_url]
            + ["--logging_level", "WARNING", "vsync"],
            env,
        )
    cluster.start("cron", [str(bin_dir / "rq"), "cron", "vsync.jobs.cron", "--url", redis_url, "-l", "warning"], env)
    config = tmp / "haproxy.cfg"
    config.write_text(
        HAPROXY_CONFIG.format(front=base + 4, web1=base + 2, web2=base + 3, stats=base + 5, check=BACKEND_CHECK)
    )
    cluster.start("haproxy", ["haproxy", "-db", "-f", str(config)])
    front = f"http://127.0.0.1:{base + 4}"
    wait_until(
        lambda: all(haproxy_stats(base)[f"web/{s}"]["status"] == "UP" for s in ("web1", "web2")),
        90,
        "both web instances",
    )
    replica_before = replica_counters(replica_url)

    tally = Tally()
    began = time.monotonic()
    until = began + args.seconds
    metrics_url = f"{front}/api/v1/orgs/{SLUG}/metrics"
    hook_url = f"{front}/webhooks/mightycall/{token}"
    threads = [
        threading.Thread(target=reader, args=(metrics_url, api_key, until, tally), daemon=True)
        for _ in range(args.readers)
    ]
    threads += [
        threading.Thread(target=sender, args=(hook_url, secret, seed, until, tally), daemon=True)
        for seed in range(args.senders)
    ]
    say(f"load {load_average()}: {args.readers} readers and {args.senders} senders for {args.seconds:.0f} s")
    for thread in threads:
        thread.start()

    timeline: list[tuple[float, int, int]] = []
    marks: dict[str, float] = {}
    plan = [
        (0.2, "web1 killed", lambda: cluster.kill("web1")),
        (0.3, "worker1 killed", lambda: cluster.kill("worker1")),
        (0.4, "redis stopped", lambda: cluster.kill("redis", signal.SIGTERM)),
        (0.4 + REDIS_OUTAGE_SECONDS / args.seconds, "redis started", lambda: cluster.start("redis", redis_argv)),
    ]
    while time.monotonic() < until or any(t.is_alive() for t in threads):
        now = time.monotonic()
        while plan and now - began >= plan[0][0] * args.seconds:
            _, what, act = plan.pop(0)
            act()
            marks[what] = time.monotonic()
            say(f"{what} at {marks[what] - began:.1f} s; load {load_average()}")
        cluster.supervise(SUPERVISED)
        timeline.append((now, *backlog(args.database_url)))
        time.sleep(1)
    load_end = time.monotonic()
    say("load over: waiting for every stored event to be applied (up to 3 minutes)")
    deadline = load_end + 180
    while time.monotonic() < deadline:
        cluster.supervise(SUPERVISED)
        timeline.append((time.monotonic(), *backlog(args.database_url)))
        if timeline[-1][1] == 0:
            break
        time.sleep(1)
    settled = time.monotonic()
    replica_after = replica_counters(replica_url)
    stats = haproxy_stats(base)
    alive = {name: cluster.alive(name) for name in ("web2", "worker2", "cron")}

    # Every acknowledged id stored once and applied once; nothing stored that no one sent.
    stored = dict(sql(args.database_url, "SELECT guid, count(*) FROM webhook_events GROUP BY guid") or [])
    applied = dict(sql(args.database_url, "SELECT guid, count(*) FROM call_events GROUP BY guid") or [])
    statuses = dict(sql(args.database_url, "SELECT status, count(*) FROM webhook_events GROUP BY status") or [])
    lost = tally.acked - stored.keys()
    doubled = [g for g, n in stored.items() if n > 1]
    applied_twice = [g for g, n in applied.items() if n > 1]
    not_applied = tally.acked - applied.keys()
    strangers = stored.keys() - tally.acked - tally.unacked

    outage_start, outage_end = marks["redis stopped"], marks["redis started"]
    during = [(t, r, p) for t, r, p in timeline if outage_start <= t < outage_end]
    after = [(t, r, p) for t, r, p in timeline if t >= outage_end]
    applied_at_return = after[0][2] if after else 0
    resumed = next((t - outage_end for t, _, p in after if p > applied_at_return), None)
    caught_up = next((t - outage_end for t, r, _ in after if r <= 5), None)

    retries = sum(int(stats[f"web/{s}"]["wretr"] or 0) for s in ("web1", "web2"))
    redispatches = int(stats["web/BACKEND"]["wredis"] or 0)
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    reads, deliveries = summarise(tally.reads, began), summarise(tally.deliveries, began)
    reads_out = summarise(tally.reads, outage_start, outage_end)
    deliveries_out = summarise(tally.deliveries, outage_start, outage_end)
    print(
        f"machine: {len(os.sched_getaffinity(0))} cores ({model}), Python {platform.python_version()}, "
        f"load {load_average()}"
    )
    print(
        f"run: {args.seconds:.0f} s, {args.readers} readers + {args.senders} senders through HAProxy; "
        + ", ".join(f"{what} at {t - began:.0f} s" for what, t in marks.items())
    )
    print(
        f"reads:      {reads['ok']}/{reads['total']} answered 200, p95 {reads['p95_ms']:.0f} ms, "
        f"errors {reads['errors'] or 0}"
    )
    print(
        f"deliveries: {deliveries['ok']}/{deliveries['total']} acknowledged, p95 {deliveries['p95_ms']:.0f} ms, "
        f"errors {deliveries['errors'] or 0}"
    )
    print(
        f"Redis outage ({outage_end - outage_start:.0f} s): reads {reads_out['ok']}/{reads_out['total']} answered "
        f"(errors {reads_out['errors'] or 0}), deliveries {deliveries_out['ok']}/{deliveries_out['total']} "
        f"acknowledged (errors {deliveries_out['errors'] or 0}); backlog of stored events peaked at "
        f"{max((r for _, r, _ in during), default=0)}"
    )
    print(
        "queued work after Redis returned: applying again after "
        + (f"{resumed:.0f} s" if resumed is not None else "never")
        + ", backlog back to <= 5 after "
        + (f"{caught_up:.0f} s" if caught_up is not None else "never (within 3 minutes of the load's end)")
        + f"; all applied {settled - load_end:.0f} s after the load ended"
    )
    failed_at = sorted(t - began for t, o, _ in tally.reads + tally.deliveries if t >= began and o != "200")
    print(f"client-visible errors at (s into the run): {', '.join(f'{t:.1f}' for t in failed_at) or 'none'}")
    print(f"balancer: {retries} requests retried, {redispatches} redispatched to the other instance")
    print(
        f"events: {len(tally.acked)} acknowledged, {len(stored)} stored, statuses {statuses}; lost {len(lost)}, "
        f"stored twice {len(doubled)}, applied twice {len(applied_twice)}, acknowledged but not applied "
        f"{len(not_applied)}, stored though never sent {len(strangers)}"
    )
    print(
        f"replica: {replica_after[0] - replica_before[0]} transactions and {replica_after[1] - replica_before[1]} rows "
        f"returned on it during the run (bench database)"
    )
    print(f"still running at the end: {alive}; started again after exiting by themselves: {cluster.restarts or 0}")
    checks = {
        "no event lost": not lost,
        "no event stored twice": not doubled,
        "no event applied twice": not applied_twice,
        "every acknowledged event applied": not not_applied,
        "reads answered during the Redis outage": reads_out["ok"] > 0 and not reads_out["errors"],
        "no client-visible error": not reads["errors"] and not deliveries["errors"],
        "the replica served reads": replica_after[0] > replica_before[0],
    }
    for name, ok in checks.items():
        print(f"{'PASS' if ok else 'MISS'}  {name}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
