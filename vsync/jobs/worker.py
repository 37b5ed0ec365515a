"""The RQ worker class: `rq worker -w vsync.jobs.worker.AppWorker --url "$REDIS_URL" vsync`.

RQ forks a work horse for every job. A plain worker's horse starts without the app and builds it
(configuration, extensions, every blueprint and admin view) before the job can open a context: about
a second per job, whatever the job. `AppWorker` builds it once, in the worker process, before any
fork, as RQ's "Performance notes" advise: each horse inherits it and goes straight to its job.
"""

from __future__ import annotations

from rq import Worker
from rq.job import Job
from rq.queue import Queue

from vsync.extensions import db
from vsync.jobs import app_for_worker


class AppWorker(Worker):
    """An RQ worker whose work horses inherit one app built before they fork."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        app_for_worker()

    def main_work_horse(self, job: Job, queue: Queue) -> None:
        # A forked horse must not share pooled database connections with its parent or siblings:
        # drop the inherited pool (without closing the parent's sockets) so the horse opens its own.
        with app_for_worker().app_context():
            db.engine.dispose(close=False)
        super().main_work_horse(job, queue)
