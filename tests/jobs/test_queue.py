"""Sync through the real Redis queue: RQ workers, retries, a worker killed mid-run, scheduling."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

import psutil
import pytest
from rq import SimpleWorker
from sqlalchemy import func, select

from tests.helpers import DATABASE_URL, ENCRYPTION_KEY, REDIS_URL, app_config, kept_log_records
from tests.jobs.helpers import FAST, W0, assert_matches_truth, connect, get_run, serve, sync
from vsync import ROOT, create_app
from vsync.extensions import db
from vsync.jobs.schedule import schedule_due_syncs
from vsync.models import Integration, SyncRun
from vsync.queue import rq_queue
from vsync.tenancy import platform_bypass, tenant


def work(app) -> None:
    """Drain the queue in this process with a real RQ worker (no fork), as `rq worker --burst` would."""
    with app.app_context():
        q = rq_queue()
        SimpleWorker([q], connection=q.connection).work(burst=True)


def test_queued_sync_runs_on_an_rq_worker_and_converges(queued_app):
    with serve() as sim_server:
        org_id, integration_id = connect(queued_app, "acme", sim_server)
        run = sync(queued_app, org_id, integration_id)
        assert run.status == "queued" and run.job_id == f"vsync-sync-{run.id}"
        work(queued_app)
        done = get_run(queued_app, run.id)
        assert done.status == "succeeded" and done.started_at and done.finished_at
        assert_matches_truth(queued_app, sim_server, integration_id)


def test_rq_retries_a_transient_failure_and_records_each_attempt(app):
    flaky = create_app(app_config(**{**FAST, "VSYNC_MIGHTYCALL_MAX_RETRIES": 0}))
    with serve() as sim_server:
        org_id, integration_id = connect(flaky, "acme", sim_server)
        sim_server.simulator.faults.add("calls", "server_error", times=2, status=503)
        run = sync(flaky, org_id, integration_id)
        work(flaky)
        done = get_run(flaky, run.id)
        assert done.status == "succeeded" and done.retries == 2 and done.error is None
        assert_matches_truth(flaky, sim_server, integration_id)


def test_every_log_record_of_a_job_and_its_failure_callback_carries_the_job_id(app):
    with kept_log_records() as records:
        flaky = create_app(app_config(**{**FAST, "VSYNC_MIGHTYCALL_MAX_RETRIES": 0}))  # its log context joins
        with serve() as sim_server:
            org_id, integration_id = connect(flaky, "acme", sim_server)
            sim_server.simulator.faults.add("calls", "server_error", times=1, status=503)
            run = sync(flaky, org_id, integration_id)
            work(flaky)
    logged = [
        (r.getMessage(), r.context) for r in records if r.name in ("vsync.jobs.sync", "vsync.services.sync.engine")
    ]
    assert {context for _, context in logged} == {f"job {run.job_id}"}, logged
    messages = [message for message, _ in logged]
    assert any("Attempt 1 failed, retrying" in m for m in messages)  # logged by RQ's failure callback
    assert any(f"sync run {run.id} succeeded" in m for m in messages)
    assert not any("job " in m for m in messages)  # the id is the context's, never written by hand


def test_rq_gives_up_after_its_retries_and_the_run_says_why(app):
    broken = create_app(app_config(**{**FAST, "VSYNC_MIGHTYCALL_MAX_RETRIES": 0}))
    with serve() as sim_server:
        org_id, integration_id = connect(broken, "acme", sim_server)
        sim_server.simulator.faults.add("calls", "server_error", times=None, status=502, body="html")
        run = sync(broken, org_id, integration_id)
        work(broken)
        done = get_run(broken, run.id)
        assert done.status == "failed" and done.retries == len(FAST["VSYNC_SYNC_RETRY_INTERVALS"])
        assert "502" in done.error and done.finished_at


def test_the_same_job_delivered_twice_does_not_run_the_sync_twice(queued_app):
    from vsync.jobs.sync import run_sync_job

    with serve() as sim_server:
        org_id, integration_id = connect(queued_app, "acme", sim_server)
        run = sync(queued_app, org_id, integration_id)
        work(queued_app)
        requests_after_first = sim_server.simulator.requests["calls"]
        with queued_app.app_context():
            assert run_sync_job(org_id, run.id) == "succeeded"
        assert sim_server.simulator.requests["calls"] == requests_after_first


def _worker(env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "rq.cli", "worker", "--url", REDIS_URL, "--burst", "vsync"],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.timeout(120)
def test_worker_killed_mid_run_leaves_a_failed_run_and_the_next_run_converges(app):
    stale_seconds = 3
    killing = create_app(app_config(**FAST, VSYNC_SYNC_STALE_SECONDS=stale_seconds))
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": DATABASE_URL,
        "REDIS_URL": REDIS_URL,
        "SECRET_KEY": "test-secret-key",
        "VSYNC_ENCRYPTION_KEYS": ENCRYPTION_KEY,
        "VSYNC_ENV": "test",
        "VSYNC_SYNC_PAGE_SIZE": "100",
        "VSYNC_MIGHTYCALL_TIMEOUT": "2,2",
    }
    with serve(calls_per_day=300) as sim_server:
        org_id, integration_id = connect(killing, "acme", sim_server)
        sim_server.simulator.faults.add("calls", "slow", times=None, seconds=0.3)
        first = sync(killing, org_id, integration_id, until=W0 + timedelta(days=4))
        worker = _worker(env)
        try:
            _wait_for(lambda: get_run(killing, first.id).pages >= 3, 60, "three pages")
            for process in [*psutil.Process(worker.pid).children(recursive=True), psutil.Process(worker.pid)]:
                process.kill()  # the work horse (in a session of its own) and the worker, mid-page
            worker.wait(10)
        finally:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGKILL)
        dead = get_run(killing, first.id)
        assert dead.status == "running" and dead.pages >= 3

        sim_server.simulator.faults.clear()
        time.sleep(stale_seconds + 0.5)
        second = sync(killing, org_id, integration_id, until=W0 + timedelta(days=4))
        assert second.id != first.id
        reaped = get_run(killing, first.id)
        assert reaped.status == "failed" and "stopped responding" in reaped.error

        finisher = _worker(env)
        assert finisher.wait(60) == 0
        assert get_run(killing, second.id).status == "succeeded"
        assert_matches_truth(killing, sim_server, integration_id, W0, W0 + timedelta(days=4))


def test_scheduler_starts_due_syncs_once_and_skips_disabled_integrations(queued_app):
    with serve() as sim_server:
        org_id, integration_id = connect(queued_app, "acme", sim_server)
        _, disabled_id = connect(queued_app, "globex", sim_server)
        with queued_app.app_context(), platform_bypass("test"):
            db.session.get(Integration, disabled_id).status = "disabled"
            db.session.get(Integration, integration_id).sync_schedule = {"sms": 0}
            db.session.commit()
        with queued_app.app_context():
            assert schedule_due_syncs() == {"started": 3, "joined": 0, "reaped": 0}
            assert schedule_due_syncs() == {"started": 0, "joined": 0, "reaped": 0}
        with queued_app.app_context(), platform_bypass("test"):
            runs = db.session.execute(select(SyncRun.integration_id, SyncRun.kind, SyncRun.trigger)).all()
        assert sorted(runs) == [(integration_id, k, "scheduled") for k in ("agents", "calls", "numbers")]
        work(queued_app)
        with queued_app.app_context(), tenant(org_id):
            succeeded = select(func.count()).select_from(SyncRun).where(SyncRun.status == "succeeded")
            assert db.session.scalar(succeeded) == 3


def test_rq_cron_config_registers_the_sync_fan_out_and_the_stalled_webhook_sweep_every_minute(queued_app):
    from rq.cron import CronScheduler

    from vsync.jobs.billing import make_due_invoices
    from vsync.jobs.webhooks import wake_stalled

    with queued_app.app_context():
        scheduler = CronScheduler(connection=rq_queue().connection)
        scheduler.load_config_from_file("vsync.jobs.cron")
    jobs = {
        job.func: job
        for job in scheduler.get_jobs()
        if job.func in (schedule_due_syncs, wake_stalled, make_due_invoices)
    }
    assert set(jobs) == {schedule_due_syncs, wake_stalled, make_due_invoices}
    assert all(jobs[f].interval == 60 and jobs[f].queue_name == "vsync" for f in (schedule_due_syncs, wake_stalled))
    assert jobs[make_due_invoices].interval == 3600 and jobs[make_due_invoices].queue_name == "vsync"
