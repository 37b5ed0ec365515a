"""What a trivial job costs on a real `rq worker`, building the app per job (before) or once (after).

    .venv/bin/python -m bench.worker_overhead [--jobs 20] [--redis-url URL] [--database-url URL]

--jobs          trivial jobs per measurement (default 20).
--redis-url     the Redis the workers take jobs from (default redis://127.0.0.1:6379/12); the bench
                uses a queue of its own (`vsync-bench-worker`) and leaves other queues alone.
--database-url  what the app is configured with (default postgresql://postgres@127.0.0.1:5432/vsync_bench);
                the trivial job opens an app context but runs no query, so nothing is written.

How it measures: for each worker class, N trivial jobs (`job_context()` and nothing else, the least
any vsync job does) are queued and a real `rq worker --burst` process runs them and exits. The
per-job cost is the time between the first job's end and the last job's end, divided by N - 1, from
RQ's own job timestamps: fork, app (or none), job and RQ's bookkeeping, in steady state, without the
worker's start-up, the one-time app build of `AppWorker`, or its shutdown. Before: a plain `rq
worker`, whose work horses each build the app. After: `rq worker -w vsync.jobs.worker.AppWorker`,
whose horses inherit the app built before they fork.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from vsync.jobs import job_context

QUEUE = "vsync-bench-worker"
ROOT = Path(__file__).resolve().parent.parent


def trivial_job() -> None:
    """The least a vsync job does: open its app context (and so need the app)."""
    with job_context():
        return


def per_job_seconds(redis_url: str, env: dict[str, str], jobs: int, worker_class: str | None) -> float:
    """Queue `jobs` trivial jobs, run one `rq worker --burst` over them; seconds per job in steady state."""
    from redis import Redis
    from rq import Queue

    connection = Redis.from_url(redis_url, socket_connect_timeout=2, socket_timeout=10)
    queue = Queue(QUEUE, connection=connection)
    queue.empty()
    queued = [queue.enqueue(f"bench.worker_overhead.{trivial_job.__name__}", result_ttl=60) for _ in range(jobs)]
    command = [str(Path(sys.executable).parent / "rq"), "worker", "--burst", "--quiet", "--url", redis_url]
    if worker_class:
        command += ["-w", worker_class]
    done = subprocess.run(
        [*command, QUEUE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"rq worker failed ({done.returncode}):\n{done.stderr[-2000:]}")
    for job in queued:
        job.refresh()
    failed = [job.id for job in queued if job.get_status() != "finished"]
    if failed:
        raise SystemExit(f"{len(failed)} trivial job(s) did not finish; see the worker's log:\n{done.stderr[-2000:]}")
    ends = sorted(job.ended_at for job in queued)
    return (ends[-1] - ends[0]).total_seconds() / (jobs - 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/12")
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/vsync_bench")
    args = parser.parse_args()
    if args.jobs < 2:
        parser.error("--jobs must be at least 2")
    from cryptography.fernet import Fernet

    env = {
        **os.environ,
        "DATABASE_URL": args.database_url,
        "REDIS_URL": args.redis_url,
        "SECRET_KEY": "bench-secret-key",
        "VSYNC_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "VSYNC_LOG_LEVEL": "WARNING",
    }
    print(f"{args.jobs} trivial jobs per worker, load average {os.getloadavg()[0]:.2f}", file=sys.stderr, flush=True)
    before = per_job_seconds(args.redis_url, env, args.jobs, None)
    after = per_job_seconds(args.redis_url, env, args.jobs, "vsync.jobs.worker.AppWorker")
    print(f"before (rq worker, app built in every work horse): {before:.3f} s per job")
    print(f"after  (AppWorker, app built once per worker):      {after:.3f} s per job")
    print(f"ratio: {before / after:.1f}x")


if __name__ == "__main__":
    main()
