"""The org dashboard's windows and comparisons: presets in the URL, the period before, today's tiles
only when they do not repeat the window's, and each org's heatmap and comparison counting its own
calls alone on a shared number (the world's SHARED and MOVED numbers)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine

from tests.factories import make_calls
from tests.world import B_ONLY, T, api_as

A, B = "/admin/orgs/org-a", "/admin/orgs/org-b"
DAY = {"from": "2026-11-02", "to": "2026-11-02"}  # the world's traffic day (Monday), UTC for A, New York for B


@pytest.fixture
def b_yesterday(app, world):
    """Two calls of org B on its own number the day before the world's traffic."""
    with app.app_context():
        make_calls(world.integrations["b"], world.numbers[B_ONLY], [T - timedelta(days=1)] * 2, prefix="b-before")


def _cells(data: dict) -> dict[tuple[int, int], int]:
    return {(c["weekday"], c["hour"]): c["inbound_calls"] for c in data["heatmap"] if c["inbound_calls"]}


def test_each_orgs_comparison_and_heatmap_count_only_its_own_calls_on_a_shared_number(app, world, b_yesterday):
    a = api_as(app.test_client(), "admin_a", world).get(f"{A}/data", query_string=DAY).get_json()
    b = api_as(app.test_client(), "admin_b", world).get(f"{B}/data", query_string=DAY).get_json()
    assert a["previous"]["from"] == a["previous"]["to"] == "2026-11-01"
    assert a["changes"]["metrics"]["total_calls"] == {"previous": 0, "delta": 4, "trend": "up", "judgement": "neutral"}
    assert b["changes"]["metrics"]["total_calls"]["previous"] == 2
    assert a["changes"]["metrics"]["answer_rate"]["judgement"] is None  # no inbound call the day before
    # Monday 11:00, 12:00 (the shared number) and 13:00 UTC for A; 06:00-08:00 in New York for B.
    assert _cells(a) == {(0, 11): 2, (0, 12): 1, (0, 13): 1}
    assert _cells(b) == {(0, 6): 1, (0, 7): 1, (0, 8): 2}
    assert len(a["heatmap"]) == len(b["heatmap"]) == 7 * 24
    assert a["by_direction"] == [
        {"direction": "inbound", "total_calls": 4, "avg_talk_seconds": 60.0, "total_talk_seconds": 240.0}
    ]


def test_a_preset_in_the_url_chooses_the_window_and_today_is_not_shown_twice(app, world):
    with time_machine.travel(T + timedelta(hours=3), tick=False):  # Monday 2 November 2026, 15:00 UTC
        client = api_as(app.test_client(), "admin_a", world)
        today = client.get(f"{A}/data", query_string={"range": "today"}).get_json()
        default = client.get(f"{A}/data").get_json()
        week = client.get(f"{A}/data", query_string={"range": "last_7_days"}).get_json()
        page = client.get(f"{A}/", query_string={"range": "yesterday"}).get_data(as_text=True)
    assert today == default and today["preset"] == "today" and today["today"] is None
    assert (today["window"]["from"], today["window"]["to"]) == ("2026-11-02", "2026-11-02")
    assert today["previous"]["label"] == "1 Nov 2026 00:00 – 15:00"  # yesterday, cut where today stands
    assert (week["window"]["from"], week["window"]["to"], week["metrics"]["total_calls"]) == (
        "2026-10-27",
        "2026-11-02",
        4,
    )
    assert (week["previous"]["from"], week["previous"]["to"]) == ("2026-10-20", "2026-10-26")
    assert week["today"]["total_calls"] == 4 and week["changes"]["today"]["total_calls"]["previous"] == 0
    assert 'data-preset="yesterday" href="/admin/orgs/org-a/?range=yesterday" aria-current="page"' in page
    assert 'data-scope="today" data-kpi="total_calls"' in page


@pytest.mark.parametrize(
    ("query", "field"),
    [({"range": "last_week"}, "range"), ({"range": "today", "from": "2026-11-01"}, "range")],
)
def test_a_window_the_dashboard_cannot_read_is_a_400_naming_the_field(app, world, query, field):
    client = api_as(app.test_client(), "admin_a", world)
    refused = client.get(f"{A}/data", query_string=query)
    assert refused.status_code == 400 and field in refused.get_json()["error"]["details"]
    assert client.get(f"{A}/", query_string=query).status_code == 400
