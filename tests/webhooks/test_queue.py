"""Processing through the real Redis queue: acknowledged before processing, one drain for a burst,
drains side by side, a call another transaction holds, retries now and later, the sweep of stalled
events, a worker killed mid-event."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta

import psutil
import pytest
from rq import SimpleWorker
from rq.registry import ScheduledJobRegistry
from sqlalchemy import create_engine, text, update

from tests.helpers import DATABASE_URL, ENCRYPTION_KEY, REDIS_URL, app_config
from tests.webhooks.helpers import FAST, calls_state, post, stored_events
from vsync import ROOT, create_app
from vsync.extensions import db
from vsync.jobs.webhooks import process_received_events, wake_stalled
from vsync.models import WebhookEvent
from vsync.models.types import utcnow
from vsync.queue import rq_queue
from vsync.services.webhooks import process as webhook_processing
from vsync.services.webhooks import replay_events
from vsync.tenancy import platform_bypass, tenant


@pytest.fixture(scope="session")
def queued_app(app):
    return create_app(app_config(**FAST))


@pytest.fixture(scope="session")
def patient_app(app):
    """Retries an event once, half a minute after its first attempt failed."""
    return create_app(app_config(VSYNC_WEBHOOK_RETRY_INTERVALS=[30]))


def work(app) -> None:
    with app.app_context():
        q = rq_queue()
        SimpleWorker([q], connection=q.connection).work(burst=True)


def queued_jobs(app) -> int:
    with app.app_context():
        return rq_queue().count


def break_bodies(app, org_id: int) -> None:
    with app.app_context(), tenant(org_id):
        db.session.execute(update(WebhookEvent).values(body="{broken"))
        db.session.commit()


def test_events_are_acknowledged_stored_and_queued_then_processed_by_a_worker(queued_app, acme):
    client = queued_app.test_client()
    events = acme.events("answered")
    assert post(client, acme, events).get_json() == {"received": 4, "duplicates": 0}
    assert {r.status for r in stored_events(queued_app)} == {"received"}
    work(queued_app)
    assert {(r.status, r.attempts) for r in stored_events(queued_app)} == {("processed", 1)}
    assert len(calls_state(queued_app)["events"]) == 4


def test_a_burst_of_deliveries_queues_one_drain_that_applies_them_all(queued_app, acme):
    client = queued_app.test_client()
    events = [e for seed in (1, 2, 3) for e in acme.events("answered", seed=seed)]
    for event in events:
        assert post(client, acme, event).get_json() == {"received": 1, "duplicates": 0}
    assert queued_jobs(queued_app) == 1
    work(queued_app)
    assert [(r.status, r.attempts) for r in stored_events(queued_app)] == [("processed", 1)] * len(events)
    assert len(calls_state(queued_app)["calls"]) == 3


def test_a_delivery_after_a_drain_started_queues_the_next_one(queued_app, acme):
    client = queued_app.test_client()
    post(client, acme, acme.events("answered", seed=1))
    work(queued_app)
    post(client, acme, acme.events("answered", seed=2))
    assert queued_jobs(queued_app) == 1
    work(queued_app)
    assert {r.status for r in stored_events(queued_app)} == {"processed"}


def test_a_drain_that_meets_a_backlog_wakes_a_second_drain_to_share_it(queued_app, acme, monkeypatch):
    monkeypatch.setattr(webhook_processing, "BATCH", 2)
    client = queued_app.test_client()
    post(client, acme, acme.events("answered", seed=1) + acme.events("answered", seed=2))
    work(queued_app)  # the first drain, which queues a second at its first full batch
    assert [(r.status, r.attempts) for r in stored_events(queued_app)] == [("processed", 1)] * 8
    with queued_app.app_context():
        assert rq_queue().count == 0 and len(rq_queue().finished_job_registry) == 2


def test_a_drain_past_its_time_hands_the_rest_to_a_successor(queued_app, acme, monkeypatch):
    monkeypatch.setattr(webhook_processing, "BATCH", 2)
    monkeypatch.setattr(webhook_processing, "DRAIN_FOR", -1)  # every drain is out of time after one batch
    client = queued_app.test_client()
    post(client, acme, acme.events("answered", seed=1) + acme.events("answered", seed=2))
    work(queued_app)
    assert [(r.status, r.attempts) for r in stored_events(queued_app)] == [("processed", 1)] * 8
    with queued_app.app_context():
        assert len(rq_queue().finished_job_registry) >= 4


def test_two_drains_at_once_apply_each_event_exactly_once(queued_app, acme):
    client = queued_app.test_client()
    events = [e for seed in range(1, 7) for e in acme.events("answered", seed=seed)]
    post(client, acme, events)
    start = threading.Barrier(2)

    def drain():
        start.wait()
        with queued_app.app_context():
            process_received_events(acme.org_id)

    drains = [threading.Thread(target=drain) for _ in range(2)]
    for thread in drains:
        thread.start()
    for thread in drains:
        thread.join(60)
    assert [(r.status, r.attempts) for r in stored_events(queued_app)] == [("processed", 1)] * len(events)
    state = calls_state(queued_app)
    assert len(state["calls"]) == 6 and len(state["events"]) == len(events)


def test_a_failing_event_is_retried_then_marked_failed_with_its_error(queued_app, acme):
    client = queued_app.test_client()
    post(client, acme, acme.events("answered")[0])
    break_bodies(queued_app, acme.org_id)
    work(queued_app)
    [row] = stored_events(queued_app)
    assert row.status == "failed" and row.attempts == 1 + len(FAST["VSYNC_WEBHOOK_RETRY_INTERVALS"])
    assert row.error.startswith("Attempt 3 failed: JSONDecodeError") and row.retry_at is None


def test_a_failing_event_waits_for_its_retry_and_a_drain_is_scheduled_for_then(patient_app, acme):
    client = patient_app.test_client()
    first, second = acme.events("answered")[:2]
    post(client, acme, first)
    break_bodies(patient_app, acme.org_id)
    post(client, acme, second)
    work(patient_app)
    broken, applied = stored_events(patient_app)
    assert (applied.status, applied.attempts) == ("processed", 1)
    assert (broken.status, broken.attempts) == ("received", 1)
    assert broken.error.startswith("Attempt 1 failed, retrying: JSONDecodeError")
    assert timedelta(seconds=25) < broken.retry_at - utcnow() <= timedelta(seconds=30)
    with patient_app.app_context():
        scheduled = ScheduledJobRegistry(queue=rq_queue()).get_job_ids()
        assert scheduled == [f"vsync-webhooks-{acme.org_id}-at-{math.ceil(broken.retry_at.timestamp())}"]
        process_received_events(acme.org_id)  # early: the event is passed by
    assert [(r.status, r.attempts) for r in stored_events(patient_app)] == [("received", 1), ("processed", 1)]

    with patient_app.app_context(), tenant(acme.org_id):
        db.session.execute(update(WebhookEvent).where(WebhookEvent.id == broken.id).values(retry_at=utcnow()))
        db.session.commit()
        process_received_events(acme.org_id)
    [broken, _] = stored_events(patient_app)
    assert (broken.status, broken.attempts, broken.retry_at) == ("failed", 2, None)
    assert broken.error.startswith("Attempt 2 failed: JSONDecodeError")


def test_events_stored_while_redis_was_down_are_acknowledged_then_applied_by_the_sweep(queued_app, acme, globex):
    offline = create_app(app_config(REDIS_URL="redis://127.0.0.1:1/0", **FAST)).test_client()
    assert post(offline, acme, acme.events("answered")).get_json() == {"received": 4, "duplicates": 0}
    assert post(queued_app.test_client(), globex, globex.events("missed")).status_code == 200
    assert queued_jobs(queued_app) == 1  # globex's drain
    with queued_app.app_context():
        assert wake_stalled() == 0  # a minute's grace: fresh events are the deliveries' own business
    with queued_app.app_context(), platform_bypass("test"):
        db.session.execute(update(WebhookEvent).values(received_at=utcnow() - timedelta(minutes=2)))
        db.session.commit()
    with queued_app.app_context():
        assert wake_stalled() == 2
    assert queued_jobs(queued_app) == 2  # acme's drain joins globex's, which was queued already
    work(queued_app)
    assert {(r.status, r.attempts) for r in stored_events(queued_app)} == {("processed", 1)}
    with queued_app.app_context():
        assert wake_stalled() == 0


def _wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _rq_worker() -> subprocess.Popen:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": DATABASE_URL,
        "REDIS_URL": REDIS_URL,
        "SECRET_KEY": "test-secret-key",
        "VSYNC_ENCRYPTION_KEYS": ENCRYPTION_KEY,
        "VSYNC_ENV": "test",
        "VSYNC_WEBHOOK_RETRY_INTERVALS": "0,0",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "rq.cli", "worker", "--url", REDIS_URL, "--burst", "vsync"],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@pytest.mark.timeout(120)
def test_a_worker_killed_mid_event_loses_nothing_and_a_replay_applies_each_event_once(queued_app, acme):
    client = queued_app.test_client()
    events = acme.events("answered")
    post(client, acme, events)
    call_key = f"vsync-call:{acme.account_id}:{events[0]['Body']['Id']}"
    holder = create_engine(DATABASE_URL).connect()
    worker = None
    try:
        # Hold the call's lock so the worker's first event blocks halfway through its transaction.
        holder.execute(text("SELECT pg_advisory_lock(hashtextextended(:k, 0))"), {"k": call_key})
        holder.commit()
        worker = _rq_worker()
        _wait_for(
            lambda: (
                holder.execute(
                    text(
                        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
                        "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                    )
                ).scalar()
                > 0
            ),
            60,
            "the worker to be mid-event",
        )
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


@pytest.mark.timeout(120)
def test_a_drain_applies_other_calls_while_one_is_held_then_waits_for_it(queued_app, acme):
    held = acme.events("answered", seed=1)
    others = acme.events("answered", seed=2) + acme.events("missed", seed=3)
    post(queued_app.test_client(), acme, [e for pair in zip(held, others, strict=False) for e in pair] + others[4:])
    call_key = f"vsync-call:{acme.account_id}:{held[0]['Body']['Id']}"
    held_guids = {e["Guid"] for e in held}
    holder = create_engine(DATABASE_URL).connect()
    try:
        holder.execute(text("SELECT pg_advisory_lock(hashtextextended(:k, 0))"), {"k": call_key})
        holder.commit()

        def drain():
            with queued_app.app_context():
                process_received_events(acme.org_id)

        thread = threading.Thread(target=drain)
        thread.start()
        _wait_for(
            lambda: all(r.status == "processed" for r in stored_events(queued_app) if r.guid not in held_guids),
            60,
            "the other calls' events to be applied",
        )
        assert {r.status for r in stored_events(queued_app) if r.guid in held_guids} == {"received"}
        assert thread.is_alive()  # waiting for the held call
    finally:
        holder.execute(text("SELECT pg_advisory_unlock_all()"))
        holder.close()
    thread.join(60)
    assert [(r.status, r.attempts) for r in stored_events(queued_app)] == [("processed", 1)] * 12
    state = calls_state(queued_app)
    assert len(state["calls"]) == 3 and len(state["events"]) == 12


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
