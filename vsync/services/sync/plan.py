"""Starting syncs: the one operation the CLI, the API, the admin and the scheduler all call.

A sync run is one kind (`numbers`, `agents`, `calls`, `sms`) for one integration over one window.
Calls and SMS without an explicit window sync incrementally: from the kind's cursor (the end of the
last completed window) minus an overlap, so records that arrived late or shifted between pages are
read again, up to a minute ago, so only closed windows are read. An explicit `since`/`until` is a
backfill, split into day chunks by the engine. Numbers and agents are read as the account is now and
take no window.

At most one run per integration and kind is queued or running. Asking again joins it (the same
run comes back) when no window, or the same window, is asked for; a different window is refused
with a clear message. The database enforces it (a partial unique index), so two web workers racing
cannot both start one.

A run reaches a worker as the job `vsync.jobs.sync.run_sync_job`, queued by name (`vsync.queue`),
which hands it to the engine (`vsync.services.sync.engine`); the engine reads and moves the kind's
cursor with `cursor_of` and `advance_cursor` below.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from rq import Retry
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from vsync.errors import Conflict, ValidationError
from vsync.extensions import db
from vsync.models import Integration, SyncRun
from vsync.models.integrations import ACTIVE
from vsync.models.operations import ACTIVE_SYNC_STATUSES, FAILED, QUEUED, RUNNING, SYNC_KINDS
from vsync.models.types import utcnow
from vsync.queue import enqueue, job_lost
from vsync.services import audit
from vsync.services.notifications import sync_failures
from vsync.timeutil import isoformat_z

log = logging.getLogger(__name__)

ALL_KINDS = ("numbers", "agents", "calls", "sms")  # `all` runs them in this order: numbers first
WINDOWED_KINDS = ("calls", "sms")
CLOSED_WINDOW_LAG = timedelta(minutes=1)
MAX_BACKFILL = timedelta(days=3 * 366)
JOB_TIMEOUT = 4 * 3600


def _setting(name: str, default: int) -> int:
    return int(current_app.config.get(name, default))


def cursor_of(integration: Integration, kind: str) -> datetime | None:
    """The end of the last window of `kind` that completed, or None before the first one."""
    value = (integration.sync_cursors or {}).get(kind)
    return datetime.fromisoformat(value) if value else None


def advance_cursor(integration: Integration, kind: str, chunk_start: datetime, chunk_end: datetime) -> bool:
    """Move the cursor of `kind` to the end of a chunk just completed, when that chunk continues
    from it (or there is none yet); a backfill of older days leaves a later cursor alone. Returns
    whether it moved. The caller commits."""
    current = cursor_of(integration, kind)
    if current is not None and not chunk_start <= current < chunk_end:
        return False
    integration.sync_cursors = {**(integration.sync_cursors or {}), kind: chunk_end.isoformat()}
    return True


def incremental_window(integration: Integration, kind: str, now: datetime) -> tuple[datetime, datetime]:
    end = now - CLOSED_WINDOW_LAG
    cursor = cursor_of(integration, kind)
    if cursor is None:
        return end - timedelta(days=_setting("VSYNC_SYNC_INITIAL_DAYS", 7)), end
    return min(cursor - timedelta(minutes=_setting("VSYNC_SYNC_OVERLAP_MINUTES", 60)), end), end


@dataclass(frozen=True)
class _Plan:
    kind: str
    window_start: datetime | None
    window_end: datetime | None
    mode: str  # snapshot, incremental or backfill


def _plan(integration: Integration, kind: str, since: datetime | None, until: datetime | None, now: datetime) -> _Plan:
    if kind not in SYNC_KINDS:
        raise ValidationError(f"kind must be one of {', '.join(SYNC_KINDS)}.", field="kind")
    if kind not in WINDOWED_KINDS:
        if since or until:
            raise ValidationError(
                f"A {kind} sync reads the account as it is now; it takes no since or until.",
                field="since" if since else "until",
            )
        return _Plan(kind, None, None, "snapshot")
    if since is None and until is None:
        return _Plan(kind, *incremental_window(integration, kind, now), "incremental")
    if since is None:
        raise ValidationError("A window needs its start (since) too.", field="since")
    until = min(until or now - CLOSED_WINDOW_LAG, now)
    if since >= until:
        raise ValidationError(
            f"since ({isoformat_z(since)}) must come before until ({isoformat_z(until)}).", field="since"
        )
    if until - since > MAX_BACKFILL:
        raise ValidationError("A backfill covers at most three years; split it.", field="since")
    return _Plan(kind, since, until, "backfill")


def active_run(integration_id: int, kind: str) -> SyncRun | None:
    return db.session.scalar(
        select(SyncRun).where(
            SyncRun.integration_id == integration_id, SyncRun.kind == kind, SyncRun.status.in_(ACTIVE_SYNC_STATUSES)
        )
    )


def _refuse_other_window(integration: Integration, plan: _Plan, existing: SyncRun | None) -> None:
    if (
        existing is not None
        and plan.mode == "backfill"
        and (existing.window_start, existing.window_end) != (plan.window_start, plan.window_end)
    ):
        raise Conflict(
            f"A {plan.kind} sync of integration {integration.id} is already {existing.status} (run {existing.id}, "
            f"{isoformat_z(existing.window_start)} to {isoformat_z(existing.window_end)}); "
            "wait for it to finish, then ask again.",
            field="kind",
        )


def start_syncs(
    integration: Integration,
    kinds: Iterable[str],
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    trigger: str = "manual",
    requested_by_user_id: int | None = None,
) -> list[tuple[SyncRun, bool]]:
    """Start several kinds at once (the CLI's `--kind all`): everything is checked before the first
    write, so a refused request leaves no run behind. The window goes to the windowed kinds among
    `kinds` (numbers and agents are read as they are now); a window with no windowed kind to take it
    is refused. Returns (run, joined) per kind, in the order given. Commits, as `start_sync` does."""
    kinds = tuple(dict.fromkeys(kinds))
    if not kinds:
        raise ValidationError("Name at least one kind to sync.", field="kind")
    windowed = any(kind in WINDOWED_KINDS for kind in kinds)
    return _start(
        integration,
        [(kind, since, until) if kind in WINDOWED_KINDS or not windowed else (kind, None, None) for kind in kinds],
        trigger,
        requested_by_user_id,
    )


def start_sync(
    integration: Integration,
    kind: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    trigger: str = "manual",
    requested_by_user_id: int | None = None,
) -> tuple[SyncRun, bool]:
    """Queue a sync (or join the one under way). Returns the run and whether it was joined.

    Input is checked before anything is written. Unlike the other services this one commits, and
    cannot leave it to the caller: a queued job runs in another process and must find its run, so
    the run is committed before it is queued; without Redis the job runs before this returns, in a
    session of its own that sees only committed rows. The caller's pending changes are committed
    with the run.
    """
    return _start(integration, [(kind, since, until)], trigger, requested_by_user_id)[0]


def _start(
    integration: Integration,
    asked: list[tuple[str, datetime | None, datetime | None]],
    trigger: str,
    requested_by_user_id: int | None,
) -> list[tuple[SyncRun, bool]]:
    now = utcnow()
    plans = [_plan(integration, kind, since, until, now) for kind, since, until in asked]
    if integration.status != ACTIVE:
        raise Conflict(f"Integration {integration.id} is {integration.status}; enable it to sync.", field="integration")
    reap_stale_runs(integration.id)  # a dead run must not block, nor be joined
    for plan in plans:
        _refuse_other_window(integration, plan, active_run(integration.id, plan.kind))
    return [_start_one(integration, plan, trigger, requested_by_user_id) for plan in plans]


def _start_one(
    integration: Integration, plan: _Plan, trigger: str, requested_by_user_id: int | None
) -> tuple[SyncRun, bool]:
    if trigger == "manual" and plan.mode == "backfill":
        trigger = "backfill"
    existing = active_run(integration.id, plan.kind)
    if existing is None:
        run = SyncRun(
            org_id=integration.org_id,
            integration_id=integration.id,
            kind=plan.kind,
            trigger=trigger,
            status=QUEUED,
            window_start=plan.window_start,
            window_end=plan.window_end,
            requested_by_user_id=requested_by_user_id,
        )
        try:
            with db.session.begin_nested():
                db.session.add(run)
        except IntegrityError:  # another worker started the same sync a moment ago
            existing = active_run(integration.id, plan.kind)
            if existing is None:
                raise
    if existing is not None:
        _refuse_other_window(integration, plan, existing)
        return existing, True

    window = f" {isoformat_z(plan.window_start)} to {isoformat_z(plan.window_end)}" if plan.window_start else ""
    audit.record("sync.requested", org_id=integration.org_id, target=run, summary=f"{plan.kind} ({trigger}){window}")
    db.session.commit()

    run_id = run.id
    job_id = _queue_run(integration.org_id, run_id)
    run = db.session.get_one(SyncRun, run_id)  # committed above
    if job_id is not None:
        run.job_id = job_id
        db.session.commit()
    else:
        db.session.refresh(run)
    return run, False


def _queue_run(org_id: int, run_id: int) -> str | None:
    """Queue the run's job (or run it inline). Returns the RQ job id, None when run inline.

    A failed attempt is recorded on the run and retried after each of `VSYNC_SYNC_RETRY_INTERVALS`.
    """
    intervals = current_app.config["VSYNC_SYNC_RETRY_INTERVALS"]
    return enqueue(
        "vsync.jobs.sync.run_sync_job",
        org_id,
        run_id,
        job_id=f"vsync-sync-{run_id}",
        retry=Retry(max=len(intervals), interval=intervals),
        job_timeout=JOB_TIMEOUT,
        on_failure="vsync.jobs.sync.on_sync_failure",
        record_attempt="vsync.jobs.sync.record_attempt",
    )


def reap_stale_runs(integration_id: int | None = None) -> list[int]:
    """Mark failed the runs whose worker died: running without a heartbeat for
    `VSYNC_SYNC_STALE_SECONDS`, or queued on a job the queue no longer has. Returns their ids."""
    stale_before = utcnow() - timedelta(seconds=_setting("VSYNC_SYNC_STALE_SECONDS", 900))
    query = select(SyncRun).where(SyncRun.status.in_(ACTIVE_SYNC_STATUSES))
    if integration_id is not None:
        query = query.where(SyncRun.integration_id == integration_id)
    reaped = []
    for run in db.session.scalars(query):
        reason = None
        if run.status == RUNNING and (run.heartbeat_at or run.created_at) < stale_before:
            reason = (
                f"The worker running this sync stopped responding (last heartbeat "
                f"{isoformat_z(run.heartbeat_at or run.created_at)}). The next sync resumes from the last "
                "completed window."
            )
        elif run.status == QUEUED and run.job_id and job_lost(run.job_id):
            reason = "The queued job was lost from the queue (Redis was flushed or restarted); ask again."
        if reason:
            run.status, run.error, run.finished_at = FAILED, reason, utcnow()
            reaped.append(run.id)
            log.warning("sync run %s marked failed: %s", run.id, reason)
            sync_failures.notify_failed_run(run)
    if reaped:
        db.session.flush()
    return reaped
