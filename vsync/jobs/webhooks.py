"""The webhook processing job: turn one stored webhook event into a call event and its call.

The receiver stores each event first (status `received`) and queues this job with ids only. The job
locks the event's row, so two deliveries of the job (a replay racing a retry) cannot both apply it,
and commits the call's changes and the event's new status in one transaction: a worker killed
midway leaves the event `received`, to be applied by the next run or a replay, and never half done.

Outcomes: `processed`; `ignored` for an event type vsync does not know (kept raw); `unmatched` when
the call's business number is not assigned to the integration's org at the event's time, so an org's
token can never put a call on another org's number. An error is raised for RQ to retry; the failure
callback counts the attempt, and marks the event `failed` with its error after the last one.
Without Redis the same job runs inline with the same number of attempts.
"""
from __future__ import annotations

import json
import logging
from datetime import datetime

from flask import current_app
from rq import Retry
from sqlalchemy import or_, select

from vsync.extensions import db
from vsync.jobs import current_job_id, enqueue, job_context
from vsync.jobs.ingest import write_call_event
from vsync.mightycall.webhook_events import EventFacts, parse_event
from vsync.models import NumberAssignment, PhoneNumber, WebhookEvent
from vsync.models.operations import FAILED, IGNORED, PROCESSED, RECEIVED, UNMATCHED
from vsync.models.types import utcnow
from vsync.phones import try_e164
from vsync.services import audit
from vsync.tenancy import TenancyError, current_org_id, tenant

log = logging.getLogger(__name__)

REPLAYABLE = (RECEIVED, PROCESSED, IGNORED, UNMATCHED, FAILED)
REPLAYABLE_FAILED = (RECEIVED, FAILED, UNMATCHED)
JOB_TIMEOUT = 60


def dispatch(org_id: int, event_id: int) -> str | None:
    """Queue the event's processing (or run it inline). Returns the RQ job id, None when inline."""
    intervals = current_app.config["VSYNC_WEBHOOK_RETRY_INTERVALS"]
    return enqueue(process_webhook_event, org_id, event_id, job_id=f"vsync-webhook-{event_id}",
                   retry=Retry(max=len(intervals), interval=intervals) if intervals else None,
                   job_timeout=JOB_TIMEOUT, on_failure=on_webhook_failure, record_attempt=_record_attempt)


def _number_of_org(org_id: int, event: EventFacts) -> int | None:
    """The id of the event's business number if it is assigned to `org_id` at the event's time."""
    e164 = try_e164(event.business_number)
    if e164 is None:
        return None
    number_id = db.session.scalar(select(PhoneNumber.id).where(PhoneNumber.e164 == e164))
    if number_id is None:
        return None
    at = event.occurred_at
    covered = db.session.scalar(select(NumberAssignment.id).where(
        NumberAssignment.phone_number_id == number_id, NumberAssignment.org_id == org_id,
        NumberAssignment.assigned_at <= at,
        or_(NumberAssignment.unassigned_at.is_(None), NumberAssignment.unassigned_at > at)).limit(1))
    return number_id if covered is not None else None


def _apply(org_id: int, row: WebhookEvent) -> tuple[str, str | None]:
    event = parse_event(json.loads(row.body))
    if event.kind is None:
        return IGNORED, f"Unknown event type {event.event_type!r}; kept as received."
    number_id = _number_of_org(org_id, event)
    if number_id is None:
        return UNMATCHED, (f"The business number {event.business_number!r} is not assigned to this organisation "
                           f"at {event.occurred_at.isoformat()}; no call was made from this event.")
    write_call_event(row.integration_id, number_id, event)
    return PROCESSED, None


def process_webhook_event(org_id: int, event_id: int) -> str:
    """The RQ job. Safe to run twice: only a `received` event is applied, under its row lock."""
    job_id = current_job_id()
    with job_context(), tenant(org_id):
        row = db.session.scalar(select(WebhookEvent).where(WebhookEvent.id == event_id).with_for_update())
        if row is None:
            log.warning("job %s: webhook event %s not found in org %s", job_id, event_id, org_id)
            return "missing"
        if row.status != RECEIVED:
            db.session.rollback()
            return row.status
        try:
            row.status, row.error = _apply(org_id, row)
        except BaseException:
            db.session.rollback()
            raise
        row.attempts += 1
        row.processed_at = utcnow()
        status = row.status
        db.session.commit()
        log.debug("job %s: webhook event %s (%s) %s", job_id, event_id, row.event_type, status)
        return status


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc)[:500]}"


def _record_attempt(org_id: int, event_id: int, exc: BaseException, will_retry: bool, job_id: str) -> None:
    with job_context(), tenant(org_id):
        row = db.session.scalar(select(WebhookEvent).where(WebhookEvent.id == event_id).with_for_update())
        if row is None or row.status != RECEIVED:
            db.session.rollback()
            return
        row.attempts += 1
        row.error = f"Attempt {row.attempts} failed{', retrying' if will_retry else ''}: {describe(exc)}"
        if not will_retry:
            row.status, row.processed_at = FAILED, utcnow()
        log.warning("job %s: webhook event %s: %s", job_id, event_id, row.error)
        db.session.commit()


def on_webhook_failure(job, connection, exc_type, exc_value, traceback) -> None:
    """RQ failure callback, called on every failed attempt; RQ retries while `retries_left`."""
    org_id, event_id = job.args
    _record_attempt(org_id, event_id, exc_value, will_retry=bool(job.retries_left), job_id=job.id)


def replay_events(org_id: int, *, failed_only: bool = False, since: datetime | None = None) -> int:
    """Queue stored events of the org in the caller's tenant scope for processing again.

    All stored events (not rejected requests), or with `failed_only` those not applied yet: failed,
    on a number not assigned to the org (assign it, then replay), or still `received` because their
    job was lost with its worker or never queued (Redis was down). `since` limits to events received
    from then on. Applying an event again changes nothing it already did, and an event queued twice
    is applied once (its job locks the row and skips one already done), so a replay is safe to repeat.
    Returns how many events were queued.
    """
    if current_org_id() != org_id:
        raise TenancyError(f"Replay the events of org {org_id} inside that org's tenant scope.")
    query = select(WebhookEvent).where(WebhookEvent.status.in_(REPLAYABLE_FAILED if failed_only else REPLAYABLE))
    if since is not None:
        query = query.where(WebhookEvent.received_at >= since)
    events = db.session.scalars(query.order_by(WebhookEvent.id)).all()
    for event in events:
        event.status, event.error = RECEIVED, None
    ids = [event.id for event in events]
    audit.record("webhook_events.replayed", org_id=org_id,
                 summary=f"{len(ids)} event(s) queued again" + (" (failed only)" if failed_only else "")
                         + (f" received since {since.isoformat()}" if since else ""))
    db.session.commit()
    for event_id in ids:
        dispatch(org_id, event_id)
    log.info("org %s: %s webhook event(s) queued for replay", org_id, len(ids))
    return len(ids)
