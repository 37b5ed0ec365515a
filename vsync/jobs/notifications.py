"""Notification jobs: each takes ids, opens its own context and scope, and calls a service."""

from __future__ import annotations

import logging

from flask import current_app

from vsync.extensions import db
from vsync.jobs import job_context
from vsync.models import Organization
from vsync.models.types import utcnow
from vsync.queue import failure_of
from vsync.services.notifications import alert_webhooks, alerts, digests, mail
from vsync.tenancy import platform_bypass, tenant

log = logging.getLogger(__name__)


def send_email(org_id: int | None, email_id: int) -> str:
    """Send one outbox message, if this job wins its claim; returns what happened, for the job result.
    A message of no org (a person's own account) needs no scope (`mail.send_account_email`)."""
    if org_id is None:
        with job_context():
            return mail.send_account_email(email_id)
    with job_context(), tenant(org_id):
        row = mail.claim(email_id)
        if row is None:
            log.info("email %s is not queued (sent, failed or taken by another worker): skipped", email_id)
            return "skipped"
        mail.send_claimed(row)
        return "sent"


def record_send_attempt(org_id: int | None, email_id: int, exc: BaseException, will_retry: bool) -> None:
    if org_id is None:
        with job_context():
            mail.record_account_attempt(email_id, exc, will_retry)
        return
    with job_context(), tenant(org_id):
        mail.record_attempt(email_id, exc, will_retry)


def on_send_failure(job, connection, exc_type, exc_value, traceback) -> None:
    """RQ failure callback, called on every failed attempt; RQ retries while `retries_left`."""
    org_id, email_id = job.args
    with failure_of(job.id):
        record_send_attempt(org_id, email_id, exc_value, will_retry=bool(job.retries_left))


def sweep_outbox() -> dict[str, int]:
    """Every few minutes (cron): mark messages lost with a dead worker, enqueue ones nobody enqueued."""
    with job_context():
        with platform_bypass("outbox sweep"):
            waiting, lost = mail.sweep_outbox()
        for org_id, email_id in waiting:
            mail.dispatch(org_id, email_id)
    return {"requeued": len(waiting), "lost": lost}


def send_due_digests() -> dict[str, int]:
    """Every minute (cron): decide and send every digest now due. Safe to run twice at once (two cron
    processes): each digest's outbox key is claimed once."""
    now = utcnow()
    sent = 0
    with job_context():
        with platform_bypass("digests due"):
            due = digests.due_digests(now)
        for item in due:
            with tenant(item.scope):
                sent += digests.queue_digest(item.membership_id, item.period, now) is not None
                db.session.commit()
    log.info("digests: %s due, %s decided here", len(due), sent)
    return {"due": len(due), "sent": sent}


def evaluate_alerts() -> dict[str, int]:
    """Every minute (cron): evaluate every org's alert rules, and the platform's checks of every org,
    each org in its own scope. Safe to run twice at once (see `vsync.services.notifications.alerts`)."""
    now = utcnow()
    changed = platform_changed = 0
    with job_context():
        checks = alerts.platform_checks(current_app.config)
        with platform_bypass("alert rules due"):
            org_ids = alerts.orgs_with_rules()
            every_org = alerts.every_org() if checks else []
            recipients = alerts.platform_recipients() if checks else []
        for org_id in sorted({*org_ids, *every_org}):
            with tenant(org_id):
                org = db.session.get_one(Organization, org_id)  # the org of its rules, or one of every org
                if org_id in org_ids:
                    changed += len(alerts.evaluate(org, now))
                platform_changed += len(alerts.evaluate_platform(org, now, checks, recipients))
                db.session.commit()
    return {"orgs": len(org_ids), "changes": changed, "platform_changes": platform_changed}


def deliver_alert_webhook(org_id: int, delivery_id: int) -> str:
    """POST one alert webhook delivery, if this job wins its claim; returns what happened."""
    with job_context(), tenant(org_id):
        row = alert_webhooks.claim(delivery_id)
        if row is None:
            log.info("alert webhook delivery %s is not queued: skipped", delivery_id)
            return "skipped"
        alert_webhooks.post(row)
        return "delivered"


def record_delivery_attempt(org_id: int, delivery_id: int, exc: BaseException, will_retry: bool) -> None:
    with job_context(), tenant(org_id):
        alert_webhooks.record_attempt(delivery_id, exc, will_retry)


def on_delivery_failure(job, connection, exc_type, exc_value, traceback) -> None:
    """RQ failure callback, called on every failed attempt; RQ retries while `retries_left`."""
    org_id, delivery_id = job.args
    with failure_of(job.id):
        record_delivery_attempt(org_id, delivery_id, exc_value, will_retry=bool(job.retries_left))
