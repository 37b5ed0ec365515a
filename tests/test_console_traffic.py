"""The console's calls and recordings lists and call detail on the two-org world: agents by name
(extension on hover), filters refused exactly as the API refuses them, and the curated call page."""

from __future__ import annotations

import re

from markupsafe import escape

from tests.world import B_ONLY, SHARED, api_as
from vsync.query import UNKNOWN_AGENT, UNKNOWN_NUMBER

A = "/admin/orgs/org-a"
WINDOW = {"from": "2026-11-01", "to": "2026-11-03"}


def _ids(page: str, view: str) -> list[int]:
    return sorted(map(int, re.findall(rf"{view}/details/\?id=(\d+)", page)))


def test_the_calls_list_and_dashboard_show_agents_by_name_with_the_extension_on_hover(app, world):
    page = api_as(app.test_client(), "admin_a", world).get(f"{A}/calls/", query_string=WINDOW).get_data(as_text=True)
    assert '<span class="agent" title="Extension 101">Ada Lovelace</span>' in page
    assert '<option value="101" title="Extension 101" >Ada Lovelace (101)</option>' in page
    dashboard = api_as(app.test_client(), "admin_a", world).get(f"{A}/", query_string=WINDOW).get_data(as_text=True)
    assert '<span class="agent" title="Extension 101">Ada Lovelace</span>' in dashboard  # its recent calls


def test_console_filters_that_cannot_match_are_400s_as_in_the_api_alike_for_another_orgs_values(app, world):
    client = api_as(app.test_client(), "admin_a", world)
    for view in ("calls", "recordings"):
        for query, message in (
            ({"agent": "Alice"}, UNKNOWN_AGENT),
            ({"agent": "201"}, UNKNOWN_AGENT),  # org B's agent
            ({"number": "12345"}, UNKNOWN_NUMBER),
            ({"number": B_ONLY}, UNKNOWN_NUMBER),  # org B's number
            ({"direction": "sideways"}, "direction is one of"),
            *([({"status": "lost"}, "status is one of")] if view == "calls" else []),
            *([({"min_length": "-3"}, "min_length is a whole number")] if view == "recordings" else []),
        ):
            response = client.get(f"{A}/{view}/", query_string={**WINDOW, **query})
            assert response.status_code == 400, (view, query)
            page = response.get_data(as_text=True)
            assert str(escape(message)) in page and _ids(page, view) == [], (view, query)


def test_the_recordings_filters_narrow_the_list(app, world):
    client = api_as(app.test_client(), "admin_a", world)

    def listed(**query) -> int:
        response = client.get(f"{A}/recordings/", query_string={**WINDOW, **query})
        assert response.status_code == 200, query
        return len(_ids(response.get_data(as_text=True), "recordings"))

    assert listed() == 4  # a-1100, a-1300, shared-1200, moved-before-1100
    assert listed(agent="101") == 3 and listed(number=SHARED) == 1 and listed(direction="outbound") == 0
    assert listed(min_length="0") == 0  # the world's recordings have no length
    assert listed(**{"from": "2026-11-02", "to": "2026-11-02"}) == 4
    assert listed(**{"from": "2026-11-03", "to": "2026-11-03"}) == 0


def test_the_call_detail_page_is_curated_in_the_orgs_zone(app, world):
    client = api_as(app.test_client(), "admin_a", world)
    page = client.get(f"{A}/calls/details/", query_string={"id": world.calls["a"]["a-1100"]}).get_data(as_text=True)
    for shown in ("Inbound call · Answered", "Ada Lovelace", 'title="Extension 101"', "Connected", "Timeline"):
        assert shown in page, shown
    assert re.search(r'<time datetime="2026-11-02T11:00:00Z" title="2026-11-02 11:00:00 UTC">', page)
    for dump in ("Ring Ms", "Wait Ended At", "+00:00", "127.0.0.1:1"):
        assert dump not in page, dump
    assert "/api/v1/orgs/org-a/recordings/" in page  # the player, through vsync's audio route
