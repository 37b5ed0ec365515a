"""Sync failure emails: one per failure streak of an integration's kind, to the org admins and the platform
admins whose preference is on, however often the run is retried, however many workers handle it."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests import factories
from tests.notifications.conftest import smtp_config
from tests.notifications.test_workers import worker
from vsync import create_app
from vsync.extensions import db
from vsync.models import Integration, Membership, OutboundEmail, SyncRun
from vsync.services.notifications import preferences, sync_failures
from vsync.services.sync import start_sync
from vsync.tenancy import tenant


def _people(org_slug: str) -> None:
    """An org admin and a manager of the org (the manager's default is off), a platform admin who hears
    of every org's failures, and one who turned it off."""
    factories.make_user("admin@acme.test", org_slug=org_slug, role="org_admin")
    factories.make_user("manager@acme.test", org_slug=org_slug, role="manager")
    factories.make_user("staff@platform.test", platform_admin=True)
    quiet = factories.make_user("quiet@platform.test", platform_admin=True)
    preferences.set_platform_preferences(quiet, {"sync_failures": "off"})
    db.session.commit()


def _failure_emails(inbox, count: int) -> list[tuple[str, str]]:
    inbox.wait_for(count, timeout=5)
    return sorted((m["To"], m["Subject"]) for m in inbox.messages if "sync is failing" in m["Subject"])


def _run(org_id: int, integration_id: int, status: str, kind: str = "calls") -> SyncRun:
    run = SyncRun(org_id=org_id, integration_id=integration_id, kind=kind, status=status, error=f"{kind} {status}")
    db.session.add(run)
    db.session.flush()
    return run


def test_one_email_per_failure_streak_and_kind_the_next_after_a_success_starts_a_new_one(mail_app, inbox):
    with mail_app.app_context():
        org_id = factories.make_org("acme")
        integration_id = factories.make_integration(org_id)
        _people("acme")
        inbox.clear()
        told = ["admin@acme.test", "staff@platform.test"]
        with tenant(org_id):
            first = _run(org_id, integration_id, "failed")
            assert sync_failures.notify_failed_run(first) == 2
            assert sync_failures.notify_failed_run(first) == 0
            print("B", dict(db.session.info))  # decided again (a second worker): nothing
            assert sync_failures.notify_failed_run(_run(org_id, integration_id, "failed")) == 0  # same streak
            db.session.commit()
            assert _failure_emails(inbox, 2) == [(to, "Acme: the calls sync is failing") for to in told]
            assert sync_failures.notify_failed_run(_run(org_id, integration_id, "failed", "sms")) == 2  # its own
            _run(org_id, integration_id, "succeeded")
            assert sync_failures.notify_failed_run(_run(org_id, integration_id, "failed")) == 2  # a new streak
            db.session.commit()
            assert len(_failure_emails(inbox, 6)) == 6
            keys = db.session.scalars(select(OutboundEmail.dedupe_key).where(OutboundEmail.kind == "sync_failure"))
            assert sorted(key.rsplit(":", 1)[0] for key in keys) == sorted(
                [f"sync_failure:{integration_id}:calls:{first.id}"] * 2
                + [f"sync_failure:{integration_id}:sms:{first.id + 2}"] * 2
                + [f"sync_failure:{integration_id}:calls:{first.id + 4}"] * 2
            )
            admin = db.session.scalars(select(Membership).where(Membership.role == "org_admin")).one()
            preferences.set_preferences(admin, {"sync_failures": "off"}, actor="test")
            _run(org_id, integration_id, "succeeded")
            assert sync_failures.notify_failed_run(_run(org_id, integration_id, "failed")) == 1  # staff only
            db.session.commit()


@pytest.fixture(scope="module")
def retrying_app(app, smtp_server):
    """Jobs through the real Redis queue, sync attempts retried at once, email to the loopback SMTP server."""
    return create_app(smtp_config(smtp_server, VSYNC_SYNC_RETRY_INTERVALS=[0, 0]))


def test_a_run_retried_by_two_workers_emails_each_person_once(retrying_app, smtp_server, inbox):
    fast = {
        "VSYNC_SYNC_RETRY_INTERVALS": "0,0",
        "VSYNC_MIGHTYCALL_MAX_RETRIES": "0",
        "VSYNC_MIGHTYCALL_TIMEOUT": "1,1",
        "VSYNC_MIGHTYCALL_BACKOFF": "0.01,0.05",
    }
    with retrying_app.app_context():
        org_id = factories.make_org("acme")
        integration_id = factories.make_integration(org_id)  # MightyCall at a closed port: every attempt fails
        _people("acme")
        with tenant(org_id):
            run, _ = start_sync(db.session.get_one(Integration, integration_id), "numbers")
            run_id = run.id
            db.session.commit()
        workers = [worker(smtp_server.port, **fast) for _ in range(2)]
        for process in workers:
            assert process.wait(timeout=120) == 0, process.stderr.read()
        with tenant(org_id):
            run = db.session.get_one(SyncRun, run_id, populate_existing=True)
            assert (run.status, run.retries) == ("failed", 2), run.error
            sent = db.session.scalars(select(OutboundEmail).where(OutboundEmail.kind == "sync_failure")).all()
            assert sorted((row.to_address, row.status, row.attempts) for row in sent) == [
                ("admin@acme.test", "sent", 1),
                ("staff@platform.test", "sent", 1),
            ]
            sync_failures.notify_failed_run(run)  # the failure told again (a job run twice): nothing new
            db.session.commit()
    assert _failure_emails(inbox, 2) == [
        ("admin@acme.test", "Acme: the numbers sync is failing"),
        ("staff@platform.test", "Acme: the numbers sync is failing"),
    ]
