"""The work queue: RQ on Redis when `REDIS_URL` is set, else jobs run inline (the embedded default).

Jobs are named by their dotted path (`"vsync.jobs.sync.run_sync_job"`), never imported, so the
services that queue work do not depend on the jobs that call them back (RQ stores a job's function
by name anyway). Without Redis, `enqueue` imports the job and runs it at once, in the caller's process.

Nothing here imports the app: the services, the web plumbing (`vsync.http` puts the job id on log
records) and the jobs all use it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime

from flask import Flask, current_app
from redis import Redis
from rq import Callback, Queue, Retry, get_current_job
from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq.utils import import_attribute

QUEUE_NAME = "vsync"
_failed_job: ContextVar[str | None] = ContextVar("vsync_failed_job", default=None)


def init_app(app: Flask) -> None:
    url = app.config.get("REDIS_URL")
    app.extensions["vsync.redis"] = Redis.from_url(url, socket_connect_timeout=2, socket_timeout=10) if url else None


def redis_connection() -> Redis | None:
    """The app's Redis connection, or None in the embedded default (jobs run inline)."""
    return current_app.extensions.get("vsync.redis")


def rq_queue() -> Queue | None:
    connection = redis_connection()
    return Queue(QUEUE_NAME, connection=connection) if connection is not None else None


def enqueue(
    job: str,
    *args,
    job_id: str | None = None,
    retry: Retry | None = None,
    job_timeout: int | None = None,
    on_failure: str | None = None,
    record_attempt: str | None = None,
    at: datetime | None = None,
) -> str | None:
    """Queue the job named `job` with `args` on RQ (for `at`, when that time comes: RQ's scheduler),
    or, without Redis, run it now in the caller's process.

    Inline, a job with `record_attempt` (called as `record_attempt(*args, exc, will_retry=)`) gets as
    many attempts as `retry` would give it on RQ, back to back, each failure recorded (where RQ calls
    `on_failure`); without it a failure propagates. Returns the RQ job id, or None when run inline.
    """
    q = rq_queue()
    if q is None:
        _run_inline(job, args, retry, record_attempt)
        return None
    options = {
        "job_id": job_id,
        "retry": retry,
        "job_timeout": job_timeout,
        "failure_ttl": 7 * 86400,
        "result_ttl": 86400,
        "on_failure": Callback(on_failure) if on_failure else None,
    }
    queued = q.enqueue_at(at, job, *args, **options) if at is not None else q.enqueue(job, *args, **options)
    return queued.id


def _run_inline(job: str, args: tuple, retry: Retry | None, record_attempt: str | None) -> None:
    func = import_attribute(job)
    attempts = 1 + (retry.max if retry is not None else 0)
    for attempt in range(1, attempts + 1):
        try:
            func(*args)
            return
        except Exception as exc:
            if record_attempt is None:
                raise
            import_attribute(record_attempt)(*args, exc, will_retry=attempt < attempts)


def job_lost(job_id: str) -> bool:
    """True when the queue no longer has the job (Redis was flushed or restarted); never inline."""
    connection = redis_connection()
    if connection is None:
        return False
    try:
        Job.fetch(job_id, connection=connection)
    except NoSuchJobError:
        return True
    return False


def current_job_id() -> str | None:
    """The id of the RQ job this code runs in, or of the job whose failure callback it is; None
    outside RQ (a request, the CLI, a job run inline)."""
    job = get_current_job()
    return job.id if job is not None else _failed_job.get()


@contextmanager
def failure_of(job_id: str) -> Iterator[None]:
    """Marks a failure callback's work as its job's: RQ calls it after the job has finished, when
    `get_current_job` no longer knows it."""
    token = _failed_job.set(job_id)
    try:
        yield
    finally:
        _failed_job.reset(token)
