"""Processing through the real Redis queue: acknowledged before processing, retries, a worker killed
mid-event."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest
from rq import SimpleWorker
from sqlalchemy import create_engine, text, update

from tests.helpers import DATABASE_URL, ENCRYPTION_KEY, REDIS_URL, app_config
from tests.webhooks.helpers import FAST, calls_state, post, stored_events
from vsync import ROOT, create_app
from vsync.extensions import db
from vsync.jobs import queue
from vsync.jobs.webhooks import replay_events
from vsync.models import WebhookEvent
from vsync.tenancy import tenant


@pytest.fixture(scope="session")
def queued_app(app):
    return create_app(app_config(**FAST))


def work(app) -> None:
    with app.app_context():
        q = queue()
        SimpleWorker([q], connection=q.connection).work(burst=True)


def test_events_are_acknowledged_stored_and_queued_then_processed_by_a_worker(queued_app, acme):
    client = queued_app.test_client()
    events = acme.events("answered")
    assert post(client, acme, events).get_json() == {"received": 4, "duplicates": 0}
    assert {r.status for r in stored_events(queued_app)} == {"received"}
    work(queued_app)
    assert {(r.status, r.attempts) for r in stored_events(queued_app)} == {("processed", 1)}
    assert len(calls_state(queued_app)["events"]) == 4


def test_a_failing_event_is_retried_then_marked_failed_with_its_error(queued_app, acme):
    client = queued_app.test_client()
    post(client, acme, acme.events("answered")[0])
    with queued_app.app_context(), tenant(acme.org_id):
        db.session.execute(update(WebhookEvent).values(body="{broken"))
        db.session.commit()
    work(queued_app)
    [row] = stored_events(queued_app)
    assert row.status == "failed" and row.attempts == 1 + len(FAST["VSYNC_WEBHOOK_RETRY_INTERVALS"])
    assert row.error.startswith("Attempt 3 failed: JSONDecodeError")


def _wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _rq_worker() -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DATABASE_URL": DATABASE_URL, "REDIS_URL": REDIS_URL,
           "SECRET_KEY": "test-secret-key", "VSYNC_ENCRYPTION_KEYS": ENCRYPTION_KEY, "VSYNC_ENV": "test",
           "VSYNC_WEBHOOK_RETRY_INTERVALS": "0,0"}
    return subprocess.Popen([sys.executable, "-m", "rq.cli", "worker", "--url", REDIS_URL, "--burst", "vsync"],
                            cwd=ROOT, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.mark.timeout(120)
def test_a_worker_killed_mid_event_loses_nothing_and_a_replay_applies_each_event_once(queued_app, acme):
    client = queued_app.test_client()
    events = acme.events("answered")
    post(client, acme, events)
    call_key = f"vsync-call:{acme.integration_id}:{events[0]['Body']['Id']}"
    holder = create_engine(DATABASE_URL).connect()
    worker = None
    try:
        # Hold the call's lock so the worker's first event blocks halfway through its transaction.
        holder.execute(text("SELECT pg_advisory_lock(hashtextextended(:k, 0))"), {"k": call_key})
        holder.commit()
        worker = _rq_worker()
        _wait_for(lambda: holder.execute(text(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")).scalar() > 0,
            60, "the worker to be mid-event")
        for process in [*psutil.Process(worker.pid).children(recursive=True), psutil.Process(worker.pid)]:
            process.kill()
        worker.wait(10)
    finally:
        if worker is not None and worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
        holder.execute(text("SELECT pg_advisory_unlock_all()"))
        holder.close()
    assert {(r.status, r.attempts) for r in stored_events(queued_app)} == {("received", 0)}
    assert calls_state(queued_app) == {"calls": {}, "events": []}

    with queued_app.app_context(), tenant(acme.org_id):
        assert replay_events(acme.org_id, failed_only=True) == 4
    worker = _rq_worker()
    assert worker.wait(60) == 0
    assert {(r.status, r.attempts) for r in stored_events(queued_app)} == {("processed", 1)}
    state = calls_state(queued_app)
    assert len(state["calls"]) == 1 and len(state["events"]) == 4
    assert sorted(e[1] for e in state["events"]) == sorted(e["Guid"] for e in events)


def test_replaying_processed_events_changes_nothing(queued_app, acme):
    client = queued_app.test_client()
    post(client, acme, acme.events("answered") + acme.events("missed", seed=2))
    work(queued_app)
    before = calls_state(queued_app)
    with queued_app.app_context(), tenant(acme.org_id):
        assert replay_events(acme.org_id) == 8
        assert replay_events(acme.org_id, failed_only=True) == 8  # the first replay is still queued
    work(queued_app)
    assert calls_state(queued_app) == before
    assert {r.status for r in stored_events(queued_app)} == {"processed"}
    assert json.loads(stored_events(queued_app)[0].body)["EventType"] == "IncomingCall"
