"""Demo data for the embedded default: idempotent, so `make run` can load it on every start."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from vsync.models import Membership, NumberAssignment, Organization, PhoneNumber
from vsync.extensions import db
from vsync.services import numbers, orgs

DEMO_PASSWORD = "vsync-demo-password"
PLATFORM_ADMIN_EMAIL = "admin@vsync.demo"
DEMO_ORGS = (
    # slug, name, time zone, org admin, numbers (the first of Acme's is shared with Globex)
    ("acme", "Acme Dental", "America/New_York", "owner@acme.demo", ("+12125550148", "+12125550187")),
    ("globex", "Globex Logistics", "Europe/London", "owner@globex.demo", ("+12125550148", "+13125550163")),
)
DEMO_HISTORY = timedelta(days=90)


def _org(slug: str, name: str, tz: str) -> Organization:
    org = db.session.scalar(select(Organization).where(Organization.slug == slug))
    return org or orgs.create_org(name, slug, tz)


def _number(e164: str) -> PhoneNumber:
    number = db.session.scalar(select(PhoneNumber).where(PhoneNumber.e164 == e164))
    return number or numbers.add_number(e164, label="Demo line")


def load_demo(now: datetime | None = None) -> list[str]:
    """Create what is missing of the demo and describe the logins. Runs in a platform bypass."""
    since = (now or datetime.now(timezone.utc)) - DEMO_HISTORY
    if orgs.find_user(PLATFORM_ADMIN_EMAIL) is None:
        orgs.create_platform_admin(PLATFORM_ADMIN_EMAIL, DEMO_PASSWORD)
    lines = [f"platform admin: {PLATFORM_ADMIN_EMAIL} / {DEMO_PASSWORD}"]
    for slug, name, tz, admin_email, e164s in DEMO_ORGS:
        org = _org(slug, name, tz)
        user = orgs.find_user(admin_email)
        member = user and db.session.scalar(
            select(Membership).where(Membership.org_id == org.id, Membership.user_id == user.id))
        if member is None:
            orgs.add_member(org, admin_email, "org_admin", password=None if user else DEMO_PASSWORD)
        for e164 in e164s:
            number = _number(e164)
            assigned = db.session.scalar(select(NumberAssignment.id).where(
                NumberAssignment.org_id == org.id, NumberAssignment.phone_number_id == number.id))
            if assigned is None:
                numbers.assign_number(org, number, at=since)
        lines.append(f"{name} admin: {admin_email} / {DEMO_PASSWORD}")
    return lines
