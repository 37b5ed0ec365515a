"""An agent is (MightyCall account, extension): agent 101 of org A and extension 101 of org B's own
account are two people, even on a number both orgs share. Org A's agent sees only calls their own
extension of A's account handled, in every read: the calls list, CSV, recordings, KPIs and the floor."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from sqlalchemy import insert, select

from tests.factories import PASSWORD, T0, account_of, assign, make_integration, make_number, make_org, make_user
from tests.helpers import login
from vsync.extensions import db
from vsync.models import Call, CallEvent, Integration, PhoneNumber, Recording
from vsync.services import orgs
from vsync.services.live import floor_state
from vsync.tenancy import Scope, platform_bypass, tenant

SHARED = "+12125550150"
WINDOW = {"from": (T0 - timedelta(days=1)).date().isoformat(), "to": (T0 + timedelta(days=1)).date().isoformat()}


def _call(account_id: int, number_id: int, external_id: str, extension: str, *, ended: bool = True) -> None:
    started = T0 - timedelta(minutes=10) if ended else T0
    db.session.execute(
        insert(Call.__table__).values(
            account_id=account_id,
            phone_number_id=number_id,
            external_id=external_id,
            direction="inbound",
            status="answered",
            started_at=started,
            answered_at=started + timedelta(seconds=4),
            ended_at=started + timedelta(minutes=1) if ended else None,
            events_at=started + timedelta(seconds=4),
            duration_ms=60_000,
            agent_extension=extension,
            raw={},
        )
    )
    db.session.execute(
        insert(CallEvent.__table__).values(
            account_id=account_id,
            phone_number_id=number_id,
            guid=f"{external_id}-c",
            call_external_id=external_id,
            event_type="IncomingCallConnected",
            kind="connected",
            extension=extension,
            call_started_at=started,
            occurred_at=started + timedelta(seconds=4),
            raw={},
        )
    )
    db.session.execute(
        insert(Recording.__table__).values(
            account_id=account_id,
            phone_number_id=number_id,
            call_external_id=external_id,
            started_at=started,
            provider_uri=f"http://127.0.0.1:1/{external_id}.wav",
        )
    )


def _world(app):
    with app.app_context():
        a, b = make_org("org-a"), make_org("org-b")
        number = make_number(SHARED)
        assign("org-a", SHARED, at=T0 - timedelta(days=30))
        assign("org-b", SHARED, at=T0 - timedelta(days=30))
        accounts = {"a": account_of(make_integration(a)), "b": account_of(make_integration(b))}
        make_user("agent@a.test", org_slug="org-a", role="agent", extension="101")
        make_user("agent@b.test", org_slug="org-b", role="agent", extension="101")
        with platform_bypass("test setup"):
            _call(accounts["a"], number, "by-a-101", "101")
            _call(accounts["b"], number, "by-b-101", "101")
            _call(accounts["b"], number, "live-b-101", "101", ended=False)
            db.session.commit()
        db.session.remove()


def test_agent_101_of_org_a_never_sees_extension_101_of_org_bs_account(app, client):
    _world(app)
    assert login(client, "agent@a.test", PASSWORD).status_code == 302
    answer = client.get("/api/v1/orgs/org-a/calls", query_string=WINDOW)
    assert answer.status_code == 200, answer.get_json()
    assert [c["external_id"] for c in answer.get_json()["data"]] == ["by-a-101"]
    exported = list(
        csv.DictReader(
            io.StringIO(
                client.get("/api/v1/orgs/org-a/calls", query_string={**WINDOW, "format": "csv"}).get_data(as_text=True)
            )
        )
    )
    assert [row["external_id"] for row in exported] == ["by-a-101"]
    recordings = client.get("/api/v1/orgs/org-a/recordings", query_string=WINDOW).get_json()["data"]
    assert [r["call_external_id"] for r in recordings] == ["by-a-101"]
    metrics = client.get("/api/v1/orgs/org-a/metrics", query_string=WINDOW).get_json()["metrics"]
    assert metrics["total_calls"] == 1


def test_an_org_admin_counts_every_call_on_the_shared_number_but_only_its_own_accounts_agents(app, client):
    _world(app)
    with app.app_context():
        make_user("admin@a.test", org_slug="org-a", role="org_admin")
    assert login(client, "admin@a.test", PASSWORD).status_code == 302
    calls = client.get("/api/v1/orgs/org-a/calls", query_string=WINDOW).get_json()["data"]
    assert sorted(c["external_id"] for c in calls) == ["by-a-101", "by-b-101", "live-b-101"]
    agent_101 = client.get("/api/v1/orgs/org-a/calls", query_string={**WINDOW, "agent": "101"}).get_json()["data"]
    assert [c["external_id"] for c in agent_101] == ["by-a-101"]


def test_an_agents_floor_shows_their_own_state_and_the_queue_as_figures_only(app):
    _world(app)
    with app.app_context():
        b = org_id("org-b")
    with app.app_context(), platform_bypass("test setup"):
        b_account = db.session.scalar(select(Integration.account_id).where(Integration.org_id == b))
        number = db.session.scalar(select(PhoneNumber.id).where(PhoneNumber.e164 == SHARED))
        _call(b_account, number, "live-b-102", "102", ended=False)
        db.session.execute(
            insert(Call.__table__).values(
                account_id=b_account,
                phone_number_id=number,
                external_id="waiting",
                direction="inbound",
                status="other",
                started_at=T0 - timedelta(seconds=20),
                events_at=T0,
                raw={},
            )
        )
        db.session.commit()
    now = T0 + timedelta(seconds=30)
    with app.app_context(), tenant(Scope(org_id=b, role="agent", extension="101", accounts=(b_account,))):
        floor = floor_state(b, now=now)
    assert [(agent.extension, agent.state) for agent in floor.agents] == [("101", "on_call")]
    assert [call.call_id for call in floor.in_progress] == ["live-b-101"]
    assert floor.waiting == [] and floor.calls_waiting == 1 and floor.longest_wait_seconds == 50.0
    with app.app_context(), tenant(b, role="manager"):
        floor = floor_state(b, now=now)
    assert [agent.extension for agent in floor.agents] == ["101", "102"]
    assert [call.call_id for call in floor.waiting] == ["waiting"] and floor.calls_waiting == 1


def org_id(slug: str) -> int:
    with platform_bypass("test"):
        return orgs.get_org_by_slug(slug).id
