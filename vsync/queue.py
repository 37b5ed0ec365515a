"""Queue a job by its dotted name: the one way services reach workers without importing `vsync.jobs`.

On RQ the job is enqueued; without Redis (the embedded default) the function is imported and run
inline, with as many attempts as `retry` gives, each failure handed to `record_attempt`. Both ways
go through `vsync.jobs.enqueue`, which this module resolves by name at call time.
"""
from __future__ import annotations

from datetime import datetime
from importlib import import_module

from rq import Retry


def resolve(dotted: str):
    """The function a dotted name (`package.module.function`) names."""
    module, _, name = dotted.rpartition(".")
    return getattr(import_module(module), name)


def enqueue(job: str, *args, job_id: str | None = None, retry: Retry | None = None, job_timeout: int | None = None,
            on_failure: str | None = None, record_attempt: str | None = None,
            at: datetime | None = None) -> str | None:
    """Queue `job(*args)` (RQ job id), or run it now without Redis (None). See the module docstring."""
    jobs = import_module("vsync.jobs")
    return jobs.enqueue(resolve(job), *args, job_id=job_id, retry=retry, job_timeout=job_timeout,
                        on_failure=resolve(on_failure) if on_failure else None,
                        record_attempt=resolve(record_attempt) if record_attempt else None, at=at)
