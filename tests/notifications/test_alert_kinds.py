"""The abandon-rate, missed-calls, sync-failing and webhook-silence alerts: each fires once and resolves
once across its boundary crossed back and forth (a value on the boundary changes nothing), a second
evaluation of the same minute changes and sends nothing, and the platform's own checks alert platform
admins about an org that has no rules."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import insert, select

from tests import factories
from tests.notifications.helpers import NUMBER, call, insert_calls
from tests.notifications.test_alerts import MONDAY, at, emails, history, rule, run_at
from vsync.errors import ValidationError
from vsync.extensions import db
from vsync.models import AlertEvent, AlertRule, Organization, OutboundEmail, SyncRun, WebhookEvent
from vsync.services.notifications import alerts
from vsync.tenancy import platform_bypass, tenant


def org_with_integration(slug: str) -> tuple[int, int, int, int]:
    """An org with an admin, a manager and an agent, a number and an integration:
    (org, integration, account, number)."""
    org_id = factories.make_org(slug)
    for role in ("org_admin", "manager", "agent"):
        factories.make_user(
            f"{role}@{slug}.test", org_slug=slug, role=role, extension="101" if role == "agent" else None
        )
    number_id = factories.make_number(NUMBER)
    factories.assign(slug, NUMBER, at=MONDAY - timedelta(days=30))
    integration_id = factories.make_integration(org_id)
    return org_id, integration_id, factories.account_of(integration_id), number_id


def hour_of_calls(account: int, number: int, hour: int, *, answered: int, missed: int) -> None:
    """`answered` calls answered in 5 s and `missed` ones that rang 30 s (abandons), in the hour from `hour`."""
    insert_calls(
        [call(account, number, f"a{hour}-{i}", at(hour, i), wait=5) for i in range(answered)]
        + [call(account, number, f"m{hour}-{i}", at(hour, 30 + i), status="missed") for i in range(missed)]
    )


def changes_at(time_machine, *hours: int) -> list[int]:
    """Changes of an evaluation at each hour, each run twice (as two cron processes would)."""
    counts = []
    for hour in hours:
        counts.append(run_at(time_machine, at(hour))["changes"])
        assert run_at(time_machine, at(hour))["changes"] == 0
    return counts


@pytest.mark.parametrize(
    ("kind", "values", "field"),
    [
        ("abandon_rate", {"window_minutes": 60, "threshold": -0.1}, "threshold"),
        ("abandon_rate", {"window_minutes": 60, "threshold": 1.0}, "threshold"),
        ("missed_calls", {"window_minutes": 60, "threshold": -1}, "threshold"),
        ("missed_calls", {"window_minutes": 60, "threshold": 2.5}, "threshold"),
        ("missed_calls", {"window_minutes": 0, "threshold": 3}, "window_minutes"),
        ("sync_failing", {"window_minutes": 0}, "window_minutes"),
        ("sync_failing", {"window_minutes": 120, "threshold": -1}, "threshold"),
        ("webhook_silence", {"window_minutes": -5}, "window_minutes"),
        ("webhook_silence", {"window_minutes": None}, "window_minutes"),
        ("webhook_silence", {"window_minutes": 24 * 60 + 1}, "window_minutes"),
        ("missed", {"window_minutes": 60}, "kind"),
    ],
)
def test_a_bad_rule_of_the_new_kinds_is_refused_naming_its_field_and_nothing_is_stored(app, kind, values, field):
    with app.app_context():
        org_id = factories.make_org("acme")
        with tenant(org_id):
            with pytest.raises(ValidationError) as refused:
                alerts.save_rule(db.session.get_one(Organization, org_id), kind, **values)
            assert refused.value.field == field
            db.session.rollback()
            assert db.session.scalars(select(AlertRule)).all() == []


def test_abandon_rate_fires_above_its_limit_and_resolves_only_past_the_margin(mail_app, inbox, time_machine):
    with mail_app.app_context():
        org_id, _, account, number = org_with_integration("acme")
        inbox.clear()
        rule(org_id, "abandon_rate", window_minutes=60, threshold=0.2)
        hour_of_calls(account, number, 9, answered=3, missed=1)  # 25 %
        hour_of_calls(account, number, 10, answered=9, missed=2)  # 18.2 %: below the limit, inside the margin
        hour_of_calls(account, number, 11, answered=9, missed=1)  # 10 %
        hour_of_calls(account, number, 12, answered=4, missed=1)  # 20 %: on the limit, not above it
        hour_of_calls(account, number, 13, answered=3, missed=1)  # 25 %
        assert changes_at(time_machine, 10, 11, 12, 13, 14) == [1, 0, 1, 0, 1]
        assert history(org_id) == [(at(10), at(12)), (at(14), None)]
        with tenant(org_id):
            first = db.session.scalars(select(AlertEvent).order_by(AlertEvent.id)).first()
            assert first is not None and (first.fired_value, first.resolved_value) == (0.25, 0.1)
        subjects = [subject for to, subject in emails(org_id) if to == "manager@acme.test"]
        assert subjects == [
            "Acme: ALERT: Abandon rate above its limit",
            "Acme: Resolved: Abandon rate above its limit",
            "Acme: ALERT: Abandon rate above its limit",
        ]
        assert {to for to, _ in emails(org_id)} == {"org_admin@acme.test", "manager@acme.test"}
    assert len(inbox.wait_for(6)) == 6


def test_missed_calls_fire_above_n_in_the_hour_and_a_count_of_n_changes_nothing(mail_app, time_machine):
    with mail_app.app_context():
        org_id, _, account, number = org_with_integration("acme")
        rule(org_id, "missed_calls", window_minutes=60, threshold=2)
        for hour, missed in ((9, 3), (10, 2), (11, 1), (12, 2), (13, 3)):
            hour_of_calls(account, number, hour, answered=1, missed=missed)
        assert changes_at(time_machine, 10, 11, 12, 13, 14) == [1, 0, 1, 0, 1]
        assert history(org_id) == [(at(10), at(12)), (at(14), None)]


def run(org_id: int, integration_id: int, status: str, finished: datetime) -> dict:
    return {
        "org_id": org_id,
        "integration_id": integration_id,
        "kind": "calls",
        "trigger": "scheduled",
        "status": status,
        "progress": 1.0,
        "pages": 0,
        "fetched": 0,
        "inserted": 0,
        "updated": 0,
        "skipped": 0,
        "retries": 0,
        "created_at": finished - timedelta(minutes=1),
        "finished_at": finished,
    }


def add_runs(*rows: dict) -> None:
    with platform_bypass("test setup"):
        db.session.execute(insert(SyncRun), list(rows))
        db.session.commit()


def test_sync_failing_fires_once_failing_for_the_window_and_resolves_at_a_successful_run(mail_app, time_machine):
    with mail_app.app_context():
        org_id, integration, *_ = org_with_integration("acme")
        rule(org_id, "sync_failing", window_minutes=120)
        add_runs(
            run(org_id, integration, "succeeded", at(8)),
            *(run(org_id, integration, "failed", at(9, m)) for m in (0, 30, 60)),
        )
        run_at(time_machine, at(10, 59))  # failing for 119 minutes
        assert history(org_id) == []
        assert run_at(time_machine, at(11))["changes"] == 1
        assert run_at(time_machine, at(11))["changes"] == 0
        add_runs(run(org_id, integration, "succeeded", at(11, 10)))
        assert run_at(time_machine, at(11, 15))["changes"] == 1
        add_runs(run(org_id, integration, "failed", at(11, 20)))
        run_at(time_machine, at(12))
        assert run_at(time_machine, at(13, 20))["changes"] == 1
        assert history(org_id) == [(at(11), at(11, 15)), (at(13, 20), None)]
        with tenant(org_id):
            assert db.session.scalars(select(AlertEvent.fired_value).order_by(AlertEvent.id)).all() == [120.0, 120.0]


def webhook_event(org_id: int, integration_id: int, received: datetime, status: str = "processed") -> None:
    with platform_bypass("test setup"):
        db.session.add(
            WebhookEvent(
                org_id=org_id,
                integration_id=integration_id,
                guid=f"g-{received.isoformat()}",
                event_type="IncomingCall",
                body="{}",
                status=status,
                received_at=received,
            )
        )
        db.session.commit()


def synced_call(account: int, number: int, name: str, started: datetime) -> None:
    insert_calls([{**call(account, number, name, started), "synced_at": started + timedelta(minutes=2)}])


def test_webhook_silence_fires_when_synced_calls_come_without_events_and_resolves_at_an_event(mail_app, time_machine):
    with mail_app.app_context():
        org_id, integration, account, number = org_with_integration("acme")
        rule(org_id, "webhook_silence", window_minutes=30)
        synced_call(account, number, "c1", at(9, 40))
        assert run_at(time_machine, at(10))["changes"] == 1
        assert run_at(time_machine, at(10))["changes"] == 0
        webhook_event(org_id, integration, at(10, 5))
        assert run_at(time_machine, at(10, 6))["changes"] == 1
        assert run_at(time_machine, at(10, 40))["changes"] == 0  # neither calls nor events: says nothing
        synced_call(account, number, "c2", at(10, 45))
        assert run_at(time_machine, at(10, 50))["changes"] == 1
        webhook_event(org_id, integration, at(10, 55), status="rejected")  # refused: not an event received
        assert run_at(time_machine, at(11))["changes"] == 0
        assert history(org_id) == [(at(10), at(10, 6)), (at(10, 50), None)]
        insert_calls([call(account, number, "c3", at(11, 1))])  # known from events only: not a synced call
        assert run_at(time_machine, at(11, 40))["changes"] == 0


def test_platform_admins_are_alerted_about_a_failing_sync_of_an_org_without_rules_once_per_start_and_end(
    mail_app, inbox, time_machine
):
    with mail_app.app_context():
        org_id, integration, *_ = org_with_integration("acme")
        factories.make_user("root@vsync.test", platform_admin=True)
        inbox.clear()
        add_runs(run(org_id, integration, "failed", at(9)))
        saturday_night = at(23, day=MONDAY + timedelta(days=5))  # around the clock, not in business hours
        assert (
            run_at(time_machine, at(12, 59))["platform_changes"] == 0
        )  # failing for 239 of the platform's 240 minutes
        assert run_at(time_machine, at(13))["platform_changes"] == 1
        assert run_at(time_machine, at(13))["platform_changes"] == 0
        add_runs(run(org_id, integration, "succeeded", at(13, 30)))
        assert run_at(time_machine, at(13, 31))["platform_changes"] == 1
        add_runs(run(org_id, integration, "failed", saturday_night - timedelta(hours=5)))
        assert run_at(time_machine, saturday_night)["platform_changes"] == 1
        with tenant(org_id):
            rows = db.session.scalars(select(AlertEvent).order_by(AlertEvent.id)).all()
            assert [(e.audience, e.kind, e.fired_at, e.resolved_at) for e in rows] == [
                ("platform", "sync_failing", at(13), at(13, 31)),
                ("platform", "sync_failing", saturday_night, None),
            ]
            assert history(org_id) == []  # the org's own alert history holds its rules' firings only
            sent = db.session.scalars(
                select(OutboundEmail).where(OutboundEmail.kind == "alert").order_by(OutboundEmail.id)
            ).all()
            assert [(row.to_address, row.subject) for row in sent] == [
                ("root@vsync.test", "Acme: ALERT: Sync failing"),
                ("root@vsync.test", "Acme: Resolved: Sync failing"),
                ("root@vsync.test", "Acme: ALERT: Sync failing"),
            ]
    assert [m["To"] for m in inbox.wait_for(3)] == ["root@vsync.test"] * 3
