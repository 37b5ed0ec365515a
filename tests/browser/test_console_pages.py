"""The console's frame and forms in Chromium at a laptop's 1366×900 and a phone's 390×844: the
navigation bar on one line with the longest menu there is (a platform admin acting in an org), a
refused form that keeps what was typed, the time-zone picker, and the 404 page in the console's
look. Screenshots go to tests/artifacts/."""

from __future__ import annotations

import pytest

from tests.browser.helpers import Console
from tests.world import EMAILS

LAPTOP, PHONE = {"width": 1366, "height": 900}, {"width": 390, "height": 844}


@pytest.fixture
def console(page, live_server, artifacts, world):
    page.set_default_timeout(10_000)
    return Console(page, live_server, artifacts)


def test_the_navigation_fits_one_line_on_a_laptop_and_folds_on_a_phone(console):
    page = console.page
    page.set_viewport_size(LAPTOP)
    console.sign_in(EMAILS["root"])
    console.open("/admin/orgs/org-a/calls/", shot="console-navbar-1366")
    bar = page.locator("nav.navbar").bounding_box()
    link = page.locator("#admin-navbar-collapse ul.mr-auto > li > a.nav-link").first.bounding_box()
    assert bar and link and bar["height"] < 2 * link["height"] + 16, bar  # one row of links
    assert page.locator("#admin-navbar-collapse ul.mr-auto > li > a.nav-link").all_inner_texts()[-1].strip() == (
        "Platform"
    )
    page.click("#admin-navbar-collapse .dropdown-toggle:has-text('Organisation')")
    assert page.locator("a.dropdown-item", has_text="Settings").is_visible()
    page.set_viewport_size(PHONE)
    console.open("/admin/orgs/org-a/", shot="console-navbar-390")
    assert not page.locator("#admin-navbar-collapse").is_visible()
    page.click("button.navbar-toggler")
    page.locator("#admin-navbar-collapse a.nav-link", has_text="Calls").wait_for()
    assert console.errors == []


def test_a_refused_form_keeps_what_was_typed_and_the_zone_is_picked_from_the_list(console):
    page = console.page
    page.set_viewport_size(LAPTOP)
    console.sign_in(EMAILS["root"])
    console.open("/admin/platform/orgs/")
    page.click("summary:has-text('Create an organisation')")
    page.fill("#org-name", "Initech Europe")
    page.fill("#org-slug", "initech-eu")
    page.fill("#org-timezone", "Berlin")
    console.refusals.add(console.base_url + "/admin/platform/orgs/add")  # the refusal is a 400, as it should be
    page.click("button:has-text('Create')")
    assert page.locator("#org-name").input_value() == "Initech Europe"
    assert page.locator("#org-slug").input_value() == "initech-eu"
    assert "is not an IANA time zone" in page.locator(".field-error").inner_text()
    console.shot("console-form-refused")
    zones = page.locator("datalist#time-zones option")
    assert zones.count() > 300 and page.locator("#org-timezone").get_attribute("list") == "time-zones"
    page.fill("#org-timezone", "Europe/Berlin")
    page.click("button:has-text('Create')")
    console.expect_flash("Initech Europe created")
    assert console.errors == []


def test_a_missing_page_is_a_404_in_the_consoles_look_with_a_way_back(console):
    page = console.page
    console.sign_in(EMAILS["admin_a"])
    for viewport, name in ((LAPTOP, "1366"), (PHONE, "390")):
        page.set_viewport_size(viewport)
        console.refusals.add(console.base_url + "/admin/orgs/org-a/calls/details/?id=987654")
        answer = console.open("/admin/orgs/org-a/calls/details/?id=987654", shot=f"console-404-{name}")
        assert answer is not None and answer.status == 404
        assert page.locator("h1").inner_text() == "Page not found"
    with page.expect_navigation():
        page.click("text=Back to your organisations")
    assert page.url == f"{console.base_url}/admin/orgs/org-a/"
    assert console.errors == []
