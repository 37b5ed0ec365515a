"""Background jobs: thin functions that RQ runs (or `vsync.queue` runs inline, without Redis).

A job takes ids, never ORM objects, opens its own app context (so its own database session) and its
own tenant scope or platform bypass, and calls a service that does the work: the sync engine
(`vsync.services.sync.engine`), webhook processing (`vsync.services.webhooks.process`). Services
queue jobs by dotted name through `vsync.queue`, so nothing outside this package imports it (the
worker, the schedule and cron live here; `tests/test_layers.py` checks it). Each job is safe to run
twice: a sync re-upserts the same rows, and a finished run is not run again. Every log record of a
job carries its job id (`vsync.http.LogContext`).

Workers: `rq worker -w vsync.jobs.worker.AppWorker …` builds the app once, before it forks a work
horse per job, and the horses inherit it (RQ's "Performance notes"); a plain `rq worker` works too,
but then every job pays for building the app.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask, current_app, has_app_context

log = logging.getLogger(__name__)

_worker_app: Flask | None = None
_worker_app_lock = threading.Lock()


def app_for_worker() -> Flask:
    """The app of this worker process, built from the environment (like the web app) on first use.

    `AppWorker` calls it before forking, so work horses find it built; a process that forks none
    (a plain `rq worker`'s horse, a script) builds it at its first job.
    """
    global _worker_app
    with _worker_app_lock:
        if _worker_app is None:
            from vsync import create_app  # built at first use, never at import

            _worker_app = create_app()
            log.info("worker %s: app built for jobs", os.getpid())
        return _worker_app


@contextmanager
def job_context() -> Iterator[Flask]:
    """A fresh app context, and so a fresh session that no request or other job shares."""
    # Flask types `current_app` as the app itself, not the proxy it is.
    app = current_app._get_current_object() if has_app_context() else app_for_worker()  # pyright: ignore[reportAttributeAccessIssue]
    with app.app_context():
        yield app
