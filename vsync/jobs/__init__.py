"""Background jobs on RQ, or inline when no `REDIS_URL` is configured (the embedded default).

Jobs are plain functions that take ids, never ORM objects, and open their own app context (so their
own database session) and their own tenant scope. Each is safe to run twice: a sync re-upserts the
same rows, and a finished run is not run again. Every log record of a job carries its job id
(`vsync.http.LogContext`, from `current_job_id`).

Workers: `rq worker -w vsync.jobs.worker.AppWorker …` builds the app once, before it forks a work
horse per job, and the horses inherit it (RQ's "Performance notes"); a plain `rq worker` works too,
but then every job pays for building the app.
"""
from __future__ import annotations

import logging
import os
import threading
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime

from flask import Flask, current_app, has_app_context
from redis import Redis
from rq import Callback, Queue, Retry, get_current_job

from vsync.services.sync import register_sync_queue

log = logging.getLogger(__name__)

QUEUE_NAME = "vsync"
_worker_app: Flask | None = None
_worker_app_lock = threading.Lock()
_failed_job: ContextVar[str | None] = ContextVar("vsync_failed_job", default=None)


def redis_connection() -> Redis | None:
    return current_app.extensions.get("vsync.redis")


def queue() -> Queue | None:
    connection = redis_connection()
    return Queue(QUEUE_NAME, connection=connection) if connection is not None else None


def enqueue(func, *args, job_id: str | None = None, retry: Retry | None = None, job_timeout: int | None = None,
            on_failure=None, record_attempt=None, at: datetime | None = None) -> str | None:
    """Queue `func(*args)` on RQ (for `at`, when that time comes: RQ's scheduler), or, without Redis,
    run it now in a context of its own.

    Inline, a job with `record_attempt(*args, exc, will_retry=)` gets as many attempts as
    `retry` would give it on RQ, back to back, each failure recorded (where RQ calls `on_failure`);
    without it a failure propagates. Returns the RQ job id, or None when run inline.
    """
    q = queue()
    if q is None:
        attempts = 1 + (retry.max if retry is not None else 0)
        for attempt in range(1, attempts + 1):
            try:
                func(*args)
                return None
            except Exception as exc:
                if record_attempt is None:
                    raise
                record_attempt(*args, exc, will_retry=attempt < attempts)
        return None
    options = {"job_id": job_id, "retry": retry, "job_timeout": job_timeout, "failure_ttl": 7 * 86400,
               "result_ttl": 86400, "on_failure": Callback(on_failure) if on_failure else None}
    job = q.enqueue_at(at, func, *args, **options) if at is not None else q.enqueue(func, *args, **options)
    return job.id


def current_job_id() -> str | None:
    """The id of the RQ job this code runs in, or of the job whose failure callback it is; None
    outside RQ (a request, the CLI, a job run inline)."""
    job = get_current_job()
    return job.id if job is not None else _failed_job.get()


@contextmanager
def failure_of(job_id: str):
    """Marks a failure callback's work as its job's: RQ calls it after the job has finished, when
    `get_current_job` no longer knows it."""
    token = _failed_job.set(job_id)
    try:
        yield
    finally:
        _failed_job.reset(token)


def app_for_worker() -> Flask:
    """The app of this worker process, built from the environment (like the web app) on first use.

    `AppWorker` calls it before forking, so work horses find it built; a process that forks none
    (a plain `rq worker`'s horse, a script) builds it at its first job.
    """
    global _worker_app
    with _worker_app_lock:
        if _worker_app is None:
            from vsync import create_app  # the app factory imports this package: resolved at first use
            _worker_app = create_app()
            log.info("worker %s: app built for jobs", os.getpid())
        return _worker_app


@contextmanager
def job_context():
    """A fresh app context, and so a fresh session that no request or other job shares."""
    app = current_app._get_current_object() if has_app_context() else app_for_worker()
    with app.app_context():
        yield app


def init_app(app: Flask) -> None:
    from vsync.jobs.sync import RqSyncQueue  # it imports this package, so it is bound here, not at import

    url = app.config.get("REDIS_URL")
    app.extensions["vsync.redis"] = (
        Redis.from_url(url, socket_connect_timeout=2, socket_timeout=10) if url else None)
    register_sync_queue(app, RqSyncQueue())
