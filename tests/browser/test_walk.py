"""The console in a real browser (Debian's Chromium, headless): a platform admin sets up an org, its
org admin sees only that org, an agent only their own calls; no console error and no
Content-Security-Policy violation on any page, no framing by another site, and a screenshot of every
console page in tests/artifacts/ for a person to look at."""

from __future__ import annotations

import csv
import io
import pathlib
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from tests.browser.helpers import Console
from tests.mightycall.helpers import API_KEY, USER_KEY
from tests.world import EMAILS, SHARED
from vsync import crypto
from vsync.extensions import db
from vsync.mightycall.simulator import SimulatorServer
from vsync.models import Integration, Recording
from vsync.tenancy import platform_bypass

WINDOW = "from=2026-11-01&to=2026-11-03"
ORG_PAGES = ("calls", "recordings", "sms", "numbers", "members", "integration", "sync-runs", "api-keys", "settings")
PLATFORM_PAGES = (
    "overview",
    "orgs",
    "users",
    "memberships",
    "integrations",
    "numbers",
    "api-keys",
    "sync-runs",
    "webhook-events",
    "audit",
)


@pytest.fixture
def recorded(app, world):
    """Org A's integration on a MightyCall simulator, and the recording of its call a-1100 one of the
    simulator's recordings: the player gets real audio through vsync's audio route."""
    with SimulatorServer(seed=5, calls_per_day=40, api_key=API_KEY, user_key=USER_KEY) as server:
        day = datetime(2026, 11, 2, tzinfo=UTC)
        truth = next(c for c in server.simulator.calls_between(day, day + timedelta(days=1)) if c["callRecord"])
        with app.app_context(), platform_bypass("test setup"):
            integration = db.session.get(Integration, world.integrations["a"])
            integration.base_url = server.base_url
            integration.credentials_encrypted = crypto.encrypt_json({"api_key": API_KEY, "user_key": USER_KEY})
            db.session.execute(
                update(Recording)
                .where(Recording.account_id == integration.account_id, Recording.call_external_id == "a-1100")
                .values(provider_uri=f"{server.url}/recordings/{truth['id']}.wav")
            )
            db.session.commit()
        yield server


@pytest.fixture
def console(page, live_server, artifacts, world):
    page.set_default_timeout(10_000)
    return Console(page, live_server, artifacts)


def _rows(console) -> int:
    return console.page.locator("a[href*='calls/details/?id=']").count()


def test_platform_admin_sets_up_an_org_whose_admin_sees_only_it(console):
    page = console.page
    console.sign_in(EMAILS["root"])
    for name in PLATFORM_PAGES:
        console.open(f"/admin/platform/{name}/", shot=f"platform-{name}")
    page.click("text=Add Filter")  # Flask-Admin's filter widgets (select2, the date range picker) on the audit log
    page.locator(".field-filters a.filter", has_text="Time (UTC)").click()
    page.locator("input.filter-val").first.click()
    assert page.locator(".daterangepicker").first.is_visible()
    console.shot("platform-audit-filter")

    console.open("/admin/platform/orgs/")
    page.click("text=Create an organisation")
    page.fill("#org-name", "Initech")
    page.fill("#org-slug", "initech")
    page.fill("#org-timezone", "Europe/Berlin")
    page.click("form[action$='/orgs/add'] button[type=submit]")
    console.expect_flash("Initech created")

    console.open("/admin/platform/memberships/")
    page.click("text=Add a member to an organisation")
    page.select_option("#member-org", label="Initech (initech)")
    page.fill("#member-email", "boss@initech.test")
    page.select_option("#member-role", "org_admin")
    page.click("form[action$='/memberships/add'] button[type=submit]")
    link = page.locator("code.password-link").inner_text()
    assert "/set-password/" in link

    console.open("/admin/platform/numbers/")
    page.select_option("#assign-numbers", label=SHARED)
    page.select_option("#assign-orgs", label="Initech (initech)")
    page.fill("#assign-at", "2026-11-02T11:00")
    page.click("form[action$='/numbers/assign'] button[type=submit]")
    console.expect_flash("1 assignment(s) made")
    console.shot("platform-numbers-assigned")

    console.open("/admin/")
    page.locator("form.list-group-item", has_text="Initech").locator("button").click()
    console.expect_flash("You are in Initech as org admin")
    console.shot("platform-acting-as-initech")
    console.sign_out()

    page.goto(link)
    console.shot("set-password")
    page.fill("input[name=password]", "initech boss password")
    page.fill("input[name=confirm]", "initech boss password")
    page.click("button[type=submit]")
    console.expect_flash("Your password is set")

    console.sign_in("boss@initech.test", "initech boss password")
    assert page.url.endswith("/admin/orgs/initech/")
    console.open(f"/admin/orgs/initech/?{WINDOW}", shot="org-dashboard")
    assert page.locator("[data-scope=metrics][data-kpi=total_calls]").inner_text() == "1"
    assert "Europe/Berlin" in page.locator(".org-badge").inner_text()
    page.wait_for_function("document.querySelectorAll('canvas').length === 5")
    console.open(f"/admin/orgs/initech/calls/?{WINDOW}", shot="org-calls")
    assert _rows(console) == 1
    for name in ORG_PAGES:
        console.open(f"/admin/orgs/initech/{name}/", shot=f"org-{name}")
    refused = console.open_refused("/admin/platform/orgs/", shot="org-admin-refused-platform")
    assert refused.status == 403 and "Not for your role" in page.content()
    assert console.errors == []


def test_an_org_out_of_reach_is_never_shown(console):
    console.sign_in(EMAILS["admin_b"])
    console.open("/admin/orgs/org-a/calls/")
    assert console.page.url.endswith("/admin/orgs/org-b/")  # the picker sends a one-org admin on to B
    console.expect_flash("not available to you")
    assert console.errors == []


def test_an_agent_sees_only_their_own_calls_and_figures(console):
    console.sign_in(EMAILS["agent_a"])
    console.open(f"/admin/orgs/org-a/?{WINDOW}", shot="agent-dashboard")
    assert console.page.locator("[data-scope=metrics][data-kpi=total_calls]").inner_text() == "3"
    console.open(f"/admin/orgs/org-a/calls/?{WINDOW}", shot="agent-calls")
    assert _rows(console) == 3
    assert console.open_refused("/admin/orgs/org-a/sms/").status == 403
    assert console.errors == []


def test_the_dashboard_refreshes_itself_without_a_reload(console):
    console.sign_in(EMAILS["admin_a"])
    console.open(f"/admin/orgs/org-a/?{WINDOW}")
    with console.page.expect_response(lambda r: "/admin/orgs/org-a/data" in r.url and r.status == 200):
        console.page.evaluate("window.vsyncDashboardRefresh()")
    assert console.page.locator("[data-scope=metrics][data-kpi=total_calls]").inner_text() == "4"
    console.shot("org-a-dashboard")
    console.page.set_viewport_size({"width": 390, "height": 844})
    console.shot("org-dashboard-phone")
    assert console.errors == []


def test_an_org_admin_plays_a_recording(app, console, world, recorded):
    console.sign_in(EMAILS["admin_a"])
    console.open(f"/admin/orgs/org-a/calls/details/?id={world.calls['a']['a-1100']}", shot="org-call-detail")
    console.page.wait_for_function("document.querySelector('audio.call-audio').readyState >= 3")  # canplay
    assert console.errors == []


def test_an_org_admin_exports_the_filtered_calls_as_csv(app, console):
    console.sign_in(EMAILS["admin_a"])
    console.open(f"/admin/orgs/org-a/calls/?{WINDOW}")
    with console.page.expect_download() as download:
        console.page.click("#export-csv")
    rows = list(csv.DictReader(io.StringIO(pathlib.Path(download.value.path()).read_text(encoding="utf-8"))))
    assert len(rows) == 4  # org A's calls of the window, none of B's
    assert console.errors == []


def test_the_sign_in_page_and_the_api_reference_are_styled_from_files_under_the_policy(console):
    console.open("/login", shot="sign-in")
    assert console.page.evaluate("getComputedStyle(document.querySelector('main')).maxWidth") == "352px"  # 22rem
    console.open("/api/v1/docs", shot="api-reference")
    assert console.page.evaluate("getComputedStyle(document.querySelector('nav')).position") == "fixed"
    assert console.errors == []


def test_the_walk_sees_a_content_security_policy_violation(console):
    """The walks fail on any violation: an inline style the policy refuses is reported, not missed."""
    console.open("/login")
    with console.page.expect_console_message(lambda message: "Content Security Policy" in message.text):
        console.page.evaluate("document.body.setAttribute('style', 'color: red')")
    assert console.page.evaluate("getComputedStyle(document.body).color") != "rgb(255, 0, 0)"
    assert any("CSP: style-src-attr refused inline" in error for error in console.errors)  # the event
    assert any("violates the following Content Security Policy" in error for error in console.errors)


def test_another_site_cannot_frame_the_console(page, live_server):
    page.route(
        "http://elsewhere.test/",
        lambda route: route.fulfill(content_type="text/html", body=f'<iframe src="{live_server}/login"></iframe>'),
    )
    page.goto("http://elsewhere.test/")
    (framed,) = page.main_frame.child_frames
    framed.wait_for_load_state()
    assert framed.url.startswith("chrome-error://")  # refused: frame-ancestors 'none', X-Frame-Options DENY
    assert framed.locator("input[name=password]").count() == 0
