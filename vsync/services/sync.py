"""Starting syncs: the one operation the CLI, the API, the admin and the scheduler all call.

A sync run is one kind (`numbers`, `agents`, `calls`, `sms`) for one integration over one window.
Calls and SMS without an explicit window sync incrementally: from the kind's cursor (the end of the
last completed window) minus an overlap, so records that arrived late or shifted between pages are
read again, up to a minute ago, so only closed windows are read. An explicit `since`/`until` is a
backfill, split into day chunks by the job.

At most one run per integration and kind is queued or running. Asking again joins it (the same
run comes back) when no window, or the same window, is asked for; a different window is refused
with a clear message. The database enforces it (a partial unique index), so two web workers racing
cannot both start one.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from flask import current_app
from rq.exceptions import NoSuchJobError
from rq.job import Job
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from vsync.errors import Conflict, ValidationError
from vsync.extensions import db
from vsync.jobs import redis_connection
from vsync.jobs.sync import dispatch
from vsync.models import Integration, SyncRun
from vsync.models.integrations import ACTIVE
from vsync.models.operations import ACTIVE_SYNC_STATUSES, FAILED, QUEUED, RUNNING, SYNC_KINDS
from vsync.models.types import utcnow
from vsync.services import audit
from vsync.timeutil import isoformat_z

log = logging.getLogger(__name__)

ALL_KINDS = ("numbers", "agents", "calls", "sms")  # `all` runs them in this order: numbers first
WINDOWED_KINDS = ("calls", "sms")
CLOSED_WINDOW_LAG = timedelta(minutes=1)
MAX_BACKFILL = timedelta(days=3 * 366)


def _setting(name: str, default: int) -> int:
    return int(current_app.config.get(name, default))


def cursor_of(integration: Integration, kind: str) -> datetime | None:
    value = (integration.sync_cursors or {}).get(kind)
    return datetime.fromisoformat(value) if value else None


def incremental_window(integration: Integration, kind: str, now: datetime) -> tuple[datetime, datetime]:
    end = now - CLOSED_WINDOW_LAG
    cursor = cursor_of(integration, kind)
    if cursor is None:
        return end - timedelta(days=_setting("VSYNC_SYNC_INITIAL_DAYS", 7)), end
    return min(cursor - timedelta(minutes=_setting("VSYNC_SYNC_OVERLAP_MINUTES", 60)), end), end


def _window(integration: Integration, kind: str, since: datetime | None, until: datetime | None,
            now: datetime) -> tuple[datetime | None, datetime | None, str]:
    if kind not in WINDOWED_KINDS:
        if since or until:
            raise ValidationError(f"A {kind} sync reads the account as it is now; it takes no window.", field="since")
        return None, None, "snapshot"
    if since is None and until is None:
        return (*incremental_window(integration, kind, now), "incremental")
    if since is None:
        raise ValidationError("A window needs its start (since) too.", field="since")
    until = min(until or now - CLOSED_WINDOW_LAG, now)
    if since >= until:
        raise ValidationError(f"since ({isoformat_z(since)}) must come before until ({isoformat_z(until)}).",
                              field="since")
    if until - since > MAX_BACKFILL:
        raise ValidationError("A backfill covers at most three years; split it.", field="since")
    return since, until, "backfill"


def active_run(integration_id: int, kind: str) -> SyncRun | None:
    return db.session.scalar(select(SyncRun).where(
        SyncRun.integration_id == integration_id, SyncRun.kind == kind, SyncRun.status.in_(ACTIVE_SYNC_STATUSES)))


def start_sync(integration: Integration, kind: str, *, since: datetime | None = None,
               until: datetime | None = None, trigger: str = "manual",
               requested_by_user_id: int | None = None) -> tuple[SyncRun, bool]:
    """Queue a sync (or join the one under way). Returns the run and whether it was joined.

    Commits: a queued job must find its run. Without Redis the job runs before this returns.
    """
    if kind not in SYNC_KINDS:
        raise ValidationError(f"kind must be one of {', '.join(SYNC_KINDS)}.", field="kind")
    if integration.status != ACTIVE:
        raise Conflict(f"Integration {integration.id} is {integration.status}; enable it to sync.", field="integration")
    now = utcnow()
    window_start, window_end, mode = _window(integration, kind, since, until, now)
    if trigger == "manual" and mode == "backfill":
        trigger = "backfill"
    reap_stale_runs(integration.id)

    existing = active_run(integration.id, kind)
    if existing is None:
        run = SyncRun(org_id=integration.org_id, integration_id=integration.id, kind=kind, trigger=trigger,
                      status=QUEUED, window_start=window_start, window_end=window_end,
                      requested_by_user_id=requested_by_user_id)
        try:
            with db.session.begin_nested():
                db.session.add(run)
        except IntegrityError:  # another worker started the same sync a moment ago
            existing = active_run(integration.id, kind)
            if existing is None:
                raise
    if existing is not None:
        if mode == "backfill" and (existing.window_start, existing.window_end) != (window_start, window_end):
            raise Conflict(
                f"A {kind} sync of integration {integration.id} is already {existing.status} (run {existing.id}, "
                f"{isoformat_z(existing.window_start)} to {isoformat_z(existing.window_end)}); "
                "wait for it to finish, then ask again.", field="kind")
        return existing, True

    window = f" {isoformat_z(window_start)} to {isoformat_z(window_end)}" if window_start else ""
    audit.record("sync.requested", org_id=integration.org_id, target=run, summary=f"{kind} ({trigger}){window}")
    db.session.commit()

    run_id = run.id
    job_id = dispatch(integration.org_id, run_id)
    run = db.session.get(SyncRun, run_id)
    if job_id is not None:
        run.job_id = job_id
        db.session.commit()
    else:
        db.session.refresh(run)
    return run, False


def reap_stale_runs(integration_id: int | None = None) -> list[int]:
    """Mark failed the runs whose worker died: running without a heartbeat for
    `VSYNC_SYNC_STALE_SECONDS`, or queued on a job the queue no longer has. Returns their ids."""
    stale_before = utcnow() - timedelta(seconds=_setting("VSYNC_SYNC_STALE_SECONDS", 900))
    query = select(SyncRun).where(SyncRun.status.in_(ACTIVE_SYNC_STATUSES))
    if integration_id is not None:
        query = query.where(SyncRun.integration_id == integration_id)
    connection = redis_connection()
    reaped = []
    for run in db.session.scalars(query):
        reason = None
        if run.status == RUNNING and (run.heartbeat_at or run.created_at) < stale_before:
            reason = (f"The worker running this sync stopped responding (last heartbeat "
                      f"{isoformat_z(run.heartbeat_at or run.created_at)}). The next sync resumes from the last "
                      "completed window.")
        elif run.status == QUEUED and run.job_id and connection is not None:
            try:
                Job.fetch(run.job_id, connection=connection)
            except NoSuchJobError:
                reason = "The queued job was lost from the queue (Redis was flushed or restarted); ask again."
        if reason:
            run.status, run.error, run.finished_at = FAILED, reason, utcnow()
            reaped.append(run.id)
            log.warning("sync run %s marked failed: %s", run.id, reason)
    if reaped:
        db.session.flush()
    return reaped
