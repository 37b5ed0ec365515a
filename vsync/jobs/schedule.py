"""Scheduled syncs: a fan-out job that RQ's cron scheduler runs every minute (`vsync/jobs/cron.py`).

Each active integration syncs each kind every `DEFAULT_INTERVALS` minutes, or as its
`sync_schedule` says (0 turns a kind off). A kind is due when its latest run was created longer ago
than its interval; `start_sync` joins a run still under way, so two cron schedulers (or a slow
worker) never start the same sync twice.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import func, select

from vsync.errors import DomainError
from vsync.extensions import db
from vsync.jobs import job_context
from vsync.models import Integration, SyncRun
from vsync.models.integrations import ACTIVE
from vsync.models.types import utcnow
from vsync.services.sync import ALL_KINDS, reap_stale_runs, start_sync
from vsync.tenancy import platform_bypass

log = logging.getLogger(__name__)

DEFAULT_INTERVALS = {"numbers": 60, "agents": 60, "calls": 5, "sms": 15}  # minutes


def intervals_for(integration: Integration) -> dict[str, int]:
    return {
        **DEFAULT_INTERVALS,
        **{k: int(v) for k, v in (integration.sync_schedule or {}).items() if k in DEFAULT_INTERVALS},
    }


def due_kinds(integration: Integration, now) -> list[str]:
    latest = dict(
        db.session.execute(
            select(SyncRun.kind, func.max(SyncRun.created_at))
            .where(SyncRun.integration_id == integration.id)
            .group_by(SyncRun.kind)
        )
        .tuples()
        .all()
    )
    intervals = intervals_for(integration)
    return [
        kind
        for kind in ALL_KINDS
        if intervals[kind] > 0
        and (latest.get(kind) is None or now - latest[kind] >= timedelta(minutes=intervals[kind]))
    ]


def schedule_due_syncs() -> dict[str, int]:
    """Start every due sync of every active integration; returns counts for the job's result."""
    started = joined = 0
    with job_context(), platform_bypass("scheduled sync fan-out"):
        reaped = reap_stale_runs()
        db.session.commit()
        now = utcnow()
        integration_ids = db.session.scalars(
            select(Integration.id).where(Integration.status == ACTIVE).order_by(Integration.id)
        ).all()
        for integration_id in integration_ids:
            integration = db.session.get_one(Integration, integration_id)  # selected just above
            for kind in due_kinds(integration, now):
                try:
                    _, was_joined = start_sync(integration, kind, trigger="scheduled")
                except DomainError as exc:
                    db.session.rollback()
                    log.warning("scheduled %s sync of integration %s not started: %s", kind, integration_id, exc)
                    continue
                joined += was_joined
                started += not was_joined
    log.info("scheduled syncs: %s started, %s joined, %s dead runs reaped", started, joined, len(reaped))
    return {"started": started, "joined": joined, "reaped": len(reaped)}
