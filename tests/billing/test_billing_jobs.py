"""The scheduled invoice job: two cron processes running it at once make one invoice per org and
month, numbered without gaps; a month not yet over in an org's zone is not invoiced."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime

import time_machine
from sqlalchemy import select

from tests.billing.conftest import BORN
from tests.factories import make_org
from vsync.extensions import db
from vsync.models import Invoice
from vsync.services.billing import plans
from vsync.services.billing.usage import last_complete_month
from vsync.tenancy import platform_bypass

RUN_CRON = """
import sys
from tests.helpers import app_config
from vsync import create_app
from vsync.jobs.billing import make_due_invoices
app = create_app(app_config(REDIS_URL=None))
with app.app_context():
    make_due_invoices(sys.argv[1])
"""


def _more_billed_orgs(app, billed, count: int) -> None:
    with app.app_context():
        for n in range(count):
            with time_machine.travel(BORN, tick=False):
                org_id = make_org(f"more-{n}")
            with platform_bypass("test setup"):
                plans.subscribe(org_id, billed.basic_id, BORN.date())
                db.session.commit()


def test_two_cron_processes_make_one_invoice_per_org_and_no_gap(app, billed):
    _more_billed_orgs(app, billed, 4)
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", RUN_CRON, "2026-12-01T06:00:00Z"],
            env=os.environ.copy(),
            cwd=os.getcwd(),
            stderr=subprocess.PIPE,
        )
        for _ in range(2)
    ]
    for run in runs:
        _, err = run.communicate(timeout=300)
        assert run.returncode == 0, err.decode()[-2000:]
    with app.app_context(), platform_bypass("test"):
        made = db.session.execute(select(Invoice.org_id, Invoice.period_start, Invoice.number)).all()
    assert len({(org, start) for org, start, _ in made}) == len(made) == 5
    assert sorted(number for _, _, number in made) == [f"INV-2026-{n:06d}" for n in range(1, 6)]


def test_the_month_due_is_the_last_one_over_in_the_orgs_zone():
    just_after_utc_midnight = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
    assert last_complete_month(just_after_utc_midnight, "UTC") == (2026, 11)
    assert last_complete_month(just_after_utc_midnight, "America/New_York") == (2026, 10)
    assert last_complete_month(datetime(2027, 1, 1, 5, 0, tzinfo=UTC), "America/New_York") == (2026, 12)
