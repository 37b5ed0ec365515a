"""Alerts: rules checked on input, evaluated within business hours, firing once when a condition
starts and resolving once when it ends (a margin keeps a level near its threshold from flapping)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from tests import factories
from tests.notifications.helpers import NUMBER, call, insert_calls
from vsync.errors import ValidationError
from vsync.extensions import db
from vsync.jobs.notifications import evaluate_alerts
from vsync.models import AlertEvent, AlertRule, Organization, OutboundEmail
from vsync.services.notifications import alerts
from vsync.tenancy import tenant

MONDAY = datetime(2026, 11, 2, tzinfo=UTC)  # in UTC; default business hours Mon-Fri 09:00-17:00


def at(hour: int, minute: int = 0, day: datetime = MONDAY) -> datetime:
    return day + timedelta(hours=hour, minutes=minute)


def org_with_traffic(slug: str, tz: str = "UTC", number: str = NUMBER) -> tuple[int, int, int]:
    """An org with an admin, a manager and an agent, a number and an integration: (org, account, number)."""
    org_id = factories.make_org(slug, tz)
    for role in ("org_admin", "manager", "agent"):
        extension = "101" if role == "agent" else None
        factories.make_user(f"{role}@{slug}.test", org_slug=slug, role=role, extension=extension)
    number_id = factories.make_number(number)
    factories.assign(slug, number, at=MONDAY - timedelta(days=30))
    return org_id, factories.account_of(factories.make_integration(org_id)), number_id


def rule(org_id: int, kind: str, **values) -> None:
    with tenant(org_id):
        alerts.save_rule(db.session.get(Organization, org_id), kind, **values)
        db.session.commit()


def history(org_id: int) -> list[tuple]:
    with tenant(org_id):
        return [(e.fired_at, e.resolved_at) for e in reversed(alerts.history(db.session.get(Organization, org_id)))]


def emails(org_id: int) -> list[tuple[str, str]]:
    with tenant(org_id):
        return [
            (row.to_address, row.subject)
            for row in db.session.scalars(
                select(OutboundEmail).where(OutboundEmail.kind == "alert").order_by(OutboundEmail.id)
            )
        ]


def run_at(time_machine, when: datetime) -> dict:
    time_machine.move_to(when)
    return evaluate_alerts()


@pytest.mark.parametrize(
    ("kind", "values", "field"),
    [
        ("service_level", {"window_minutes": 60, "threshold": -0.1}, "threshold"),
        ("service_level", {"window_minutes": 60, "threshold": 1.5}, "threshold"),
        ("silence", {"window_minutes": 0}, "window_minutes"),
        ("pager", {"window_minutes": 10}, "kind"),
    ],
)
def test_a_bad_rule_is_refused_naming_its_field_and_nothing_is_stored(app, kind, values, field):
    with app.app_context():
        org_id = factories.make_org("acme")
        with tenant(org_id):
            with pytest.raises(ValidationError) as refused:
                alerts.save_rule(db.session.get(Organization, org_id), kind, **values)
            assert refused.value.field == field
            db.session.rollback()
            assert db.session.scalars(select(AlertRule)).all() == []


def test_silence_fires_once_and_resolves_once_across_a_boundary_crossed_back_and_forth(mail_app, inbox, time_machine):
    with mail_app.app_context():
        org_id, account, number_id = org_with_traffic("acme")
        inbox.clear()  # the members' invitations
        rule(org_id, "silence", window_minutes=30)
        run_at(time_machine, at(9, 20))  # the window starts before opening: not evaluated
        assert history(org_id) == []
        assert run_at(time_machine, at(9, 30))["changes"] == 1
        assert run_at(time_machine, at(9, 30))["changes"] == 0  # a second cron run of the same minute
        run_at(time_machine, at(9, 31))
        insert_calls([call(account, number_id, "c1", at(9, 32))])
        assert run_at(time_machine, at(9, 33))["changes"] == 1
        run_at(time_machine, at(9, 34))
        run_at(time_machine, at(10, 2))  # 09:32's call still in the last 30 minutes
        assert run_at(time_machine, at(10, 3))["changes"] == 1  # silent again: a new firing
        assert history(org_id) == [(at(9, 30), at(9, 33)), (at(10, 3), None)]
        sent = emails(org_id)
    assert sorted(sent) == sorted(
        [
            (f"{who}@acme.test", subject)
            for who in ("org_admin", "manager")  # the agent's default is off
            for subject in ("Acme: ALERT: No calls", "Acme: Resolved: No calls", "Acme: ALERT: No calls")
        ]
    )
    assert len(inbox.wait_for(6)) == 6


def test_service_level_resolves_only_past_the_margin(mail_app, time_machine):
    with mail_app.app_context():
        org_id, account, number_id = org_with_traffic("acme")
        rule(org_id, "service_level", window_minutes=60, threshold=0.8)

        def hour_of_calls(hour: int, fast: int, missed: int) -> None:
            insert_calls(
                [call(account, number_id, f"f{hour}-{i}", at(hour, i), wait=5) for i in range(fast)]
                + [call(account, number_id, f"m{hour}-{i}", at(hour, 30 + i), status="missed") for i in range(missed)]
            )

        hour_of_calls(9, fast=3, missed=1)  # 75 %
        assert run_at(time_machine, at(10))["changes"] == 1
        hour_of_calls(10, fast=9, missed=2)  # 81.8 %: above the threshold, inside the margin
        assert run_at(time_machine, at(11))["changes"] == 0
        hour_of_calls(11, fast=9, missed=1)  # 90 %
        assert run_at(time_machine, at(12))["changes"] == 1
        assert history(org_id) == [(at(10), at(12))]
        with tenant(org_id):
            event = db.session.scalars(select(AlertEvent)).one()
            assert (event.fired_value, event.resolved_value) == (0.75, 0.9)


def test_outside_business_hours_nothing_fires(mail_app, time_machine):
    with mail_app.app_context():
        org_id, *_ = org_with_traffic("acme")
        rule(org_id, "silence", window_minutes=30)
        for when in (at(8, 59), at(17, 0), at(12, 0, day=MONDAY + timedelta(days=5))):  # Saturday noon
            run_at(time_machine, when)
        assert history(org_id) == []
        with tenant(org_id):
            alerts.set_business_hours(db.session.get(Organization, org_id), {5: (11 * 60, 13 * 60)})
            db.session.commit()
        run_at(time_machine, at(12, 0, day=MONDAY + timedelta(days=5)))
        assert len(history(org_id)) == 1


def test_each_org_alerts_on_its_own_calls_and_emails_its_own_members(mail_app, time_machine):
    with mail_app.app_context():
        a, account_a, number_a = org_with_traffic("acme")
        b, *_ = org_with_traffic("globex", "Europe/London", number="+12125550112")
        rule(a, "silence", window_minutes=30)
        rule(b, "silence", window_minutes=30)
        insert_calls([call(account_a, number_a, "a1", at(9, 50))])
        run_at(time_machine, at(10))
        assert history(a) == [] and len(history(b)) == 1
        assert {to for to, _ in emails(b)} == {"org_admin@globex.test", "manager@globex.test"}
        assert emails(a) == []


def post(client, path: str, data: dict):
    from tests.helpers import csrf_token

    return client.post(path, data={**data, "csrf_token": csrf_token(client, "/admin/orgs/org-a/alerts/")})


def test_org_admins_set_rules_and_hours_in_the_console_and_managers_only_see_them(app, world):
    from tests.helpers import login
    from tests.world import USERS

    admin, manager = app.test_client(), app.test_client()
    login(admin, USERS["admin_a"][0])
    login(manager, USERS["manager_a"][0])
    rule_form = {
        "rule-kind": "service_level",
        "rule-window_minutes": "30",
        "rule-threshold": "0.85",
        "rule-enabled": "y",
    }
    assert post(manager, "/admin/orgs/org-a/alerts/rule", rule_form).status_code == 403
    assert post(admin, "/admin/orgs/org-a/alerts/rule", {**rule_form, "rule-window_minutes": "0"}).status_code == 400
    assert post(admin, "/admin/orgs/org-a/alerts/rule", rule_form).status_code == 302
    hours = {f"hours-{day}": "08:30-18:00" for day in ("monday", "tuesday", "wednesday", "thursday", "friday")}
    assert post(admin, "/admin/orgs/org-a/alerts/hours", {**hours, "hours-sunday": "18:00-08:00"}).status_code == 400
    assert post(admin, "/admin/orgs/org-a/alerts/hours", hours).status_code == 302
    page = manager.get("/admin/orgs/org-a/alerts/").get_data(as_text=True)
    assert "below 85.0 % over the last 30 minutes" in page and "08:30-18:00" in page
    with app.app_context(), tenant(world.a):
        org_a = db.session.get(Organization, world.a)
        rule = alerts.rules(org_a)["service_level"]
        assert (rule.window_minutes, rule.threshold, rule.enabled) == (30, 0.85, True)
        assert alerts.business_hours(org_a)[0] == (510, 1080)
    with app.app_context(), tenant(world.b):
        assert "service_level" not in alerts.rules(db.session.get(Organization, world.b))
