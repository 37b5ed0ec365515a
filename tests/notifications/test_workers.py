"""Real `rq cron` and `rq worker` processes against the real Redis and the loopback SMTP server: two
cron processes and two workers send each digest once, and a worker killed mid-send never sends twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import psutil
from rq import Queue
from sqlalchemy import select

from tests import factories
from tests.helpers import DATABASE_URL, ENCRYPTION_KEY, REDIS_URL
from vsync.extensions import db
from vsync.jobs.notifications import sweep_outbox
from vsync.models import Membership, Organization, OutboundEmail
from vsync.models.types import utcnow
from vsync.queue import QUEUE_NAME, redis_connection
from vsync.services.notifications import mail, preferences
from vsync.tenancy import tenant

ROOT = Path(__file__).resolve().parents[2]
RQ = str(Path(sys.executable).parent / "rq")


def env(smtp_port: int, **extra) -> dict:
    return {
        **os.environ,
        "DATABASE_URL": DATABASE_URL,
        "REDIS_URL": REDIS_URL,
        "SECRET_KEY": "test-secret-key",
        "VSYNC_ENCRYPTION_KEYS": ENCRYPTION_KEY,
        "VSYNC_ENV": "test",
        "VSYNC_PASSWORD_HASH": "pbkdf2:sha256:1",
        "VSYNC_SMTP_HOST": "127.0.0.1",
        "VSYNC_SMTP_SECURITY": "none",
        "VSYNC_SMTP_PORT": str(smtp_port),
        "VSYNC_MAIL_RETRY_INTERVALS": "0",
        **extra,
    }


def start(args: list[str], smtp_port: int, **extra) -> subprocess.Popen:
    return subprocess.Popen(
        [RQ, *args, "--url", REDIS_URL],
        cwd=ROOT,
        env=env(smtp_port, **extra),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def worker(smtp_port: int, **extra) -> subprocess.Popen:
    return start(["worker", "--burst", "-w", "vsync.jobs.worker.AppWorker", QUEUE_NAME], smtp_port, **extra)


def wait_until(condition, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def queued_names() -> list[str]:
    return [job.func_name for job in Queue(QUEUE_NAME, connection=redis_connection()).get_jobs()]


def test_two_cron_processes_and_two_workers_send_each_digest_once(queued_mail_app, smtp_server, inbox):
    with queued_mail_app.app_context():
        org_id = factories.make_org("acme", "Pacific/Kiritimati")
        people = [
            factories.make_user(f"p{i}@acme.test", org_slug="acme", role=role)
            for i, role in enumerate(("org_admin", "manager", "agent", "manager"))
        ]
        with tenant(org_id):
            for membership in db.session.scalars(select(Membership)):
                preferences.set_preferences(membership, {"digest": "daily", "digest_hour": "0"}, actor="test")
            db.session.commit()
        crons = [start(["cron", "vsync.jobs.cron"], smtp_server.port) for _ in range(2)]
        try:
            wait_until(lambda: queued_names().count("vsync.jobs.notifications.send_due_digests") == 2)
        finally:
            for cron in crons:
                cron.send_signal(signal.SIGTERM)
                cron.wait(timeout=30)
        workers = [worker(smtp_server.port) for _ in range(2)]
        for process in workers:
            assert process.wait(timeout=180) == 0, process.stderr.read()
        with tenant(org_id):
            rows = db.session.scalars(select(OutboundEmail).where(OutboundEmail.kind == "digest")).all()
            assert len(rows) == len(people)
            assert {(row.status, row.attempts) for row in rows} == {("sent", 1)}
            for row in rows:  # a send job given again, twice, finds its message sent
                mail.dispatch(org_id, row.id)
                mail.dispatch(org_id, row.id)
        assert worker(smtp_server.port).wait(timeout=120) == 0
    time.sleep(0.5)
    digests = [m["To"] for m in inbox.messages if "digest" in m["Subject"]]
    assert sorted(digests) == sorted(f"p{i}@acme.test" for i in range(4))
    assert len(inbox.messages) == 2 * len(people)  # and each invitation once


def test_a_worker_killed_mid_send_leaves_the_message_unknown_never_sent_twice(
    queued_mail_app, smtp_server, inbox, time_machine
):
    with queued_mail_app.app_context():
        org_id = factories.make_org("acme")
        inbox.stall, inbox.stall_seconds = 1, 30
        with tenant(org_id):
            email_id = mail.send_test_email(db.session.get(Organization, org_id), "ops@example.com").id
            db.session.commit()  # dispatched to RQ
        doomed = worker(smtp_server.port, VSYNC_SMTP_TIMEOUT="60")

        def status() -> str:
            with tenant(org_id):
                db.session.expire_all()
                return db.session.scalar(select(OutboundEmail.status).where(OutboundEmail.id == email_id))

        wait_until(lambda: status() == "sending")
        # The work horse in the middle of the send (RQ gives it a session of its own), then its worker.
        for process in [*psutil.Process(doomed.pid).children(recursive=True), psutil.Process(doomed.pid)]:
            process.kill()
        doomed.wait(timeout=30)
        time_machine.move_to(utcnow() + mail.STALE_AFTER + timedelta(minutes=1))
        assert sweep_outbox() == {"requeued": 0, "lost": 1}
        assert status() == "unknown"
        with tenant(org_id):
            mail.dispatch(org_id, email_id)
        assert worker(smtp_server.port).wait(timeout=120) == 0
        assert status() == "unknown"
    assert inbox.messages == []
