"""A real `rq worker` process against the real Redis: the app is built once per worker, not per job."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from rq import Queue

from tests.helpers import DATABASE_URL, ENCRYPTION_KEY, REDIS_URL
from tests.jobs.probes import app_in_horse
from vsync.queue import QUEUE_NAME, redis_connection

ROOT = Path(__file__).resolve().parents[2]


def burst_worker(*options: str) -> subprocess.CompletedProcess:
    """Run `rq worker --burst` until the queue is empty; its log goes to stderr."""
    env = {
        **os.environ,
        "DATABASE_URL": DATABASE_URL,
        "REDIS_URL": REDIS_URL,
        "SECRET_KEY": "test-secret-key",
        "VSYNC_ENCRYPTION_KEYS": ENCRYPTION_KEY,
        "VSYNC_ENV": "test",
        "VSYNC_LOG_LEVEL": "INFO",
    }
    rq = Path(sys.executable).parent / "rq"
    return subprocess.run(
        [str(rq), "worker", "--burst", "--url", REDIS_URL, *options, QUEUE_NAME],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_app_worker_builds_the_app_once_and_its_work_horses_inherit_it(app):
    with app.app_context():
        queue = Queue(QUEUE_NAME, connection=redis_connection())
        jobs = [queue.enqueue(app_in_horse) for _ in range(2)]
        worker = burst_worker("-w", "vsync.jobs.worker.AppWorker")
        assert worker.returncode == 0, worker.stderr
        results = [job.latest_result().return_value for job in jobs]
    builds = re.findall(r"worker (\d+): app built for jobs", worker.stderr)
    assert len(builds) == 1, worker.stderr
    horses = {result["pid"] for result in results}
    assert len(horses) == 2 and int(builds[0]) not in horses  # built in the worker, not in a horse
    assert {result["parent"] for result in results} == {int(builds[0])}
    assert len({result["app"] for result in results}) == 1


def test_a_plain_worker_builds_the_app_in_every_work_horse(app):
    with app.app_context():
        queue = Queue(QUEUE_NAME, connection=redis_connection())
        jobs = [queue.enqueue(app_in_horse) for _ in range(2)]
        worker = burst_worker()
        assert worker.returncode == 0, worker.stderr
        horses = {job.latest_result().return_value["pid"] for job in jobs}
    assert {int(pid) for pid in re.findall(r"worker (\d+): app built for jobs", worker.stderr)} == horses
