"""`make run`'s demo: each demo org has last month's invoice (once, however often the demo loads)
and this month's usage so far."""

from __future__ import annotations

from sqlalchemy import select

from vsync.extensions import db
from vsync.mightycall.simulator import SimulatorServer
from vsync.models import Invoice, Organization
from vsync.models.types import utcnow
from vsync.services.billing.usage import last_complete_month, local_today, month_span, usage
from vsync.tenancy import platform_bypass, tenant


def test_the_demo_bills_last_month_and_shows_this_months_usage(inline_app):
    runner = inline_app.test_cli_runner()
    with SimulatorServer(seed=1, calls_per_day=40) as first, SimulatorServer(seed=2, calls_per_day=40) as second:
        for _ in range(2):
            result = runner.invoke(args=["demo", "--simulator", first.base_url, "--simulator", second.base_url])
            assert result.exit_code == 0, result.output
    with inline_app.app_context():
        with platform_bypass("test"):
            orgs = db.session.execute(select(Organization.id, Organization.timezone)).all()
            made = db.session.execute(select(Invoice.org_id, Invoice.period_start, Invoice.number)).all()
        assert len(orgs) == 2
        due = {(org_id, month_span(*last_complete_month(utcnow(), tz))[0]) for org_id, tz in orgs}
        assert {(org_id, start) for org_id, start, _ in made} == due and len(made) == 2
        assert all(number.startswith("INV-") for _, _, number in made)
        for org_id, _ in orgs:
            with tenant(org_id):
                today = local_today(org_id, utcnow())
                so_far = usage(org_id, *month_span(today.year, today.month), "second")
            assert so_far.number_days > 0
