"""One window parser for the API, the console's calls list and the dashboard: the same cap, the same
errors, each edge in its own voice (the API's error envelope naming the field; a flashed form error
on the console's pages, which answer 400)."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from markupsafe import escape

from tests.world import api_as
from vsync.errors import ValidationError
from vsync.query import MAX_WINDOW, Window

REFUSED = {
    "25 years": ({"from": "2001-01-01", "to": "2025-12-31"}, "A window is at most 400 days."),
    "inverted": ({"from": "2026-11-02", "to": "2026-11-01"}, "`from` must come before `to`."),
    "not a date": ({"from": "2026-13-01", "to": "2026-11-01"}, "'2026-13-01' is not a date (YYYY-MM-DD)."),
}
API_ROUTES = ("metrics", "metrics/series", "metrics/agents", "metrics/numbers", "calls", "recordings", "sms")


@pytest.mark.parametrize("case", REFUSED)
def test_the_api_the_console_and_the_dashboard_refuse_a_window_with_the_same_message(app, world, case):
    window, message = REFUSED[case]
    client = api_as(app.test_client(), "admin_a", world)
    envelope = {"code": "validation_error", "message": message, "details": {"from": message}}
    for route in API_ROUTES:
        response = client.get(f"/api/v1/orgs/org-a/{route}", query_string=window)
        assert response.status_code == 400, route
        assert {k: v for k, v in response.get_json()["error"].items() if k != "request_id"} == envelope, route
    data = client.get("/admin/orgs/org-a/data", query_string=window)
    assert data.status_code == 400
    assert {k: v for k, v in data.get_json()["error"].items() if k != "request_id"} == envelope
    for page in ("/admin/orgs/org-a/", "/admin/orgs/org-a/calls/"):
        response = client.get(page, query_string=window)
        assert response.status_code == 400, page
        assert response.get_data(as_text=True).count(str(escape(message))) == 1, page


def test_every_edge_takes_400_local_days_across_a_daylight_saving_change_and_refuses_401(app, world):
    """Org B keeps New York time: these 400 local days hold one more autumn hour than spring takes."""
    ny = ZoneInfo("America/New_York")
    longest, too_long = {"from": "2026-10-25", "to": "2027-11-28"}, {"from": "2026-10-25", "to": "2027-11-29"}
    window = Window.parse(ny, longest["from"], longest["to"])
    assert window.end - window.start == MAX_WINDOW + timedelta(hours=1)
    with pytest.raises(ValidationError, match="at most 400 days"):
        Window.parse(ny, too_long["from"], too_long["to"])
    client = api_as(app.test_client(), "admin_b", world)
    for path in (
        "/api/v1/orgs/org-b/metrics",
        "/api/v1/orgs/org-b/calls",
        "/admin/orgs/org-b/data",
        "/admin/orgs/org-b/",
        "/admin/orgs/org-b/calls/",
    ):
        assert client.get(path, query_string=longest).status_code == 200, path
        assert client.get(path, query_string=too_long).status_code == 400, path
