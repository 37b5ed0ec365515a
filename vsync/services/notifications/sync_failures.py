"""Sync failure emails: an org's sync that failed for good tells the people who fix it, once a streak.

A streak is the failed runs of one integration and kind since its last success: the first failed
run after a success starts one, and the next success ends it. A run counts once it is failed for
good (RQ's retries of one run are attempts of that run, not failures), and every failed run of the
streak decides the same messages: the outbox key names the integration, the kind and the streak's
first failed run (`sync_failure:<integration>:<kind>:<first run>:<user>`), so a run retried, failed
twice by two workers, or followed by more failing runs sends each person one email per streak.

Told: the org's active org admins whose `sync_failures` preference is on, and the active platform
admins whose platform `sync_failures` preference is on (`preferences.platform_recipients`), each once.
"""

from __future__ import annotations

from sqlalchemy import func, select

from vsync.extensions import db
from vsync.models import Membership, Organization, SyncRun, User
from vsync.models.operations import FAILED, SUCCEEDED
from vsync.models.orgs import ORG_ADMIN
from vsync.services.notifications import mail, preferences
from vsync.services.notifications.preferences import ON, SYNC_FAILURES


def streak_start(run: SyncRun) -> int:
    """The id of the first failed run of `run`'s integration and kind since its last success."""
    same = (SyncRun.org_id == run.org_id, SyncRun.integration_id == run.integration_id, SyncRun.kind == run.kind)
    last_success = db.session.scalar(
        select(func.max(SyncRun.id)).where(*same, SyncRun.status == SUCCEEDED, SyncRun.id < run.id)
    )
    first = db.session.scalar(
        select(func.min(SyncRun.id)).where(*same, SyncRun.status == FAILED, SyncRun.id > (last_success or 0))
    )
    return first or run.id


def _recipients(org_id: int) -> list[tuple[int, str]]:
    """(user id, email) of the org admins and platform admins to tell, each once, by id."""
    admins = db.session.scalars(
        select(Membership)
        .join(User, User.id == Membership.user_id)
        .where(Membership.org_id == org_id, Membership.role == ORG_ADMIN, User.active.is_(True))
        .order_by(Membership.user_id)
    )
    told = {
        membership.user_id: membership.user.email
        for membership in admins
        if preferences.preferences_of(membership)[SYNC_FAILURES] == ON
    }
    for user_id, email in preferences.platform_recipients(SYNC_FAILURES):
        told.setdefault(user_id, email)
    return sorted(told.items())


def notify_failed_run(run: SyncRun) -> int:
    """Decide the emails of a run that failed for good (in its org's scope, or the platform's); they
    leave when the caller commits. Returns how many were decided here (0 within a streak told already)."""
    org = db.session.get_one(Organization, run.org_id)  # the run's org (a foreign key)
    first = streak_start(run)
    context = {
        "kind": run.kind,
        "error": run.error or "no reason given",
        "run_id": run.id,
        "runs_url": f"{mail.public_url()}/admin/orgs/{org.slug}/sync-runs/",
    }
    decided = 0
    for user_id, email in _recipients(org.id):
        decided += (
            mail.queue_email(
                org.id,
                kind="sync_failure",
                key=f"sync_failure:{run.integration_id}:{run.kind}:{first}:{user_id}",
                to=email,
                template="sync_failure",
                context=context,
                user_id=user_id,
            )
            is not None
        )
    return decided
