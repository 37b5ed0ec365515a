"""The sync job, queued by `vsync.services.sync.start_sync` under these names; the engine
(`vsync.services.sync.engine`) does the work, and says what each failure means.

Errors a retry can help are raised so RQ retries the job (`VSYNC_SYNC_RETRY_INTERVALS`); RQ calls
`on_sync_failure` after every failed attempt, and the inline runner (`vsync.queue`) calls
`record_attempt` the same way.
"""

from __future__ import annotations

from vsync.jobs import job_context
from vsync.queue import failure_of
from vsync.services.sync import engine
from vsync.tenancy import tenant


def run_sync_job(org_id: int, run_id: int) -> str:
    """The RQ job of one sync run; returns its outcome (see `engine.run_sync`)."""
    with job_context(), tenant(org_id):
        return engine.run_sync(run_id)


def record_attempt(org_id: int, run_id: int, exc: BaseException, will_retry: bool) -> None:
    with job_context(), tenant(org_id):
        engine.record_attempt(run_id, exc, will_retry=will_retry)


def on_sync_failure(job, connection, exc_type, exc_value, traceback) -> None:
    """RQ failure callback, called on every failed attempt; RQ retries while `retries_left`."""
    org_id, run_id = job.args
    with failure_of(job.id):
        record_attempt(org_id, run_id, exc_value, will_retry=bool(job.retries_left))
