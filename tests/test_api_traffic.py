"""The traffic lists of /api/v1 on the two-org world: calls, recordings and SMS, their filters, keyset
paging, CSV exports, and the call detail; what agents and other orgs see."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from sqlalchemy import insert

from tests.factories import account_of
from tests.world import A_ONLY, B_ONLY, HOUR, MOVED, SHARED, T, api_as
from vsync.extensions import db
from vsync.models import Call
from vsync.tenancy import platform_bypass

WINDOW = "from=2026-11-01&to=2026-11-03"
A_CALLS = ["a-1300", "shared-1200", "moved-before-1100", "a-1100"]  # org A's, newest first (then by id)


def add_calls(app, world, rows: list[dict]) -> None:
    """Calls on org A's integration, as a sync stores them; each row gives `number` and overrides."""
    with app.app_context():
        account_id = account_of(world.integrations["a"])
    with app.app_context(), platform_bypass("test setup"):
        db.session.execute(
            insert(Call.__table__),
            [
                {
                    "account_id": account_id,
                    "phone_number_id": world.numbers[row.pop("number", A_ONLY)],
                    "direction": "inbound",
                    "status": "answered",
                    "duration_ms": 30_000,
                    "raw": {},
                    **row,
                }
                for row in rows
            ],
        )
        db.session.commit()


def all_pages(client, url: str, cursor: str | None = None) -> list[dict]:
    items = []
    while True:
        response = client.get(url + (f"&cursor={cursor}" if cursor else ""))
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        items += body["data"]
        cursor = body["next_cursor"]
        if cursor is None:
            return items


def csv_rows(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.get_data(as_text=True))))


def as_cells(item: dict) -> dict[str, str]:
    return {key: "" if value is None else str(value) for key, value in item.items()}


def flat_call(item: dict) -> dict:
    """A call item as its CSV row holds it: the agent as two columns."""
    agent = item["agent"] or {"extension": None, "name": None}
    return {
        **{k: v for k, v in item.items() if k != "agent"},
        "agent_extension": agent["extension"],
        "agent_name": agent["name"],
    }


def csv_items(response) -> list[dict[str, str]]:
    header, *rows = csv_rows(response)
    return [dict(zip(header, row, strict=True)) for row in rows]


def test_calls_list_is_the_orgs_calls_of_the_window_newest_first(app, world):
    client = api_as(app.test_client(), "read_a", world)
    body = client.get(f"/api/v1/orgs/org-a/calls?{WINDOW}").get_json()
    assert [c["external_id"] for c in body["data"]] == A_CALLS
    assert body["next_cursor"] is None
    first = body["data"][0]
    assert first["number"] == A_ONLY and first["started_at"] == "2026-11-02T13:00:00Z"
    assert first["duration_seconds"] == 60.0 and first["agent"] == {"extension": "101", "name": "Ada Lovelace"}
    assert body["data"][2]["agent"] is None  # moved-before-1100: no extension handled it


def test_paging_is_stable_when_calls_arrive_between_pages(app, world):
    add_calls(app, world, [{"external_id": f"p-{i}", "started_at": T - timedelta(minutes=i)} for i in range(1, 8)])
    client = api_as(app.test_client(), "read_a", world)
    url = f"/api/v1/orgs/org-a/calls?{WINDOW}&limit=3"
    before = [c["external_id"] for c in all_pages(client, url)]
    first = client.get(url).get_json()
    add_calls(
        app,
        world,
        [
            {"external_id": "newest", "started_at": T + 2 * HOUR},
            {"external_id": "same-instant", "started_at": T - timedelta(minutes=7)},
        ],
    )
    rest = all_pages(client, url, first["next_cursor"])
    seen = [c["external_id"] for c in first["data"] + rest]
    assert "newest" not in seen  # it arrived ahead of the cursor: the next pass shows it
    assert [x for x in seen if x != "same-instant"] == before and len(seen) == len(set(seen))
    assert "same-instant" in seen  # behind the cursor: part of the pages still to come


def test_a_forged_or_foreign_cursor_is_a_400_naming_cursor(app, world):
    client = api_as(app.test_client(), "root", world)
    cursor = client.get(f"/api/v1/orgs/org-a/calls?{WINDOW}&limit=1").get_json()["next_cursor"]
    for url in (
        f"/api/v1/orgs/org-a/calls?{WINDOW}&limit=1&cursor={cursor}x",
        f"/api/v1/orgs/org-b/calls?{WINDOW}&limit=1&cursor={cursor}",
        f"/api/v1/orgs/org-a/calls?{WINDOW}&status=missed&cursor={cursor}",
        f"/api/v1/orgs/org-a/recordings?{WINDOW}&cursor={cursor}",
    ):
        response = client.get(url)
        assert response.status_code == 400, url
        assert "cursor" in response.get_json()["error"]["details"]


def test_calls_filters_narrow_like_the_metrics_filters(app, world):
    add_calls(
        app,
        world,
        [
            {
                "external_id": "Ext_50%",
                "started_at": T + timedelta(minutes=5),
                "status": "missed",
                "from_number": "+14155550123",
                "to_number": A_ONLY,
                "agent_extension": None,
            },
            {
                "external_id": "out-1",
                "started_at": T + timedelta(minutes=6),
                "direction": "callback",
                "from_number": SHARED,
                "to_number": "+447700900123",
                "number": SHARED,
                "agent_extension": "102",
            },
        ],
    )
    client = api_as(app.test_client(), "read_a", world)

    def ids(query: str) -> list[str]:
        return [c["external_id"] for c in all_pages(client, f"/api/v1/orgs/org-a/calls?{WINDOW}&{query}")]

    assert ids("status=missed") == ["Ext_50%"]
    assert ids("direction=outbound") == ["out-1"]  # outbound includes callbacks, as in the metrics
    assert ids("agent=102") == ["out-1"]
    assert ids(f"number=%2B{SHARED[1:]}") == ["out-1", "shared-1200"]
    assert ids(f"number={world.numbers[MOVED]}") == ["moved-before-1100"]
    assert ids("q=(415)%20555-01") == ["Ext_50%"]  # the digits, inside a number
    assert ids("q=7700900") == ["out-1"]
    assert ids("q=EXT_") == ["Ext_50%"]  # case-insensitive, in the external id
    assert ids("q=%25") == ["Ext_50%"] and ids("q=_") == ["Ext_50%"]  # wildcards are plain text
    assert ids("q=50") == ["out-1", "Ext_50%"]  # digits: in a number (+1212555010…) or in the id
    assert ids("q=xyz") == []


def test_calls_query_errors_are_400s_naming_the_parameter(app, world):
    client = api_as(app.test_client(), "read_a", world)
    for query, field in (
        ("status=lost", "status"),
        ("from=2026-13-01", "from"),
        ("from=2024-01-01", "from"),
        ("limit=0", "limit"),
        ("q=", "q"),
        ("format=xml", "format"),
        ("colour=red", "colour"),
        ("number=abc", "number"),
    ):
        response = client.get(f"/api/v1/orgs/org-a/calls?{query}")
        assert response.status_code == 400, query
        assert field in response.get_json()["error"]["details"], (query, response.get_json())


def test_an_agent_lists_only_the_calls_of_their_extension(app, world):
    body = api_as(app.test_client(), "agent_a", world).get(f"/api/v1/orgs/org-a/calls?{WINDOW}").get_json()
    assert [c["external_id"] for c in body["data"]] == ["a-1300", "shared-1200", "a-1100"]


def test_csv_export_equals_the_json_list_row_for_row(app, world):
    add_calls(
        app,
        world,
        [{"external_id": f"c-{i}", "started_at": T - timedelta(minutes=i), "to_number": '+1,2"3'} for i in range(1, 6)],
    )
    client = api_as(app.test_client(), "read_a", world)
    url = f"/api/v1/orgs/org-a/calls?{WINDOW}&limit=2"
    items = all_pages(client, url)
    response = client.get(url + "&format=csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.is_streamed
    rows = csv_rows(response)
    assert rows[0] == [
        "id",
        "external_id",
        "number",
        "direction",
        "status",
        "from_number",
        "to_number",
        "started_at",
        "answered_at",
        "ended_at",
        "duration_seconds",
        "agent_extension",
        "agent_name",
    ]
    assert csv_items(response) == [as_cells(flat_call(item)) for item in items] and len(items) == 9
    by_accept = client.get(f"/api/v1/orgs/org-a/calls?{WINDOW}", headers={"Accept": "text/csv"})
    assert csv_rows(by_accept) == rows


def test_an_agents_csv_export_holds_their_own_calls_only(app, world):
    response = api_as(app.test_client(), "agent_a", world).get(f"/api/v1/orgs/org-a/calls?{WINDOW}&format=csv")
    assert [row[1] for row in csv_rows(response)[1:]] == ["a-1300", "shared-1200", "a-1100"]


def test_call_detail_has_its_events_and_recording_and_no_provider_link(app, world):
    client = api_as(app.test_client(), "read_a", world)
    call_id = world.calls["a"]["a-1100"]
    response = client.get(f"/api/v1/orgs/org-a/calls/{call_id}")
    body = response.get_json()
    assert response.status_code == 200 and body["external_id"] == "a-1100"
    assert [e["event_type"] for e in body["events"]] == ["CallConnected"]
    assert body["recording"]["call_id"] == call_id
    assert body["recording"]["audio_url"] == f"/api/v1/orgs/org-a/recordings/{body['recording']['id']}/audio"
    assert "127.0.0.1:1" not in response.get_data(as_text=True)


def test_another_orgs_call_is_a_404_even_by_its_id(app, world):
    client = api_as(app.test_client(), "root", world)
    for reference in ("b-1100", "moved-after-1300"):
        response = client.get(f"/api/v1/orgs/org-a/calls/{world.calls['b'][reference]}")
        assert response.status_code == 404
    assert client.get(f"/api/v1/orgs/org-b/calls/{world.calls['a']['moved-before-1100']}").status_code == 404
    assert client.get(f"/api/v1/orgs/org-b/calls/{world.calls['a']['shared-1200']}").status_code == 200


def test_recordings_list_has_call_ids_and_never_the_provider_link(app, world):
    client = api_as(app.test_client(), "read_b", world)
    response = client.get(f"/api/v1/orgs/org-b/recordings?{WINDOW}")
    items = response.get_json()["data"]
    assert [r["call_external_id"] for r in items] == ["moved-after-1300", "b-1300", "shared-1200", "b-1100"]
    assert items[1]["call_id"] == world.calls["b"]["b-1300"]
    assert "127.0.0.1:1" not in response.get_data(as_text=True)
    exported = csv_items(client.get(f"/api/v1/orgs/org-b/recordings?{WINDOW}&format=csv"))
    assert exported == [as_cells(item) for item in items]
    agent = api_as(app.test_client(), "agent_b", world).get(f"/api/v1/orgs/org-b/recordings?{WINDOW}").get_json()
    assert [r["call_external_id"] for r in agent["data"]] == ["moved-after-1300", "b-1300", "b-1100"]


def test_sms_list_filters_and_exports_for_managers(app, world):
    client = api_as(app.test_client(), "read_a", world)
    url = f"/api/v1/orgs/org-a/sms?{WINDOW}"
    texts = [m["text"] for m in all_pages(client, url + "&limit=1")]
    assert texts == [f"hello from {external_id}" for external_id in A_CALLS]
    assert [m["text"] for m in client.get(url + "&q=SHARED").get_json()["data"]] == ["hello from shared-1200"]
    assert len(client.get(url + "&q=559999&direction=inbound").get_json()["data"]) == 4
    assert client.get(url + "&direction=outbound").get_json()["data"] == []
    assert [m["external_id"] for m in client.get(url + f"&number={world.numbers[SHARED]}").get_json()["data"]] == [
        "sms-shared-1200"
    ]
    exported = csv_items(client.get(url + "&format=csv"))
    assert exported == [as_cells(m) for m in client.get(url).get_json()["data"]]


def test_agents_get_403_for_sms(app, world):
    response = api_as(app.test_client(), "agent_a", world).get(f"/api/v1/orgs/org-a/sms?{WINDOW}")
    assert response.status_code == 403
    assert response.get_json()["error"]["details"] == {"role": "requires 'manager'"}


UNMATCHABLE = (
    ("agent=Alice", "agent"),
    ("number=12345", "number"),
    ("number=%2B12125550199", "number"),
    ("direction=sideways", "direction"),
    ("status=lost", "status"),
)


def test_a_filter_value_that_cannot_match_is_a_400_naming_it_in_lists_exports_and_metrics(app, world):
    client = api_as(app.test_client(), "read_a", world)
    for query, field in UNMATCHABLE:
        for route in ("calls", "calls?format=csv&", "recordings", "metrics", "metrics/agents"):
            separator = "" if route.endswith("&") else "?"
            response = client.get(f"/api/v1/orgs/org-a/{route}{separator}{WINDOW}&{query}")
            assert response.status_code == 400, (route, query)
            assert field in response.get_json()["error"]["details"], (route, query)


def test_another_orgs_agent_or_number_is_refused_exactly_like_an_unknown_one(app, world):
    def refusal(principal: str, org: str, query: str) -> dict:
        response = api_as(app.test_client(), principal, world).get(f"/api/v1/orgs/{org}/calls?{WINDOW}&{query}")
        assert response.status_code == 400, query
        return {k: v for k, v in response.get_json()["error"].items() if k != "request_id"}

    b_number, b_number_id = f"%2B{B_ONLY[1:]}", world.numbers[B_ONLY]
    assert refusal("read_a", "org-a", "agent=201") == refusal("read_a", "org-a", "agent=999")  # B's agent
    assert refusal("read_a", "org-a", f"number={b_number}") == refusal("read_a", "org-a", "number=%2B12125550199")
    assert refusal("read_a", "org-a", f"number={b_number_id}") == refusal("read_a", "org-a", "number=987654")
    # Org B, whose agent and number they are, filters by them.
    mine = api_as(app.test_client(), "read_b", world).get(
        f"/api/v1/orgs/org-b/calls?{WINDOW}&agent=201&number={b_number}"
    )
    assert [c["external_id"] for c in mine.get_json()["data"]] == ["b-1300", "b-1100"]
    assert mine.get_json()["data"][0]["agent"] == {"extension": "201", "name": "Bea Brown"}
