"""Digests: at the person's local hour in the org's zone, once per period (a DST day included), the
previous day against the day before, an agent's holding only the agent's own calls."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select

from tests import factories
from tests.notifications.helpers import NUMBER, call
from vsync.extensions import db
from vsync.jobs.notifications import send_due_digests
from vsync.models import Call, Membership, OutboundEmail
from vsync.services.notifications import preferences
from vsync.tenancy import platform_bypass, tenant

# Tuesday 3 November 2026 in New York (UTC-5): the day the digests of Wednesday the 4th are about.
DAY = datetime(2026, 11, 3, 19, 0, tzinfo=UTC)  # 14:00 local


def floor(slug: str = "acme", tz: str = "America/New_York") -> dict:
    """An org with an admin, an agent (extension 101), a number and a day of traffic."""
    org_id = factories.make_org(slug, tz)
    users = {
        "admin": factories.make_user(f"admin@{slug}.test", org_slug=slug),
        "agent": factories.make_user(f"agent@{slug}.test", org_slug=slug, role="agent", extension="101"),
    }
    number_id = factories.make_number(NUMBER)
    factories.assign(slug, NUMBER, at=DAY - timedelta(days=30))
    account = factories.account_of(factories.make_integration(org_id))
    rows = [
        call(account, number_id, "agent-answered", DAY, agent="101"),
        call(account, number_id, "other-answered", DAY + timedelta(minutes=5), agent="102"),
        call(account, number_id, "missed-1", DAY + timedelta(hours=1), status="missed", from_number="+15550000001"),
        call(account, number_id, "missed-2", DAY + timedelta(hours=2), status="missed", from_number="+15550000001"),
        call(account, number_id, "missed-3", DAY + timedelta(hours=1), status="missed", from_number="+15550000002"),
        call(
            account,
            number_id,
            "called-back",
            DAY + timedelta(hours=3),
            direction="outbound",
            from_number=NUMBER,
            to_number="+15550000002",
            agent="102",
        ),
        call(account, number_id, "day-before", DAY - timedelta(days=1), agent="102"),
    ]
    with platform_bypass("test setup"):
        db.session.execute(insert(Call.__table__), rows)
        db.session.commit()
    return {"org": org_id, **users}


def set_digest(org_id: int, user_id: int, kind: str, hour: int) -> None:
    with tenant(org_id):
        membership = db.session.scalar(select(Membership).where(Membership.user_id == user_id))
        preferences.set_preferences(membership, {"digest": kind, "digest_hour": str(hour)}, actor="test")
        db.session.commit()


def outbox(org_id: int) -> list[OutboundEmail]:
    with tenant(org_id):
        rows = db.session.scalars(
            select(OutboundEmail).where(OutboundEmail.kind == "digest").order_by(OutboundEmail.id)
        ).all()
        db.session.expunge_all()
        return rows


def test_a_daily_digest_goes_at_the_local_hour_once_with_the_days_figures(mail_app, inbox, time_machine):
    with mail_app.app_context():
        acme = floor()
        inbox.clear()  # the members' invitations
        set_digest(acme["org"], acme["agent"], "daily", 8)
        time_machine.move_to(datetime(2026, 11, 4, 12, 59, tzinfo=UTC))  # 07:59 in New York
        assert send_due_digests()["sent"] == 0
        time_machine.move_to(datetime(2026, 11, 4, 13, 0, tzinfo=UTC))  # 08:00
        assert send_due_digests()["sent"] == 2
        assert send_due_digests()["sent"] == 0
        time_machine.move_to(datetime(2026, 11, 4, 20, 0, tzinfo=UTC))
        assert send_due_digests()["sent"] == 0
    messages = {m["To"]: m for m in inbox.wait_for(2)}
    assert len(inbox.messages) == 2
    admin = messages["admin@acme.test"]
    assert admin["Subject"] == "Acme: your daily calls digest for Tuesday 3 November 2026"
    text = admin.get_body(("plain",)).get_content()
    assert "+15550000001: 2 tries" in text and "+15550000002" not in text  # called back since
    assert "Calls                               6   (before: 1)" in text
    assert "Busiest hour: 14:00–15:00" in text
    assert "Extension 102: 2 calls, 1 answered" in text and "Extension 101: 1 call, 1 answered" in text
    assert admin["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert admin["List-Unsubscribe"].strip().startswith("<http://127.0.0.1:5000/unsubscribe/")
    assert (
        'href="http://127.0.0.1:5000/admin/orgs/acme/calls/?q=%2B15550000001' in admin.get_body(("html",)).get_content()
    )
    with mail_app.app_context():
        assert {row.status for row in outbox(acme["org"])} == {"sent"}


def test_an_agents_digest_holds_only_the_agents_own_calls(mail_app, inbox, time_machine):
    with mail_app.app_context():
        acme = floor()
        inbox.clear()  # the members' invitations
        set_digest(acme["org"], acme["agent"], "daily", 8)
        time_machine.move_to(datetime(2026, 11, 4, 13, 0, tzinfo=UTC))
        send_due_digests()
    agent = {m["To"]: m for m in inbox.wait_for(2)}["agent@acme.test"]
    text = agent.get_body(("plain",)).get_content()
    assert "your own calls" in text
    assert "Calls                               1   (before: 0)" in text
    assert "Extension 101: 1 call, 1 answered" in text and "102" not in text
    assert "+15550000001" not in text


def test_a_weekly_digest_goes_on_monday_for_the_week_before(mail_app, inbox, time_machine):
    with mail_app.app_context():
        acme = floor()
        inbox.clear()  # the members' invitations
        set_digest(acme["org"], acme["admin"], "weekly", 9)
        time_machine.move_to(datetime(2026, 11, 8, 15, 0, tzinfo=UTC))  # Sunday 10:00: weekly ones wait
        send_due_digests()
        time_machine.move_to(datetime(2026, 11, 9, 14, 0, tzinfo=UTC))  # Monday 09:00
        send_due_digests()
        send_due_digests()
    # the agent's default is weekly at 08:00: both go on Monday
    assert (
        sorted(m["Subject"] for m in inbox.wait_for(2))
        == ["Acme: your weekly calls digest for the week of 2 November 2026"] * 2
    )


def test_two_orgs_digests_hold_their_own_figures_only(mail_app, inbox, time_machine):
    with mail_app.app_context():
        acme = floor()
        inbox.clear()  # the members' invitations
        globex_org = factories.make_org("globex", "Europe/London")
        factories.make_user("admin@globex.test", org_slug="globex")
        inbox.clear()
        time_machine.move_to(datetime(2026, 11, 4, 13, 0, tzinfo=UTC))  # 13:00 London, 08:00 New York
        send_due_digests()
        assert len(outbox(globex_org)) == 1 and len(outbox(acme["org"])) == 1  # acme's agent: weekly
    globex = {m["To"]: m for m in inbox.wait_for(2)}["admin@globex.test"]
    text = globex.get_body(("plain",)).get_content()
    assert globex["Subject"].startswith("Globex:")
    assert "Calls                               0" in text and "+1555" not in text


def test_a_digest_at_an_hour_a_dst_change_repeats_or_skips_goes_once(mail_app, time_machine):
    with mail_app.app_context():
        acme = floor()
        set_digest(acme["org"], acme["admin"], "daily", 1)
        set_digest(acme["org"], acme["agent"], "daily", 2)
        # 1 November 2026: New York's 01:00-02:00 happens twice (EDT, then EST); 02:00 happens once.
        for utc_hour in (5, 6):  # 01:30 EDT, 01:30 EST
            time_machine.move_to(datetime(2026, 11, 1, utc_hour, 30, tzinfo=UTC))
            send_due_digests()
        assert len(outbox(acme["org"])) == 1
        # 14 March 2027: 02:00 does not exist (01:59 EST is followed by 03:00 EDT).
        time_machine.move_to(datetime(2027, 3, 14, 6, 59, tzinfo=UTC))  # 01:59 EST
        send_due_digests()
        time_machine.move_to(datetime(2027, 3, 14, 7, 0, tzinfo=UTC))  # 03:00 EDT
        send_due_digests()
        time_machine.move_to(datetime(2027, 3, 14, 8, 0, tzinfo=UTC))
        send_due_digests()
        keys = [row.dedupe_key for row in outbox(acme["org"])]
    assert keys == [
        f"digest:{acme['org']}:{acme['admin']}:daily:2026-10-31",
        f"digest:{acme['org']}:{acme['admin']}:daily:2027-03-13",
        f"digest:{acme['org']}:{acme['agent']}:daily:2027-03-13",
    ]


def test_the_digests_one_click_header_turns_that_digest_off(mail_app, inbox, time_machine):
    with mail_app.app_context():
        acme = floor()
        inbox.clear()  # the members' invitations
        time_machine.move_to(datetime(2026, 11, 4, 13, 0, tzinfo=UTC))
        send_due_digests()
    [admin] = inbox.wait_for(1)
    url = admin["List-Unsubscribe"].strip().strip("<>")
    response = mail_app.test_client().post(
        url.removeprefix("http://127.0.0.1:5000"), data={"List-Unsubscribe": "One-Click"}
    )
    assert response.status_code == 200
    with mail_app.app_context(), tenant(acme["org"]):
        membership = db.session.scalar(select(Membership).where(Membership.user_id == acme["admin"]))
        assert preferences.preferences_of(membership) == {**preferences.DEFAULTS["org_admin"], "digest": "off"}
