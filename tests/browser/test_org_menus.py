"""Three organisations on one long-lived server, walked by clicks only: a platform admin acting as
each org in turn, and each org's admin, manager and agent, click every link of the console's menu;
each lands on that org's page (its URL names the org) showing that org's data and never another's.
The menu is built for the org of each request: Flask-Admin kept the first org's links for the life
of the process, so a second org's menu led to the first org's pages.

No page may log a console error or a Content-Security-Policy violation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.browser.helpers import Console
from tests.factories import T0, assign, make_integration, make_number, make_org, make_user
from tests.world import _traffic
from vsync.auth.permissions import ROLE_RANK
from vsync.extensions import db
from vsync.models import AlertEvent, Organization, OutboundEmail, SyncRun
from vsync.services import support
from vsync.services.billing import plans
from vsync.services.keys import create_api_key
from vsync.tenancy import platform_bypass

ROOT = "root@three.test"
ROLES = ("org_admin", "manager", "agent")
AGENT_EXTENSION = "101"  # the same extension in every org: each agent still sees only their own org's calls


@dataclass(frozen=True)
class Org:
    slug: str
    timezone: str
    number: str

    @property
    def name(self) -> str:
        return self.slug.title()  # as `make_org` names it

    def email(self, role: str) -> str:
        return f"{role.replace('_', '-')}@{self.slug}.test"


ORGS = (
    Org("alder", "America/New_York", "+12125550111"),
    Org("birch", "Europe/London", "+12125550122"),
    Org("cedar", "Asia/Tokyo", "+12125550133"),
)

# What each org page shows of its org's data that no other org has (for every role that may open it):
# a new org view joins the walk by naming its mark here.
SHOWS = {
    "/": lambda org: f'"org": "{org.slug}"',  # the dashboard's figures, as the page embeds them
    "/floor/": lambda org: f"/admin/orgs/{org.slug}/floor/data",  # where the floor asks for its updates
    "/calls/": lambda org: org.number,
    "/recordings/": lambda org: org.number,  # the number of the agent's recorded call, so every role sees it
    "/sms/": lambda org: f"hello from {org.slug}-",
    "/numbers/": lambda org: org.number,
    "/members/": lambda org: org.email("agent"),
    "/integration/": lambda org: f"/{org.slug}/v4",
    "/sync-runs/": lambda org: f"{org.slug} account refused",
    "/api-keys/": lambda org: f"{org.slug} wallboard",
    "/settings/": lambda org: org.timezone,
    "/tickets/": lambda org: f"{org.slug} line drops",  # opened by the org's agent, so every role sees it
    "/alerts/": lambda org: f"({org.timezone})",
    "/notifications/": lambda org: f"My notifications in {org.name}",
    "/billing/": lambda org: f"{org.slug} plan v1",
}

# What a platform page shows of every org (it lists across orgs), by the page's path under /admin/platform/.
PLATFORM_SHOWS = {
    "billing/": lambda org: f"{org.slug} plan",
    "floor/": lambda org: f"/admin/orgs/{org.slug}/floor/",  # each org's row links into its floor
    "tickets/": lambda org: f"{org.slug} line drops",
    "alerts/": lambda org: f"<td>{org.slug}</td><td>platform</td>",  # the platform's check of its failing sync
    "outbox/": lambda org: f"{org.slug} daily digest",
}


def _make_org(org: Org) -> None:
    org_id = make_org(org.slug, org.timezone)
    users = {
        role: make_user(
            org.email(role), org_slug=org.slug, role=role, extension=AGENT_EXTENSION if role == "agent" else None
        )
        for role in ROLES
    }
    number_id = make_number(org.number)
    assign(org.slug, org.number)
    integration_id = make_integration(org_id, base_url=f"http://127.0.0.1:1/{org.slug}/v4")
    with platform_bypass("test setup"):
        # A call of the org's agent and one of a colleague: each with its event, recording and SMS.
        _traffic(integration_id, number_id, org.slug, T0 - timedelta(hours=1), AGENT_EXTENSION)
        _traffic(integration_id, number_id, org.slug, T0 + timedelta(hours=1), "102")
        db.session.add(
            SyncRun(
                org_id=org_id,
                integration_id=integration_id,
                kind="calls",
                status="failed",
                error=f"{org.slug} account refused the credentials",
            )
        )
        create_api_key(org_id=org_id, name=f"{org.slug} wallboard", scopes="read")
        db.session.add(
            AlertEvent(org_id=org_id, kind="sync_failing", audience="platform", fired_at=T0, fired_value=300.0)
        )
        db.session.add(
            OutboundEmail(
                org_id=org_id,
                user_id=users["org_admin"],
                kind="digest",
                dedupe_key=f"menus:{org.slug}",
                to_address=org.email("org_admin"),
                subject=f"{org.slug} daily digest",
                template="test",
                context={},
                status="failed",
                attempts=4,
                error="SMTPRecipientsRefused",
            )
        )
        support.open_ticket(
            org_id,
            support.Member(id=users["agent"], label=org.email("agent")),
            subject=f"{org.slug} line drops",
            category="problem",
            message="Callers are cut off.",
        )
        plan = plans.save_plan(code=f"{org.slug}-plan", name=f"{org.slug} plan", currency="USD", rounding="second")
        db.session.flush()
        created = db.session.get_one(Organization, org_id).created_at.astimezone(ZoneInfo(org.timezone))
        plans.subscribe(org_id, plan.id, created.date())
        db.session.commit()


@pytest.fixture
def three_orgs(app):
    with app.app_context():
        for org in ORGS:
            _make_org(org)
        make_user(ROOT, platform_admin=True)
        db.session.remove()


@pytest.fixture
def console(page, live_server, artifacts, three_orgs):
    page.set_default_timeout(10_000)
    return Console(page, live_server, artifacts)


def _org_views(app) -> dict[str, tuple[str, str, str | None]]:
    """The org console's views by menu name, in menu order: their path under the org, the least role
    they need, and the menu's dropdown they are in (None: the navigation bar itself)."""
    (admin,) = app.extensions["admin"]
    return {
        view.name: (view.url.removeprefix("/admin/orgs/<org>").rstrip("/") + "/", view.least_role, view.category)
        for view in admin._views
        if view.url.startswith("/admin/orgs/<org>")
    }


def _menu(page, selector: str) -> list[str]:
    return [name.strip() for name in page.locator(selector).all_inner_texts()]


def _click(page, selector: str, name: str) -> None:
    with page.expect_navigation():
        page.locator(selector).filter(has_text=re.compile(rf"^\s*{re.escape(name)}\s*$")).click()


def _content(page) -> str:
    """The page below the navigation bar (whose org switcher names every org a platform admin reaches)."""
    return page.evaluate("""() => {
        const body = document.querySelector("body > .container, body > .container-fluid").cloneNode(true);
        body.querySelector("nav").remove();
        return body.innerHTML;
    }""")


ORG_MENU = "#admin-navbar-collapse ul.mr-auto > li > a.nav-link"


def dropdown(category: str) -> str:
    """The links of one of the menu's dropdowns."""
    return f"#admin-navbar-collapse li.dropdown:has(> a.dropdown-toggle:has-text('{category}')) a.dropdown-item"


def _click_in(page, category: str | None, name: str) -> None:
    """Click a menu link, opening its dropdown first if it is in one."""
    if category is None:
        _click(page, ORG_MENU, name)
        return
    page.click(f"#admin-navbar-collapse .dropdown-toggle:has-text('{category}')")
    _click(page, dropdown(category), name)


PLATFORM_MENU = dropdown("Platform")


def _walk_org_menu(console, app, org: Org, role: str, *, platform: bool = False) -> None:
    """Click every link of the org menu, each from the page the previous click landed on; then the
    brand, home."""
    page = console.page
    views = _org_views(app)
    offered = {name: view for name, view in views.items() if ROLE_RANK[role] >= ROLE_RANK[view[1]]}
    bar = list(dict.fromkeys(category or name for name, (_path, _least, category) in offered.items()))
    assert _menu(page, ORG_MENU) == [*bar, *(["Platform"] if platform else [])]
    for name, (path, _least, category) in offered.items():
        _click_in(page, category, name)
        assert page.url == f"{console.base_url}/admin/orgs/{org.slug}{path}", (role, name)
        assert org.name in page.locator(".org-badge").inner_text()
        content = _content(page)
        assert SHOWS[path](org) in content, (org.slug, role, name)
        for other in ORGS:
            if other != org:
                assert other.slug not in content.lower() and other.number not in content, (org.slug, role, name)
    with page.expect_navigation():
        page.click("a.navbar-brand")


def test_a_platform_admin_acting_as_each_org_in_turn_clicks_through_that_orgs_console(app, console):
    """The first org chosen in the picker, the next ones with the navigation's org switcher."""
    page = console.page
    console.sign_in(ROOT)
    with page.expect_navigation():
        page.locator("form.list-group-item", has_text=ORGS[0].name).locator("button").click()
    visited: set[str] = set()
    for index, org in enumerate(ORGS):
        console.expect_flash(f"You are in {org.name} as org admin")
        assert page.url == f"{console.base_url}/admin/orgs/{org.slug}/"
        _walk_org_menu(console, app, org, "org_admin", platform=True)
        assert page.url == f"{console.base_url}/admin/"  # Home: the org picker
        for name in _menu(page, PLATFORM_MENU):
            page.click("#admin-navbar-collapse .dropdown-toggle:has-text('Platform')")
            _click(page, PLATFORM_MENU, name)
            assert page.url.startswith(f"{console.base_url}/admin/platform/"), name
            path = page.url.removeprefix(f"{console.base_url}/admin/platform/")
            visited.add(path)
            shows = PLATFORM_SHOWS.get(path)
            assert shows is None or all(shows(each) in _content(page) for each in ORGS), name
        if index + 1 < len(ORGS):
            page.select_option("#switch-org", ORGS[index + 1].slug)
            with page.expect_navigation():
                page.click(".org-switcher button[type=submit]")
    assert set(PLATFORM_SHOWS) <= visited
    assert console.errors == []


@pytest.mark.parametrize("role", ROLES)
def test_each_orgs_member_clicks_through_their_own_orgs_console(app, console, role):
    for org in ORGS:
        console.sign_in(org.email(role))
        assert console.page.url == f"{console.base_url}/admin/orgs/{org.slug}/"
        _walk_org_menu(console, app, org, role)
        assert console.page.url == f"{console.base_url}/admin/orgs/{org.slug}/"  # Home: their only org
        console.sign_out()
    assert console.errors == []
