"""Property: for random calls on the world's numbers (shared, moved, before and after their
assignments) and random filters, the calls list of org B (America/New_York, a DST change on
2026-11-01) paged to its end is exactly a brute-force filter in Python, and `metrics.summary`'s
`total_calls` for the same window and filters is its length."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, insert, select

from tests.factories import account_of
from tests.world import A_ONLY, B_ONLY, MOVED, SHARED, T, api_as
from vsync import metrics, query
from vsync.extensions import db
from vsync.models import Call, Organization
from vsync.models.traffic import CALL_STATUSES
from vsync.tenancy import platform_bypass, tenant

ZONE = ZoneInfo("America/New_York")
ASSIGNED = T - timedelta(days=30)  # every world assignment starts here; MOVED passes to B at T
NUMBERS = (A_ONLY, B_ONLY, SHARED, MOVED)
AGENTS = ("201", "202", None)
PHONES = ("+14155550123", "+14155550177", "+447700900123")

calls = st.lists(
    st.fixed_dictionaries(
        {
            "number": st.sampled_from(NUMBERS),
            "started_at": st.integers(-40 * 24 * 60, 6 * 24 * 60).map(lambda m: T + timedelta(minutes=m)),
            "direction": st.sampled_from(("inbound", "outbound", "callback")),
            "status": st.sampled_from(CALL_STATUSES),
            "agent_extension": st.sampled_from(AGENTS),
            "from_number": st.sampled_from(PHONES),
        }
    ),
    max_size=30,
)
filters = st.fixed_dictionaries(
    {
        "from": st.integers(-35, 3).map(lambda d: T.date() + timedelta(days=d)),
        "days": st.integers(0, 10),
        "number": st.sampled_from((None, *NUMBERS)),
        "agent": st.sampled_from((None, "201", "202")),
        "direction": st.sampled_from((None, "inbound", "outbound", "callback")),
        "status": st.sampled_from((None, *CALL_STATUSES)),
        "q": st.sampled_from((None, "0123", "h-1", "H-", "4477")),
        "limit": st.integers(1, 7),
    }
)


def _visible_to_b(call: dict) -> bool:
    number = call["number"]
    if call["started_at"] < ASSIGNED:
        return False
    return number in (B_ONLY, SHARED) or (number == MOVED and call["started_at"] >= T)


def _local_midnight(day: date) -> datetime:
    return datetime.combine(day, time(), ZONE).astimezone(UTC)


def _brute_force(rows: list[dict], f: dict) -> list[str]:
    start, end = _local_midnight(f["from"]), _local_midnight(f["from"] + timedelta(days=f["days"] + 1))
    kept = []
    for call in rows:
        directions = ("outbound", "callback") if f["direction"] == "outbound" else (f["direction"],)
        q = f["q"]
        digits = "".join(ch for ch in q or "" if ch.isdigit())
        if not (start <= call["started_at"] < end) or (f["number"] and call["number"] != f["number"]):
            continue
        if f["agent"] and call["agent_extension"] != f["agent"]:
            continue
        if f["direction"] and call["direction"] not in directions:
            continue
        if f["status"] and call["status"] != f["status"]:
            continue
        if q and not (
            q.lower() in call["external_id"].lower()
            or (digits and any(digits in (n or "") for n in (call["from_number"], call["to_number"])))
        ):
            continue
        kept.append(call)
    kept.sort(key=lambda c: (c["started_at"], c["id"]), reverse=True)
    return [c["external_id"] for c in kept]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(generated=calls, f=filters)
def test_the_calls_list_is_a_brute_force_filter_and_agrees_with_the_metrics(app, world, generated, f):
    with app.app_context(), platform_bypass("test setup"):
        db.session.execute(delete(Call.__table__).where(Call.__table__.c.external_id.like("h-%")))
        if generated:
            db.session.execute(
                insert(Call.__table__),
                [
                    {
                        "account_id": account_of(world.integrations["b"]),
                        "phone_number_id": world.numbers[call["number"]],
                        "external_id": f"h-{i}",
                        "raw": {},
                        "to_number": call["number"],
                        **{k: v for k, v in call.items() if k != "number"},
                    }
                    for i, call in enumerate(generated)
                ],
            )
        db.session.commit()
        number_of = {number_id: e164 for e164, number_id in world.numbers.items()}
        stored = [
            {**row._mapping, "number": number_of[row.phone_number_id]}
            for row in db.session.execute(
                select(
                    Call.id,
                    Call.external_id,
                    Call.phone_number_id,
                    Call.started_at,
                    Call.direction,
                    Call.status,
                    Call.agent_extension,
                    Call.from_number,
                    Call.to_number,
                )
            )
        ]
    expected = _brute_force([c for c in stored if _visible_to_b(c)], f)

    to = f["from"] + timedelta(days=f["days"])
    params = {
        "from": f["from"].isoformat(),
        "to": to.isoformat(),
        "limit": f["limit"],
        **{k: f[k] for k in ("number", "agent", "direction", "status", "q") if f[k] is not None},
    }
    client = api_as(app.test_client(), "read_b", world)
    if f["number"] == A_ONLY:  # org A's number, never B's: the filter cannot match, and says so
        response = client.get(f"/api/v1/orgs/org-b/calls?{urlencode(params)}")
        assert response.status_code == 400 and "number" in response.get_json()["error"]["details"]
        return
    listed, cursor = [], None
    while True:
        page_params = {**params, **({"cursor": cursor} if cursor else {})}
        response = client.get(f"/api/v1/orgs/org-b/calls?{urlencode(page_params)}")
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        listed += [c["external_id"] for c in body["data"]]
        # 202 is a member's extension the account never named; 101 handled org A's call on the shared
        # number, and the name of org A's agent is not B's to see.
        names = {"201": "Bea Brown", "202": None, "101": None}
        assert all(
            c["agent"]
            == ({"extension": c["agent"]["extension"], "name": names[c["agent"]["extension"]]} if c["agent"] else None)
            for c in body["data"]
        )
        if (cursor := body["next_cursor"]) is None:
            break
    assert listed == expected

    if f["status"] is None and f["q"] is None:
        with app.app_context(), tenant(world.b):
            org = db.session.get(Organization, world.b)
            window = query.Window.parse(ZONE, f["from"].isoformat(), to.isoformat())
            kpis = metrics.summary(
                org, window, query.Filters(number=f["number"], agent=f["agent"], direction=f["direction"])
            )
        assert kpis["total_calls"] == len(listed)
