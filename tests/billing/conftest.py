"""A billed org: Acme (UTC) since 2026-10-01, on `basic` then `pro` from 2026-11-16, with calls, SMS
and two numbers in November 2026 whose invoice is worked out by hand in `test_invoices`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import time_machine
from sqlalchemy import insert

from tests.factories import account_of, assign, make_integration, make_number, make_org, make_user
from tests.helpers import app_config
from tests.jobs.helpers import FAST
from vsync import create_app
from vsync.extensions import db
from vsync.models import BillingSettings, Call, SmsMessage
from vsync.services.billing import plans
from vsync.services.numbers import get_number
from vsync.tenancy import platform_bypass

BORN = datetime(2026, 10, 1, tzinfo=UTC)
N1, N2 = "+12125550201", "+12125550202"


def at(day: int, hour: int = 12, second: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, 0, second, tzinfo=UTC)


CALLS = [  # direction, start, duration ms
    ("inbound", at(2), 61_000),
    ("outbound", at(5), 600_000),
    ("callback", at(9), 1),
    ("inbound", at(10), 0),
    ("inbound", at(16), 90_500),
    ("outbound", at(30, 23), 29_000),
]
SMS = [("outbound", at(3)), ("outbound", at(4)), ("inbound", at(15, 23)), ("inbound", at(20))]


@dataclass
class Billed:
    org_id: int
    basic_id: int
    pro_id: int


def make_plans() -> tuple[int, int]:
    basic = plans.save_plan(
        code="basic",
        name="Basic",
        currency="USD",
        rounding="minute",
        monthly_fee="30.00",
        included_minutes=10,
        minute_price="0.10",
        included_sms=2,
        sms_price="0.05",
        included_numbers=1,
        number_price="3.00",
    )
    pro = plans.save_plan(
        code="pro",
        name="Pro",
        currency="USD",
        rounding="second",
        monthly_fee="90.00",
        minute_price="0.02",
        sms_price="0.01",
        included_numbers=1,
        number_price="3.00",
    )
    db.session.flush()
    return basic.id, pro.id


@pytest.fixture(scope="session")
def inline_app(app):
    """Jobs run inline (no Redis), as in `make run`'s embedded default."""
    return create_app(app_config(REDIS_URL=None, **FAST))


@pytest.fixture
def billed(app) -> Billed:
    with app.app_context():
        with time_machine.travel(BORN, tick=False):
            org_id = make_org("acme")
            make_user("owner@acme.test", org_slug="acme")
        integration_id = make_integration(org_id)
        for e164 in (N1, N2):
            make_number(e164)
        assign("acme", N1, at=BORN)
        assign("acme", N2, at=at(16, 0))
        numbers = {e164: _number_id(e164) for e164 in (N1, N2)}
        with platform_bypass("test setup"):
            account = account_of(integration_id)
            db.session.execute(
                insert(Call.__table__),
                [
                    {
                        "account_id": account,
                        "phone_number_id": numbers[N1],
                        "external_id": f"c{i}",
                        "direction": d,
                        "status": "answered",
                        "started_at": t,
                        "duration_ms": ms,
                        "raw": {},
                    }
                    for i, (d, t, ms) in enumerate(CALLS)
                ],
            )
            db.session.execute(
                insert(SmsMessage.__table__),
                [
                    {
                        "account_id": account,
                        "phone_number_id": numbers[N1],
                        "external_id": f"s{i}",
                        "direction": d,
                        "sent_at": t,
                        "raw": {},
                    }
                    for i, (d, t) in enumerate(SMS)
                ],
            )
            basic_id, pro_id = make_plans()
            plans.subscribe(org_id, basic_id, date(2026, 10, 1))
            plans.change_plan(org_id, pro_id, date(2026, 11, 16))
            db.session.add(BillingSettings(org_id=org_id, tax_rate=Decimal("0.10")))
            db.session.commit()
        db.session.remove()
    return Billed(org_id, basic_id, pro_id)


def _number_id(e164: str) -> int:
    with platform_bypass("test setup"):
        return get_number(e164).id
