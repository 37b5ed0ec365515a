"""Queue a job by its dotted name, for code that may not import `vsync.jobs` (services).

`enqueue("vsync.jobs.billing.make_month_invoice", org_id, ...)` resolves the name when it is called
and hands the job to `vsync.jobs.enqueue`: on RQ when Redis is configured, else run at once in a
context of its own (the embedded default). `on_failure` and `record_attempt` may be dotted names too.
"""
from __future__ import annotations

import importlib
from datetime import datetime


def _resolve(name_or_callable):
    if name_or_callable is None or callable(name_or_callable):
        return name_or_callable
    module, _, attribute = name_or_callable.rpartition(".")
    return getattr(importlib.import_module(module), attribute)


def enqueue(job: str, *args, job_id=None, retry=None, job_timeout=None, on_failure=None, record_attempt=None,
            at: datetime | None = None) -> str | None:
    """Queue (or run inline) the job named `job` with `args`; the RQ job id, or None when run inline."""
    jobs = importlib.import_module("vsync.jobs")
    return jobs.enqueue(_resolve(job), *args, job_id=job_id, retry=retry, job_timeout=job_timeout,
                        on_failure=_resolve(on_failure), record_attempt=_resolve(record_attempt), at=at)
