"""Billing locks: platform staff suspend an org (a reason, an optional end) and lift it again.

While a lock is in force (`active_lock`), every org route of the API and every org console page
answers its members and keys "suspended" (`vsync.auth` asks here once per request): the API with
403 and the error code `org_suspended`, the console with a page saying so. Platform staff still
reach the org, to lift the lock. Nothing else changes: syncs and webhooks keep storing the org's
data, so lifting the lock shows everything that came in meanwhile.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select

from vsync.errors import ValidationError
from vsync.extensions import db
from vsync.models import BillingLock, Organization
from vsync.services import audit

SUSPENDED_CODE = "org_suspended"


def active_lock(org_id: int, now: datetime) -> BillingLock | None:
    """The lock in force on the org at `now`, if any (read in its scope or the platform bypass)."""
    return db.session.scalars(
        select(BillingLock)
        .where(
            BillingLock.org_id == org_id,
            BillingLock.lifted_at.is_(None),
            BillingLock.starts_at <= now,
            or_(BillingLock.ends_at.is_(None), BillingLock.ends_at > now),
        )
        .order_by(BillingLock.id)
    ).first()


def suspend_org(org_id: int, reason: str, now: datetime, until: datetime | None = None) -> BillingLock:
    """Suspend the org from `now` (until `until`, or until lifted). Refused for an org already
    suspended. Audited."""
    org = db.session.get(Organization, org_id)
    if org is None:
        raise ValidationError(f"No organisation {org_id}.", field="org")
    reason = (reason or "").strip()
    if not reason or len(reason) > 500:
        raise ValidationError("A suspension needs a reason of at most 500 characters.", field="reason")
    if until is not None and until <= now:
        raise ValidationError("ends_at must be in the future.", field="ends_at")
    if active_lock(org_id, now) is not None:
        raise ValidationError(f"{org.slug} is suspended already; lift that lock first.", field="org")
    lock = BillingLock(org_id=org_id, reason=reason, starts_at=now, ends_at=until)
    db.session.add(lock)
    audit.record(
        "billing.org_suspended",
        org_id=org_id,
        target=lock,
        summary=reason + (f" (until {until:%Y-%m-%d %H:%M}Z)" if until else ""),
    )
    return lock


def lift_lock(org_id: int, now: datetime) -> BillingLock:
    """End the lock in force on the org now. Audited."""
    lock = active_lock(org_id, now)
    if lock is None:
        raise ValidationError("The organisation is not suspended.", field="org")
    lock.lifted_at = now
    audit.record("billing.lock_lifted", org_id=org_id, target=lock, summary=lock.reason)
    return lock
