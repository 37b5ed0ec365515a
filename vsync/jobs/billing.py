"""Billing jobs: each month's invoices, made after the month ends in each org's time zone.

`make_due_invoices` is scheduled every hour (`vsync/jobs/cron.py`): for every org it queues the
invoice of its last complete local month. The invoice job is idempotent (one invoice per org and
month, `vsync.services.billing.invoices`), so two cron schedulers, a retried job or a re-run of a
whole hour all end with one invoice and no gap in the numbers.
"""

from __future__ import annotations

import logging

from sqlalchemy import select

from vsync.extensions import db
from vsync.jobs import job_context
from vsync.models import Organization
from vsync.models.types import utcnow
from vsync.queue import enqueue
from vsync.services.audit import acting_as
from vsync.services.billing import invoices
from vsync.services.billing.usage import last_complete_month
from vsync.tenancy import platform_bypass, tenant
from vsync.timeutil import parse_utc

log = logging.getLogger(__name__)


def make_due_invoices(now: str | None = None) -> int:
    """Queue the invoice of every org's last complete local month (`now`: an ISO instant, for a
    re-run of a past hour; default the clock). Returns how many were queued."""
    at = parse_utc(now, field="now") if now else utcnow()
    with job_context():
        with platform_bypass("billing: due invoices"):
            orgs = db.session.execute(select(Organization.id, Organization.timezone).order_by(Organization.id)).all()
        for org_id, timezone in orgs:
            enqueue("vsync.jobs.billing.make_month_invoice", org_id, *last_complete_month(at, timezone), at.isoformat())
    log.info("billing: invoices of %s orgs queued", len(orgs))
    return len(orgs)


def make_month_invoice(org_id: int, year: int, month: int, now: str, requested_by: str | None = None) -> str | None:
    """Make (once) and issue the org's invoice of a local month; returns its number. Audited as
    `requested_by` (who queued it, such as the CLI's demo), else as the system."""
    with job_context(), acting_as(requested_by or "system"), tenant(org_id):
        invoice = invoices.make_month_invoice(org_id, year, month, parse_utc(now, field="now"))
        number = invoice.number if invoice is not None else None
        db.session.commit()
    return number
