"""The dashboard in Chromium, on a clock set to Monday 2 November 2026, 15:00 UTC: the presets change
the window (in the URL) and the tiles, each tile shows its change against the period before, the
heatmap has a cell for each of the 168 local weekday-hours and counts a DST day's repeated hour
twice, and the outbound tracker names the agent. Screenshots at 1366×900 and 390×844."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import insert, update

from tests.browser.helpers import Console
from tests.factories import account_of
from tests.world import A_ONLY, B_ONLY, EMAILS, T
from vsync.extensions import db
from vsync.models import Agent, Call
from vsync.tenancy import platform_bypass

NOW = T + timedelta(hours=3)  # Monday 2 November 2026, 15:00 UTC; the world's calls are at 11:00-13:00
WIDE, PHONE = {"width": 1366, "height": 900}, {"width": 390, "height": 844}


def _call(account: int, number: int, external_id: str, started: datetime, **fields) -> dict:
    values = {"direction": "inbound", "status": "answered", "duration_ms": 60_000, "agent_extension": None}
    return {
        "account_id": account,
        "phone_number_id": number,
        "external_id": external_id,
        "started_at": started,
        "raw": {},
        **values,
        **fields,
    }


def _rows(world) -> list[dict]:
    """Org A: three calls yesterday morning and three outbound calls of its agent 101 this morning.
    Org B (New York): two calls in the repeated hour 01:00-02:00 of Sunday 1 November, when the clocks
    went back."""
    a, b = account_of(world.integrations["a"]), account_of(world.integrations["b"])
    a_only, b_only = world.numbers[A_ONLY], world.numbers[B_ONLY]
    yesterday, morning = datetime(2026, 11, 1, 10, tzinfo=UTC), T - timedelta(hours=3)
    return [
        _call(a, a_only, "a-y1", yesterday),
        _call(a, a_only, "a-y2", yesterday + timedelta(minutes=30)),
        _call(a, a_only, "a-y3", yesterday + timedelta(hours=1), status="missed", duration_ms=20_000),
        *(
            _call(a, a_only, f"a-o{n}", morning + timedelta(minutes=n), direction="outbound", agent_extension="101")
            for n in (1, 2)
        ),
        _call(a, a_only, "a-o3", morning, direction="outbound", status="missed", agent_extension="101"),
        _call(b, b_only, "b-dst1", datetime(2026, 11, 1, 5, 30, tzinfo=UTC)),  # 01:30 EDT
        _call(b, b_only, "b-dst2", datetime(2026, 11, 1, 6, 30, tzinfo=UTC)),  # 01:30 EST
    ]


@pytest.fixture
def traffic(app, world):
    with app.app_context(), platform_bypass("test setup"):
        db.session.execute(insert(Call.__table__), _rows(world))
        db.session.execute(update(Agent).where(Agent.extension == "101").values(display_name="Henry Okafor"))
        db.session.commit()


@pytest.fixture
def console(page, live_server, artifacts, world, traffic):
    page.set_default_timeout(10_000)
    page.set_viewport_size(WIDE)
    with time_machine.travel(NOW, tick=True):
        yield Console(page, live_server, artifacts)


def _tile(console, scope: str, name: str) -> tuple[str, str]:
    page = console.page
    value = page.locator(f"[data-scope={scope}][data-kpi={name}]").inner_text()
    return value, page.locator(f"[data-scope={scope}][data-change={name}]").inner_text()


def test_presets_comparisons_heatmap_and_outbound_tracker(console):
    page = console.page
    console.sign_in(EMAILS["admin_a"])
    console.open("/admin/orgs/org-a/")
    assert page.locator("[data-preset=today]").get_attribute("aria-current") == "page"
    assert page.locator("[data-scope=today]").count() == 0  # the window is today: no second row of tiles
    assert _tile(console, "metrics", "total_calls") == ("7", "▲ +4 vs 3")  # against yesterday until 15:00
    change = page.locator("[data-scope=metrics][data-change=missed_calls]")
    assert change.inner_text() == "▼ −1 vs 1" and "change-better" in change.get_attribute("class")
    assert page.locator("#heatmap td.heat-cell").count() == 7 * 24
    assert page.locator("#heatmap td[data-weekday='0'][data-hour='11']").inner_text() == "2"
    assert _tile(console, "outbound", "connect_rate")[0] == "66.7 %"
    tracker = page.locator("#outbound-agents tbody tr").first.locator("td").all_inner_texts()
    assert tracker[:4] == ["Henry Okafor", "3", "2", "66.7 %"]
    page.wait_for_function("document.querySelectorAll('canvas').length === 5")
    console.shot("dashboard-today")

    page.click("[data-preset=last_7_days]")
    page.wait_for_url("**/admin/orgs/org-a/?range=last_7_days")
    assert page.locator("#window-title").inner_text() == "27 Oct – 2 Nov 2026"
    assert _tile(console, "metrics", "total_calls") == ("10", "▲ +10 vs 0")
    assert _tile(console, "today", "total_calls") == ("7", "▲ +4 vs 3")
    console.shot("dashboard-last-7-days")
    page.set_viewport_size(PHONE)
    console.shot("dashboard-phone")
    page.set_viewport_size(WIDE)
    console.sign_out()

    console.sign_in(EMAILS["admin_b"])  # New York: Sunday 1 November had 01:00-02:00 twice
    console.open("/admin/orgs/org-b/?from=2026-11-01&to=2026-11-01", shot="dashboard-dst-day")
    assert page.locator("#heatmap td.heat-cell").count() == 7 * 24
    assert page.locator("#heatmap td[data-weekday='6'][data-hour='1']").inner_text() == "2"
    assert page.locator("#heatmap td[data-weekday='6'].heat-0").count() == 23
    assert console.errors == []
