"""Property: an org's usage of a local month equals a brute-force recount in Python of the stored
calls, SMS, recordings and assignment periods, for both orgs of the world (A in UTC, B in New York,
whose clocks go back on 2026-11-01), for October (B's numbers arrive on the 3rd) and November (MOVED
passes from A to B on the 2nd), with per-second and per-minute rounding. A shared number's traffic
counts for both orgs; a moved number's for each in its own period."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, insert, select

from tests.factories import account_of
from tests.world import A_ONLY, B_ONLY, MOVED, SHARED, T
from vsync.extensions import db
from vsync.models import Call, NumberAssignment, Recording, SmsMessage
from vsync.services.billing.usage import month_span, usage
from vsync.tenancy import platform_bypass, tenant

NUMBERS = (A_ONLY, B_ONLY, SHARED, MOVED)
ZONES = {"a": ZoneInfo("UTC"), "b": ZoneInfo("America/New_York")}
instants = st.integers(-40 * 24 * 60, 35 * 24 * 60).map(lambda m: T + timedelta(minutes=m, seconds=m % 7))

traffic = st.fixed_dictionaries(
    {
        "calls": st.lists(
            st.fixed_dictionaries(
                {
                    "number": st.sampled_from(NUMBERS),
                    "started_at": instants,
                    "direction": st.sampled_from(("inbound", "outbound", "callback", "other")),
                    "duration_ms": st.one_of(
                        st.none(), st.integers(0, 400_000), st.sampled_from((1, 59_999, 60_000, 60_001))
                    ),
                }
            ),
            max_size=25,
        ),
        "sms": st.lists(
            st.fixed_dictionaries(
                {
                    "number": st.sampled_from(NUMBERS),
                    "sent_at": instants,
                    "direction": st.sampled_from(("inbound", "outbound")),
                }
            ),
            max_size=10,
        ),
        "recordings": st.lists(
            st.fixed_dictionaries({"number": st.sampled_from(NUMBERS), "started_at": instants}), max_size=6
        ),
    }
)


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(), zone).astimezone(UTC)


def _sees(periods, number_id: int, at: datetime) -> bool:
    return any(n == number_id and start <= at and (end is None or at < end) for n, start, end in periods)


def _billable_seconds(ms: int | None, rounding: str) -> int:
    if not ms or ms <= 0:
        return 0
    unit = 1000 if rounding == "second" else 60_000
    whole = ms // unit + (1 if ms % unit else 0)
    return whole * unit // 1000


def _recount(stored: dict, periods, zone: ZoneInfo, year: int, month: int, rounding: str) -> dict:
    start, end = month_span(year, month)
    lo, hi = _midnight(start, zone), _midnight(end, zone)
    calls = [
        c
        for c in stored["calls"]
        if lo <= c["started_at"] < hi and _sees(periods, c["number"], c["started_at"]) and c["direction"] != "other"
    ]
    sms = [s for s in stored["sms"] if lo <= s["sent_at"] < hi and _sees(periods, s["number"], s["sent_at"])]
    days = 0
    for number_id in {n for n, _, _ in periods}:
        day = start
        while day < end:
            d_lo, d_hi = _midnight(day, zone), _midnight(day + timedelta(days=1), zone)
            days += any(n == number_id and s < d_hi and (e is None or e > d_lo) for n, s, e in periods)
            day += timedelta(days=1)
    return {
        "calls": {d: sum(c["direction"] == d for c in calls) for d in ("inbound", "outbound", "callback")},
        "talk_seconds": {
            d: sum(_billable_seconds(c["duration_ms"], rounding) for c in calls if c["direction"] == d)
            for d in ("inbound", "outbound", "callback")
        },
        "sms_sent": sum(s["direction"] == "outbound" for s in sms),
        "sms_received": sum(s["direction"] == "inbound" for s in sms),
        "recordings": sum(
            lo <= r["started_at"] < hi and _sees(periods, r["number"], r["started_at"]) for r in stored["recordings"]
        ),
        "number_days": days,
    }


def _store(world, generated: dict) -> None:
    account = account_of(world.integrations["a"])
    db.session.execute(delete(Call.__table__).where(Call.__table__.c.external_id.like("u-%")))
    db.session.execute(delete(SmsMessage.__table__).where(SmsMessage.__table__.c.external_id.like("u-%")))
    db.session.execute(delete(Recording.__table__).where(Recording.__table__.c.call_external_id.like("u-%")))
    number = lambda row: world.numbers[row["number"]]  # noqa: E731
    if generated["calls"]:
        db.session.execute(
            insert(Call.__table__),
            [
                {
                    "account_id": account,
                    "phone_number_id": number(c),
                    "external_id": f"u-{i}",
                    "raw": {},
                    "status": "answered",
                    **{k: v for k, v in c.items() if k != "number"},
                }
                for i, c in enumerate(generated["calls"])
            ],
        )
    if generated["sms"]:
        db.session.execute(
            insert(SmsMessage.__table__),
            [
                {
                    "account_id": account,
                    "phone_number_id": number(s),
                    "external_id": f"u-{i}",
                    "raw": {},
                    **{k: v for k, v in s.items() if k != "number"},
                }
                for i, s in enumerate(generated["sms"])
            ],
        )
    if generated["recordings"]:
        db.session.execute(
            insert(Recording.__table__),
            [
                {
                    "account_id": account,
                    "phone_number_id": number(r),
                    "call_external_id": f"u-{i}",
                    "started_at": r["started_at"],
                }
                for i, r in enumerate(generated["recordings"])
            ],
        )
    db.session.commit()


def _stored(world) -> tuple[dict, dict]:
    """Every stored row (the world's own traffic too) and every org's periods, read in the bypass."""
    c, s, r, p = Call.__table__.c, SmsMessage.__table__.c, Recording.__table__.c, NumberAssignment.__table__.c
    rows = {
        "calls": [
            {"number": n, "started_at": t, "direction": d, "duration_ms": ms}
            for n, t, d, ms in db.session.execute(select(c.phone_number_id, c.started_at, c.direction, c.duration_ms))
        ],
        "sms": [
            {"number": n, "sent_at": t, "direction": d}
            for n, t, d in db.session.execute(select(s.phone_number_id, s.sent_at, s.direction))
        ],
        "recordings": [
            {"number": n, "started_at": t} for n, t in db.session.execute(select(r.phone_number_id, r.started_at))
        ],
    }
    periods = {
        name: [
            (n, start, end)
            for n, start, end in db.session.execute(
                select(p.phone_number_id, p.assigned_at, p.unassigned_at).where(p.org_id == world.org(name))
            )
        ]
        for name in ("a", "b")
    }
    return rows, periods


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    generated=traffic,
    org=st.sampled_from(("a", "b")),
    month=st.sampled_from((10, 11)),
    rounding=st.sampled_from(("second", "minute")),
)
def test_usage_of_a_local_month_equals_a_brute_force_recount(app, world, generated, org, month, rounding):
    with app.app_context():
        with platform_bypass("test setup"):
            _store(world, generated)
            stored, periods = _stored(world)
        with tenant(world.org(org)):
            start, end = month_span(2026, month)
            got = usage(world.org(org), start, end, rounding)
    expected = _recount(stored, periods[org], ZONES[org], 2026, month, rounding)
    assert {k: getattr(got, k) for k in expected} == expected
