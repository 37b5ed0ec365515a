"""Webhook processing: apply an organisation's stored `received` events to its calls.

The stored events are the queue; Redis only says when to look. The receiver stores each delivery
first and then calls `wake(org_id)`: one Redis `SET NX` with an expiry, and only the delivery that
finds no flag queues a drain (the job `vsync.jobs.webhooks.process_received_events`, which calls
`drain`). So a burst of deliveries costs a burst of flags, not a job each, and an event whose wake-up
was lost (Redis down at the time, a worker killed) is applied by the org's next drain or by the
minute's sweep (`wake_stalled_orgs`, in the job `vsync.jobs.webhooks.wake_stalled` that `rq cron` runs).

A drain clears the org's flag first (a delivery stored after that queues the next drain), then
applies the org's due events in id order, `BATCH` at a time, each batch in one transaction under the
events' row locks (`FOR UPDATE SKIP LOCKED`, and only those still `received`) and their calls' locks:
the calls' changes, the rollups of the hours they touch (refreshed once per batch) and the events'
new statuses are committed together. `write_call_events` gives the result of applying the events
one at a time, with a few statements per batch instead of several per event. Drains side by side
share the work and never apply an event twice: a drain takes the calls' locks that are free and
leaves the events of a call another drain holds (and that call's later events) for a second pass,
in which it waits for those calls; so a drain that meets a backlog (a full batch) wakes one more,
which a free worker takes. A worker killed midway leaves its batch `received`, never half applied.
An event whose body does not parse, and every event of a batch that failed as a whole (nothing of
it committed), is applied one by one, each in a transaction of its own.

Outcomes: `processed`; `ignored` for an event type vsync does not know (kept raw); `unmatched` when
the call's business number is not the integration's org's at the call's start (the instant the call
is filed under, whatever the event's own `Timestamp` says), so an org's token can never put a call on
another org's number or into another org's period of a moved one. An attempt that raises is counted and its error
kept; the event stays `received` with `retry_at` after the next of `VSYNC_WEBHOOK_RETRY_INTERVALS`,
and is `failed` after the last. A drain that leaves events waiting for a retry schedules the next
drain for the first of them (RQ's scheduler: `rq worker --with-scheduler`). Without Redis the drain
runs in the request that stored the events, and a waiting retry is made by the next one.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from flask import current_app
from sqlalchemy import func, or_, select, update

from vsync.extensions import db
from vsync.mightycall.webhook_events import EventFacts, parse_event
from vsync.models import Integration, WebhookEvent
from vsync.models.operations import FAILED, IGNORED, PROCESSED, RECEIVED, UNMATCHED
from vsync.models.types import utcnow
from vsync.queue import enqueue, redis_connection
from vsync.services.sync.ingest import (
    CallKey,
    EventsNeedOneByOne,
    NumberBook,
    lock_calls,
    write_call_event,
    write_call_events,
)
from vsync.tenancy import platform_bypass

log = logging.getLogger(__name__)

DRAIN_JOB = "vsync.jobs.webhooks.process_received_events"
JOB_TIMEOUT = 600
DRAIN_FOR = 300  # seconds a queued drain works before it hands the rest to a successor, well within its timeout
BATCH = 500  # events a drain reads, and applies in one transaction, at a time
WAKE_TTL = 120  # seconds a flag stands for a queued drain; a lost one stops holding back the next
STALLED_AFTER = timedelta(minutes=1)


def _wake_key(org_id: int) -> str:
    return f"vsync:webhooks:wake:{org_id}"


def wake(org_id: int) -> str | None:
    """See that a drain of the org's received events is coming: queue one unless one is queued
    already, or, without Redis, run it now. Returns the queued job's id, if this call queued one."""
    connection = redis_connection()
    if connection is not None and not connection.set(_wake_key(org_id), 1, nx=True, ex=WAKE_TTL):
        return None
    return enqueue(DRAIN_JOB, org_id, job_timeout=JOB_TIMEOUT)


def _unmatched(event: EventFacts) -> str:
    return (
        f"The business number {event.business_number!r} is not assigned to this organisation "
        "at the call's start; no call was made from this event."
    )


def _unknown(event: EventFacts) -> str:
    return f"Unknown event type {event.event_type!r}; kept as received."


def _apply(org_id: int, row: WebhookEvent) -> tuple[str, str | None]:
    event = parse_event(json.loads(row.body))
    if event.kind is None:
        return IGNORED, _unknown(event)
    account_id = db.session.execute(
        select(Integration.account_id).where(Integration.id == row.integration_id)
    ).scalar_one()  # its foreign key
    book = NumberBook(org_id=org_id, integration_id=row.integration_id, discover=False)
    if write_call_event(account_id, book, event) is None:
        return UNMATCHED, _unmatched(event)
    return PROCESSED, None


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc)[:500]}"


def _locked(event_id: int) -> WebhookEvent | None:
    """The event under its row lock if it is still waiting to be applied; None when another drain
    holds it or it is done."""
    return db.session.scalar(
        select(WebhookEvent)
        .where(WebhookEvent.id == event_id, WebhookEvent.status == RECEIVED)
        .with_for_update(skip_locked=True)
    )


def _record_failure(event_id: int, exc: BaseException) -> datetime | None:
    """Count the failed attempt and keep its error; returns when the event is retried, None when it
    has failed for good (or is no longer this drain's)."""
    row = _locked(event_id)
    if row is None:
        db.session.rollback()
        return None
    intervals = current_app.config["VSYNC_WEBHOOK_RETRY_INTERVALS"]
    row.attempts += 1
    will_retry = row.attempts <= len(intervals)
    row.error = f"Attempt {row.attempts} failed{', retrying' if will_retry else ''}: {describe(exc)}"
    if will_retry:
        row.retry_at = utcnow() + timedelta(seconds=intervals[row.attempts - 1])
    else:
        row.status, row.retry_at, row.processed_at = FAILED, None, utcnow()
    retry_at = row.retry_at
    log.warning("webhook event %s: %s", event_id, row.error)
    db.session.commit()
    return retry_at


def _process_one(org_id: int, event_id: int) -> datetime | None:
    """Apply one event, or record why it failed. Returns when it is to be retried, if it is."""
    row = _locked(event_id)
    if row is None:
        db.session.rollback()
        return None
    try:
        row.status, row.error = _apply(org_id, row)
    except Exception as exc:
        db.session.rollback()
        return _record_failure(event_id, exc)
    row.attempts += 1
    row.processed_at, row.retry_at = utcnow(), None
    log.debug("webhook event %s (%s) %s", event_id, row.event_type, row.status)
    db.session.commit()
    return None


def _apply_batch(org_id: int, ids: Sequence[int], busy: set[CallKey], wait: bool) -> list[int]:
    """Apply the batch's events that are still `received` and free, in id order, in one transaction
    under their row locks; returns the ids left to apply one by one (`_process_one`): those whose
    body does not parse, or all of them when the batch as a whole failed (then nothing of it is
    committed).

    An event of a call in `busy` is left `received` for a later pass: another drain held the call
    when this one reached it, and the call's later events follow it (so one drain applies a call's
    events in id order). Its call's lock is waited for with `wait`, else taken only if free, so two
    drains never wait for each other's whole batch; calls taken now join `busy` when not free.
    """
    rows = db.session.execute(
        select(WebhookEvent.id, WebhookEvent.integration_id, WebhookEvent.body)
        .where(WebhookEvent.id.in_(ids), WebhookEvent.status == RECEIVED)
        .order_by(WebhookEvent.id)
        .with_for_update(skip_locked=True)
    ).all()
    one_by_one: list[int] = []
    left: set[int] = set()
    try:
        integrations = select(Integration.id, Integration.account_id).where(
            Integration.id.in_({row.integration_id for row in rows})
        )
        accounts = dict(db.session.execute(integrations).tuples().all())
        parsed: list[tuple[int, int, EventFacts]] = []
        for event_id, integration_id, body in rows:
            try:
                parsed.append((event_id, integration_id, parse_event(json.loads(body))))
            except Exception:  # recorded as the event's failed attempt by `_process_one`
                one_by_one.append(event_id)
        wanted = {(accounts[i], e.call_id) for _, i, e in parsed if e.kind is not None} - busy
        held = lock_calls(wanted, wait=wait)
        busy |= wanted - held
        books: dict[int, NumberBook] = {}
        outcomes: dict[tuple[str, str | None], list[int]] = {}
        applied: list[tuple[int, EventFacts]] = []
        batch: list[tuple[int, NumberBook, EventFacts]] = []
        for event_id, integration_id, event in parsed:
            if event.kind is None:
                outcomes.setdefault((IGNORED, _unknown(event)), []).append(event_id)
                continue
            if (accounts[integration_id], event.call_id) not in held:
                left.add(event_id)
                continue
            book = books.setdefault(
                integration_id, NumberBook(org_id=org_id, integration_id=integration_id, discover=False)
            )
            applied.append((event_id, event))
            batch.append((accounts[integration_id], book, event))
        for (event_id, event), written in zip(applied, write_call_events(batch), strict=True):
            outcome = (PROCESSED, None) if written is not None else (UNMATCHED, _unmatched(event))
            outcomes.setdefault(outcome, []).append(event_id)
        now = utcnow()
        for (status, error), event_ids in outcomes.items():
            db.session.execute(
                update(WebhookEvent)
                .where(WebhookEvent.id.in_(event_ids), WebhookEvent.status == RECEIVED)  # SQLite locks no rows
                .values(status=status, error=error, attempts=WebhookEvent.attempts + 1, processed_at=now, retry_at=None)
                .execution_options(synchronize_session=False)
            )
            log.debug("webhook events %s %s", event_ids, status)
        db.session.commit()
    except Exception as exc:
        db.session.rollback()
        log.log(
            logging.DEBUG if isinstance(exc, EventsNeedOneByOne) else logging.WARNING,
            "webhook events %s-%s: applying them one by one: %s",
            ids[0],
            ids[-1],
            describe(exc),
        )
        return [event_id for event_id in ids if event_id not in left]
    return one_by_one


def _due(after_id: int, now: datetime):
    return (
        select(WebhookEvent.id)
        .where(
            WebhookEvent.status == RECEIVED,
            WebhookEvent.id > after_id,
            or_(WebhookEvent.retry_at.is_(None), WebhookEvent.retry_at <= now),
        )
        .order_by(WebhookEvent.id)
        .limit(BATCH)
    )


def drain(org_id: int) -> None:
    """Apply the org's due `received` events; expects its tenant scope entered. Safe to run twice, or two at once."""
    began = time.monotonic()
    connection = redis_connection()
    if connection is not None:
        connection.delete(_wake_key(org_id))
    after_id, again, helped = 0, False, connection is None  # inline, there is no other worker to wake
    busy: set[CallKey] = set()
    wait = False
    while True:
        ids = db.session.scalars(_due(after_id, utcnow())).all()
        db.session.rollback()
        if not ids:
            if busy:  # events whose call another drain held: another pass, waiting for their calls now
                after_id, busy, wait = 0, set(), True
                continue
            if not again:
                break
            after_id, again = 0, False  # a retry that is due at once: another pass
            continue
        if len(ids) == BATCH and not helped:
            wake(org_id)  # a backlog: a second drain shares it, on another worker
            helped = True
        for event_id in _apply_batch(org_id, ids, busy, wait):
            retry_at = _process_one(org_id, event_id)
            again = again or (retry_at is not None and retry_at <= utcnow())
        after_id = ids[-1]
        if connection is not None and time.monotonic() - began > DRAIN_FOR:
            wake(org_id)  # the rest to a successor, before this job's timeout stops it mid-event
            return
    _schedule_retries(org_id)


def _schedule_retries(org_id: int) -> None:
    """Queue the drain that makes the first waiting retry, when it is due (RQ's scheduler). Retries
    due now are another running drain's, which holds them."""
    first = db.session.scalar(
        select(func.min(WebhookEvent.retry_at)).where(WebhookEvent.status == RECEIVED, WebhookEvent.retry_at > utcnow())
    )
    db.session.rollback()
    if first is not None and redis_connection() is not None:
        second = math.ceil(first.timestamp())  # whole seconds, so two drains scheduling it queue one job
        enqueue(
            DRAIN_JOB,
            org_id,
            job_id=f"vsync-webhooks-{org_id}-at-{second}",
            job_timeout=JOB_TIMEOUT,
            at=datetime.fromtimestamp(second, UTC),
        )


def wake_stalled_orgs() -> int:
    """Wake every org with events due and waiting for more than `STALLED_AFTER` (their wake-up was
    lost). Returns how many orgs it woke."""
    now = utcnow()
    with platform_bypass("sweep of webhook events whose processing was not queued"):
        org_ids = db.session.scalars(
            select(WebhookEvent.org_id)
            .distinct()
            .where(
                WebhookEvent.status == RECEIVED,
                WebhookEvent.received_at <= now - STALLED_AFTER,
                or_(WebhookEvent.retry_at.is_(None), WebhookEvent.retry_at <= now),
            )
        ).all()
        db.session.rollback()
    for org_id in org_ids:
        log.warning("org %s: webhook events waiting since over %s; waking their processing", org_id, STALLED_AFTER)
        wake(org_id)
    return len(org_ids)
