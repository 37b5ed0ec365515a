"""Reading sync runs: the listing every edge shows, and one run as its worker last committed it."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from vsync.errors import NotFound, ValidationError
from vsync.extensions import db
from vsync.models import Organization, SyncRun
from vsync.models.types import utcnow

MAX_LISTED_RUNS = 1000


def recent_runs(org: Organization, *, limit: int = 20) -> list[SyncRun]:
    """The organisation's latest `limit` runs (1..MAX_LISTED_RUNS), newest first."""
    if not 1 <= limit <= MAX_LISTED_RUNS:
        raise ValidationError(f"limit must be between 1 and {MAX_LISTED_RUNS}, not {limit}.", field="limit")
    return list(
        db.session.scalars(select(SyncRun).where(SyncRun.org_id == org.id).order_by(SyncRun.id.desc()).limit(limit))
    )


def latest_state(run_id: int) -> SyncRun:
    """The run as last committed, for a caller polling a run that another process is doing.

    Ends the caller's read transaction first, so the answer is not an old snapshot; the caller
    must have nothing uncommitted.
    """
    db.session.rollback()
    run = db.session.get(SyncRun, run_id, populate_existing=True)
    if run is None:
        raise NotFound(f"No sync run {run_id}.", field="run")
    return run


def duration(run: SyncRun) -> timedelta | None:
    """How long the run has worked: start to finish, or to now while it runs; None before it starts."""
    if run.started_at is None:
        return None
    return (run.finished_at or utcnow()) - run.started_at
