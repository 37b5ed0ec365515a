"""Demo data for the embedded default: idempotent, so `make run` loads it on every start.

Two organisations with an admin, a manager and an agent each, and, given running MightyCall
simulators (one per org), an integration per org pointing at its simulator and synced: 30 days on
the first run, the time since the last sync afterwards (`sync_demo` syncs again while `make run` runs).

The demo finds its own integration by name and repoints it when the simulator moved (another
`SIM_PORT`), so an org never gets a second one and no call is imported twice. Refused in
production. The caller commits; the syncs commit their runs as they start (see `vsync.services`).
Each demo org is on a plan from the first of last month, with last month's invoice made (this
month's usage is the synced traffic). `demo_floor_targets` gives `make run`'s demo floor
(`flask demo-floor`) what it plays calls into.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import requests
from flask import current_app
from sqlalchemy import select

from vsync.errors import Conflict
from vsync.extensions import db
from vsync.mightycall.errors import TransportError
from vsync.models import (
    Integration,
    Membership,
    NumberAssignment,
    Organization,
    PhoneNumber,
    Plan,
    Subscription,
    Ticket,
)
from vsync.models.notifications import SERVICE_LEVEL, SILENCE
from vsync.models.types import utcnow
from vsync.queue import enqueue
from vsync.services import audit, members, orgs, support
from vsync.services.billing import plans
from vsync.services.billing.usage import last_complete_month, local_midnight
from vsync.services.integrations import create_integration, update_integration, validate_base_url
from vsync.services.notifications import alerts, preferences
from vsync.services.notifications.preferences import DIGEST_HOUR
from vsync.services.sync import ALL_KINDS, WINDOWED_KINDS, cursor_of, start_sync
from vsync.services.webhooks import rotate_webhook_token

DEMO_PASSWORD = "vsync-demo-password"
PLATFORM_ADMIN_EMAIL = "admin@vsync.demo"
DEMO_ORGS = (  # slug, name, time zone, org admin
    ("acme", "Acme Dental", "America/New_York", "owner@acme.demo"),
    ("globex", "Globex Logistics", "Europe/London", "owner@globex.demo"),
)
# Each demo org's other roles: (role, login, MightyCall extension). Extension 101 is the simulators'
# Alice Johnson, whom the demo floor rings most, so the agent's floor and calls are never empty.
DEMO_MEMBERS = (("manager", "manager@{slug}.demo", None), ("agent", "agent@{slug}.demo", "101"))
DEMO_HISTORY = timedelta(days=30)
DEMO_INTEGRATION_NAME = "MightyCall (simulator)"
SIMULATOR_API_KEY, SIMULATOR_USER_KEY = "sim-api-key", "sim-user-key"
SIMULATOR_START_SECONDS = 20.0
DEMO_PLANS = {  # each demo org's plan (a realistic reseller's): fee, allowances, overage, rounding
    "acme": {
        "code": "standard",
        "name": "Standard",
        "currency": "USD",
        "rounding": "minute",
        "monthly_fee": "49.00",
        "included_minutes": 500,
        "minute_price": "0.035",
        "included_sms": 100,
        "sms_price": "0.02",
        "included_numbers": 2,
        "number_price": "4.00",
    },
    "globex": {
        "code": "standard-uk",
        "name": "Standard UK",
        "currency": "GBP",
        "rounding": "second",
        "monthly_fee": "39.00",
        "included_minutes": 300,
        "minute_price": "0.03",
        "included_sms": 50,
        "sms_price": "0.04",
        "included_numbers": 1,
        "number_price": "3.50",
    },
}


def _first_of_last_month(tz: str) -> date:
    year, month = last_complete_month(utcnow(), tz)
    return date(year, month, 1)


def _org(slug: str, name: str, tz: str) -> Organization:
    """The demo org; a new one is dated from the first of last month, so that it has a month to bill."""
    org = db.session.scalar(select(Organization).where(Organization.slug == slug))
    if org is None:
        org = orgs.create_org(name, slug, tz)
        org.created_at = local_midnight(_first_of_last_month(tz), ZoneInfo(tz))
    return org


def _wait_until_up(base_url: str) -> None:
    """The simulators start alongside the demo; give them a moment to listen."""
    deadline = time.monotonic() + SIMULATOR_START_SECONDS
    while True:
        try:
            requests.get(base_url, timeout=2)
            return
        except requests.ConnectionError:
            if time.monotonic() > deadline:
                raise TransportError(
                    f"The MightyCall simulator at {base_url} did not answer within {SIMULATOR_START_SECONDS:.0f}s."
                ) from None
            time.sleep(0.2)


def _demo_integration(org: Organization, base_url: str) -> Integration:
    """The org's demo integration, pointing at `base_url`: created, or found and repointed."""
    integration = db.session.scalars(
        select(Integration)
        .where(Integration.org_id == org.id, Integration.name == DEMO_INTEGRATION_NAME)
        .order_by(Integration.id)
    ).first()
    if integration is None:
        integration, _ = create_integration(
            org, api_key=SIMULATOR_API_KEY, user_key=SIMULATOR_USER_KEY, base_url=base_url, name=DEMO_INTEGRATION_NAME
        )
    else:
        update_integration(integration, base_url=base_url)  # the new simulator's token is fetched afresh
    return integration


def _sync(integration: Integration) -> list[str]:
    lines = []
    for kind in ALL_KINDS:
        since = utcnow() - DEMO_HISTORY if kind in WINDOWED_KINDS and cursor_of(integration, kind) is None else None
        run, _ = start_sync(integration, kind, since=since)
        lines.append(
            f"  {kind}: {run.status}, {run.fetched} fetched, {run.inserted} new"
            + (f" ({run.error})" if run.error else "")
        )
    return lines


def _tickets(org: Organization, admin) -> None:
    """A few open tickets and a pending number request from the org admin, once."""
    if db.session.scalar(select(Ticket.id).where(Ticket.org_id == org.id).limit(1)) is not None:
        return
    author = support.Member(id=admin.id, label=admin.email)
    support.open_ticket(
        org.id,
        author,
        subject="Calls to the main line drop after 30 seconds",
        category="problem",
        priority="high",
        message="Since Monday, callers on the main line are cut off mid-call.",
    )
    support.open_ticket(
        org.id,
        author,
        subject="How do we export last month's calls?",
        category="question",
        priority="low",
        message="We need a CSV of last month's calls for our accountant.",
    )
    support.open_number_request(
        org.id,
        author,
        action="new",
        country="US",
        area_code="415",
        label="New branch",
        message="A local number for the branch opening next month, please.",
    )


def _bill(org: Organization) -> str:
    """The org's demo plan and subscription (from the first of last month, or its creation), then last
    month's invoice, made by the invoice job in the org's own scope: committed first, so the job
    (inline in the embedded default) sees the subscription."""
    terms = DEMO_PLANS[org.slug]
    if db.session.scalar(select(Subscription.id).where(Subscription.org_id == org.id)) is None:
        plan = db.session.scalars(
            select(Plan).where(Plan.code == terms["code"]).order_by(Plan.version.desc())
        ).first() or plans.save_plan(**terms)
        db.session.flush()
        created = org.created_at.astimezone(ZoneInfo(org.timezone)).date()
        plans.subscribe(org.id, plan.id, max(_first_of_last_month(org.timezone), created))
    db.session.commit()
    year, month = last_complete_month(utcnow(), org.timezone)
    enqueue("vsync.jobs.billing.make_month_invoice", org.id, year, month, utcnow().isoformat(), audit.current_actor())
    return f"  billing: {terms['name']} plan; the invoice of {year}-{month:02d} made"


def load_demo(simulators: tuple[str, ...] = ()) -> list[str]:
    """Create what is missing of the demo and describe the logins. Runs in a platform bypass."""
    if current_app.config["VSYNC_ENV"] == "production":
        raise Conflict("The demo data is not loaded into a production instance.", field="env")
    simulators = tuple(validate_base_url(url) for url in simulators)
    if orgs.find_user(PLATFORM_ADMIN_EMAIL) is None:
        orgs.create_platform_admin(PLATFORM_ADMIN_EMAIL, DEMO_PASSWORD)
    lines = [f"platform admin: {PLATFORM_ADMIN_EMAIL} / {DEMO_PASSWORD}"]
    for index, (slug, name, tz, admin_email) in enumerate(DEMO_ORGS):
        org = _org(slug, name, tz)
        _member(org, admin_email, "org_admin", digest_at_midnight=True)
        lines.append(f"{name} admin: {admin_email} / {DEMO_PASSWORD}")
        for role, login, extension in DEMO_MEMBERS:
            email = login.format(slug=slug)
            _member(org, email, role, extension)
            lines.append(
                f"{name} {role}: {email} / {DEMO_PASSWORD}" + (f" (extension {extension})" if extension else "")
            )
        _tickets(org, orgs.find_user(admin_email))
        _demo_alerts(org)
        if index < len(simulators):
            _wait_until_up(simulators[index])
            lines.append(f"{name} syncing from the simulator at {simulators[index]}:")
            lines.extend(_sync(_demo_integration(org, simulators[index])))
        lines.append(_bill(org))
    return lines


def sync_demo() -> list[str]:
    """Sync each demo organisation's demo integration incrementally (what `make run` repeats every few
    minutes, as a schedule would in production) and describe the runs. Runs in a platform bypass."""
    if current_app.config["VSYNC_ENV"] == "production":
        raise Conflict("The demo data is not synced in a production instance.", field="env")
    lines = []
    for slug, name, *_rest in DEMO_ORGS:
        integration = _existing_demo_integration(slug)
        if integration is not None:
            lines.append(f"{name}:")
            lines.extend(_sync(integration))
    return lines


def _existing_demo_integration(slug: str) -> Integration | None:
    """The demo integration of the demo org `slug`, if the demo made one."""
    return db.session.scalars(
        select(Integration)
        .join(Organization, Organization.id == Integration.org_id)
        .where(Organization.slug == slug, Integration.name == DEMO_INTEGRATION_NAME)
        .order_by(Integration.id)
    ).first()


def _member(
    org: Organization, email: str, role: str, extension: str | None = None, *, digest_at_midnight: bool = False
) -> None:
    """A demo login with the demo password and its membership of the org, unless it has one. With
    `digest_at_midnight`, its first daily digest (for yesterday) is due at once, whatever the hour
    `make run` starts."""
    user = orgs.find_user(email)
    member = user and db.session.scalar(
        select(Membership).where(Membership.org_id == org.id, Membership.user_id == user.id)
    )
    if member is None:
        if user is None:
            orgs.create_user(email, DEMO_PASSWORD)
        added = members.add_member(org, email, role, extension=extension)
        if digest_at_midnight:
            preferences.set_preferences(added.membership, {DIGEST_HOUR: "0"})


def _demo_alerts(org: Organization) -> None:
    """Alert rules for a demo org that has none, checked around the clock, so `make run` shows alerts
    (and the admin's digest, due at local midnight) landing in the outbox."""
    if alerts.rules(org):
        return
    alerts.save_rule(org, SERVICE_LEVEL, window_minutes=60, threshold=0.8)
    alerts.save_rule(org, SILENCE, window_minutes=15)
    alerts.set_business_hours(org, dict.fromkeys(range(7), (0, 24 * 60)))


@dataclass(frozen=True)
class DemoFloorTarget:
    """Where a demo floor plays one demo organisation's calls: its receiver URL and business numbers."""

    org_slug: str
    url: str
    api_key: str
    numbers: tuple[str, ...]


def demo_floor_targets(server_url: str) -> list[DemoFloorTarget]:
    """For each demo organisation with a demo integration, a fresh webhook token (the one shown at
    creation is not stored) and the numbers assigned to it now. Runs in a platform bypass; the caller
    commits before playing, so the receiver knows the new tokens."""
    if current_app.config["VSYNC_ENV"] == "production":
        raise Conflict("The demo floor does not play into a production instance.", field="env")
    targets = []
    for slug, *_rest in DEMO_ORGS:
        integration = _existing_demo_integration(slug)
        if integration is None:
            continue
        numbers = tuple(
            db.session.scalars(
                select(PhoneNumber.e164)
                .join(NumberAssignment, NumberAssignment.phone_number_id == PhoneNumber.id)
                .where(NumberAssignment.org_id == integration.org_id, NumberAssignment.unassigned_at.is_(None))
                .order_by(PhoneNumber.e164)
            )
        )
        if numbers:
            token = rotate_webhook_token(integration)
            targets.append(
                DemoFloorTarget(
                    slug, f"{server_url.rstrip('/')}/webhooks/mightycall/{token}", SIMULATOR_API_KEY, numbers
                )
            )
    return targets
