"""The two-org test world every tenancy and access test uses, built through the domain functions.

Org A and org B, each with an integration, an org admin, a manager and an agent (with an
extension), read and write API keys, a sync run, an agent row and an audit event; a user in both
orgs; a platform admin and a platform key. Four numbers: A_ONLY, B_ONLY, SHARED (assigned to both)
and MOVED (A's until T, B's from T). Calls (some handled by each org's agent), call events,
recordings and SMS on each, an hour either side of T. Each org admin has a signed-in session.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import insert, select

from tests.factories import PASSWORD, T0, account_of, assign, make_integration, make_number, make_org, make_user
from vsync.auth.principals import UserPrincipal
from vsync.crypto import encrypt
from vsync.extensions import db
from vsync.models import (
    Agent,
    AlertEvent,
    AlertRule,
    AlertWebhook,
    AlertWebhookDelivery,
    BillingLock,
    BillingSettings,
    BusinessHours,
    Call,
    CallEvent,
    Invoice,
    InvoiceLine,
    Membership,
    NotificationPreference,
    OutboundEmail,
    Payment,
    Plan,
    Recording,
    SmsMessage,
    Subscription,
    SyncRun,
    WebhookEvent,
)
from vsync.services import audit, rollups, sessions, support
from vsync.services.keys import create_api_key
from vsync.tenancy import platform_bypass

A_ONLY, B_ONLY, SHARED, MOVED = "+12125550101", "+12125550102", "+12125550103", "+12125550104"
T = T0  # the moment MOVED passes from org A to org B
HOUR = timedelta(hours=1)

USERS = {
    "admin_a": ("admin@a.test", "org-a", "org_admin", None),
    "manager_a": ("manager@a.test", "org-a", "manager", None),
    "agent_a": ("agent@a.test", "org-a", "agent", "101"),
    "admin_b": ("admin@b.test", "org-b", "org_admin", None),
    "manager_b": ("manager@b.test", "org-b", "manager", None),
    "agent_b": ("agent@b.test", "org-b", "agent", "201"),
}
BOTH = "both@ab.test"  # manager of A, agent (extension 202) of B
ROOT = "root@platform.test"
INTERNAL_NOTE = "staff-only internal note"  # on each org's ticket: no org member may ever read it


@dataclass
class World:
    a: int
    b: int
    integrations: dict[str, int]
    numbers: dict[str, int]
    users: dict[str, int]
    keys: dict[str, str] = field(default_factory=dict)
    calls: dict[str, dict[str, int]] = field(default_factory=dict)  # org of its integration → external id → id
    recordings: dict[str, dict[str, int]] = field(default_factory=dict)  # the same, of the call's recording
    runs: dict[str, int] = field(default_factory=dict)  # org → its sync run
    invoices: dict[str, int] = field(default_factory=dict)  # org → its (draft) invoice of October 2026
    key_ids: dict[str, int] = field(default_factory=dict)  # key name → id
    agent_memberships: dict[str, int] = field(default_factory=dict)  # org → its agent's membership
    tickets: dict[str, int] = field(default_factory=dict)  # org → a ticket its agent opened (with an internal note)
    number_requests: dict[str, int] = field(default_factory=dict)  # org → a pending one its org admin opened

    def org(self, name: str) -> int:
        return {"a": self.a, "b": self.b}[name]


def _world_plan() -> int:
    plan = Plan(
        code="world",
        version=1,
        name="World plan",
        currency="USD",
        monthly_fee=Decimal(10),
        minute_price=Decimal(0),
        sms_price=Decimal(0),
        number_price=Decimal(0),
    )
    db.session.add(plan)
    db.session.flush()
    return plan.id


def _billing(world: World, org: str, org_id: int, plan_id: int) -> None:
    """The org's billing rows: its settings, a subscription, an open invoice of October 2026 (10.00
    USD, 1.00 paid) and a lock lifted long ago (one in force would refuse the org's every route)."""
    number = 1 if org == "a" else 2
    invoice = Invoice(
        org_id=org_id,
        period_start=date(2026, 10, 1),
        period_end=date(2026, 11, 1),
        currency="USD",
        number=f"INV-2026-{number:06d}",
        status="open",
        issued_at=T,
        subtotal=Decimal(10),
        total=Decimal(10),
        paid=Decimal(1),
    )
    invoice.lines.append(
        InvoiceLine(
            org_id=org_id,
            position=1,
            kind="fee",
            description="World plan monthly fee",
            quantity=Decimal(1),
            unit="month",
            unit_price=Decimal(10),
            amount=Decimal(10),
        )
    )
    db.session.add_all(
        [
            invoice,
            BillingSettings(org_id=org_id),
            Subscription(org_id=org_id, plan_id=plan_id, starts_on=date(2026, 10, 1)),
            BillingLock(org_id=org_id, reason=f"settled by {org}", starts_at=T - 2 * HOUR, lifted_at=T - HOUR),
        ]
    )
    db.session.flush()
    db.session.add(Payment(org_id=org_id, invoice_id=invoice.id, amount=Decimal(1), received_on=date(2026, 11, 1)))
    world.invoices[org] = invoice.id


def _traffic(account_id: int, number_id: int, prefix: str, started: datetime, extension: str | None) -> None:
    external_id = f"{prefix}-{started:%H%M}"
    db.session.execute(
        insert(Call.__table__).values(
            account_id=account_id,
            phone_number_id=number_id,
            external_id=external_id,
            direction="inbound",
            status="answered",
            started_at=started,
            duration_ms=60_000,
            agent_extension=extension,
            raw={},
        )
    )
    db.session.execute(
        insert(CallEvent.__table__).values(
            account_id=account_id,
            phone_number_id=number_id,
            guid=f"{external_id}-connected",
            call_external_id=external_id,
            event_type="CallConnected",
            extension=extension,
            occurred_at=started + timedelta(seconds=5),
            call_started_at=started,
            raw={},
        )
    )
    db.session.execute(
        insert(Recording.__table__).values(
            account_id=account_id,
            phone_number_id=number_id,
            call_external_id=external_id,
            started_at=started,
            file_name=f"{external_id}.mp3",
            provider_uri=f"http://127.0.0.1:1/{external_id}.mp3",
        )
    )
    db.session.execute(
        insert(SmsMessage.__table__).values(
            account_id=account_id,
            phone_number_id=number_id,
            external_id=f"sms-{external_id}",
            direction="inbound",
            counterpart="+12125559999",
            text=f"hello from {external_id}",
            sent_at=started,
            raw={},
        )
    )


def _ticket(org_id: int, agent_id: int, agent_email: str, org: str, root_id: int) -> int:
    """A support ticket opened by the org's agent, with a staff note the org must never see."""
    ticket = support.open_ticket(
        org_id,
        support.Member(id=agent_id, label=agent_email),
        subject=f"ticket of {org}",
        category="problem",
        message=f"help {org}",
    )
    support.add_internal_note(
        ticket, UserPrincipal(id=root_id, email=ROOT, role="platform_admin"), f"{INTERNAL_NOTE} on {org}"
    )
    return ticket.id


def _notifications(org_id: int, org: str, users: dict[str, int]) -> None:
    """A row of each notification model for the org: a preference, a sent message, an alert rule with
    a firing, an alert webhook with a delivery, a day of business hours."""
    agent = users[f"agent_{org}"]
    db.session.add(NotificationPreference(org_id=org_id, user_id=agent, key="alert_silence", value="on"))
    db.session.add(
        OutboundEmail(
            org_id=org_id,
            user_id=agent,
            kind="test",
            dedupe_key=f"world:{org}",
            to_address=USERS[f"agent_{org}"][0],
            subject="world",
            template="test",
            context={},
            status="sent",
        )
    )
    rule = AlertRule(org_id=org_id, kind="silence", window_minutes=30, enabled=False)
    db.session.add(rule)
    db.session.flush()
    event = AlertEvent(org_id=org_id, rule_id=rule.id, kind="silence", fired_at=T, resolved_at=T + HOUR)
    db.session.add(event)
    db.session.add(
        AlertWebhook(org_id=org_id, url=f"https://alerts.{org}.example/hook", secret_encrypted=encrypt(f"{org}-secret"))
    )
    db.session.flush()
    db.session.add(
        AlertWebhookDelivery(
            org_id=org_id,
            event_id=event.id,
            state="fired",
            url=f"https://alerts.{org}.example/hook",
            status="delivered",
        )
    )
    db.session.add(BusinessHours(org_id=org_id, weekday=0, opens=9 * 60, closes=17 * 60))


def build_world() -> World:
    a, b = make_org("org-a"), make_org("org-b", "America/New_York")
    users = {
        name: make_user(email, org_slug=org, role=role, extension=ext)
        for name, (email, org, role, ext) in USERS.items()
    }
    users["both"] = make_user(BOTH, org_slug="org-a", role="manager")
    make_user(BOTH, org_slug="org-b", role="agent", extension="202")
    users["root"] = make_user(ROOT, platform_admin=True)
    numbers = {e164: make_number(e164) for e164 in (A_ONLY, B_ONLY, SHARED, MOVED)}
    assign("org-a", A_ONLY)
    assign("org-b", B_ONLY)
    assign("org-a", SHARED)
    assign("org-b", SHARED)
    assign("org-a", MOVED, until=T)
    assign("org-b", MOVED, at=T)
    integrations = {"a": make_integration(a), "b": make_integration(b)}
    accounts = {org: account_of(integration_id) for org, integration_id in integrations.items()}
    world = World(a=a, b=b, integrations=integrations, numbers=numbers, users=users)
    with platform_bypass("test world"):
        for org, number, prefix, times, ext in (
            ("a", A_ONLY, "a", (T - HOUR, T + HOUR), "101"),
            ("b", B_ONLY, "b", (T - HOUR, T + HOUR), "201"),
            ("a", SHARED, "shared", (T,), "101"),
            ("a", MOVED, "moved-before", (T - HOUR,), None),
            ("b", MOVED, "moved-after", (T + HOUR,), "201"),
        ):
            for started in times:
                _traffic(accounts[org], numbers[number], prefix, started, ext)
        plan_id = _world_plan()
        for org in ("a", "b"):
            org_id, integration_id = world.org(org), integrations[org]
            for scope in ("read", "write"):
                key, world.keys[f"{scope}_{org}"] = create_api_key(org_id=org_id, name=f"{scope} {org}", scopes=scope)
                world.key_ids[f"{scope}_{org}"] = key.id
            run = SyncRun(org_id=org_id, integration_id=integration_id, kind="calls")
            db.session.add(run)
            db.session.flush()
            world.runs[org] = run.id
            _billing(world, org, org_id, plan_id)
            extension, name = ("101", "Ada Lovelace") if org == "a" else ("201", "Bea Brown")
            db.session.add(Agent(account_id=accounts[org], extension=extension, display_name=name))
            db.session.add(
                WebhookEvent(
                    org_id=org_id,
                    integration_id=integration_id,
                    guid=f"guid-{org}",
                    body="{}",
                    event_type="CallConnected",
                )
            )
            audit.record("test.event", org_id=org_id, actor="test", summary=f"event of {org}")
            world.tickets[org] = _ticket(org_id, users[f"agent_{org}"], USERS[f"agent_{org}"][0], org, users["root"])
            world.number_requests[org] = support.open_number_request(
                org_id,
                support.Member(id=users[f"admin_{org}"], label=USERS[f"admin_{org}"][0]),
                action="new",
                country="US",
                message="one more line",
            ).id
            _notifications(org_id, org, users)
        for name in ("admin_a", "admin_b"):
            sessions.start_session(users[name], ip="192.0.2.1", user_agent="world")
        key, world.keys["platform"] = create_api_key(org_id=None, name="platform", scopes="write")
        world.key_ids["platform"] = key.id
        rollups.refresh()  # the traffic's hourly rollups, as the sync's writes make them
        db.session.commit()
        for org in ("a", "b"):
            world.agent_memberships[org] = db.session.scalar(
                select(Membership.id).where(
                    Membership.user_id == users[f"agent_{org}"], Membership.org_id == world.org(org)
                )
            )
        for org in ("a", "b"):
            world.calls[org] = dict(
                db.session.execute(select(Call.external_id, Call.id).where(Call.account_id == accounts[org])).all()
            )
            world.recordings[org] = dict(
                db.session.execute(
                    select(Recording.call_external_id, Recording.id).where(Recording.account_id == accounts[org])
                ).all()
            )
    return world


EMAILS = {**{name: email for name, (email, *_rest) in USERS.items()}, "both": BOTH, "root": ROOT}


def api_as(client, principal: str, world: World, *, csrf: bool = False):
    """A test client acting as `principal` of the world: a user name (signed in) or a key name. With
    `csrf`, a signed-in user's requests carry the CSRF token, as the console's own API writes do."""
    if principal in world.keys:
        client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {world.keys[principal]}"
    elif principal != "anonymous":
        from tests.helpers import csrf_token, login

        response = login(client, EMAILS[principal], PASSWORD)
        assert response.status_code == 302, f"{principal} could not sign in"
        if csrf:
            client.environ_base["HTTP_X_CSRFTOKEN"] = csrf_token(client, "/admin/")
    return client
