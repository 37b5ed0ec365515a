"""Sessions that end, clicked as people do it: one long-running server, two orgs, a person signed in
on two devices (two browser contexts, each with its own cookies)."""

from __future__ import annotations

import re

import pytest

from tests.browser.helpers import Console
from tests.world import EMAILS

LOGIN = re.compile(r".*/login.*")
ORG_MENU = "#admin-navbar-collapse ul.mr-auto > li > a.nav-link"
PLATFORM_MENU = "#admin-navbar-collapse ul.mr-auto .dropdown-menu a.dropdown-item"


@pytest.fixture
def device(browser, live_server, artifacts, world):
    """A new device: a browser context of its own, driven as the console."""
    contexts = []

    def open_device() -> Console:
        context = browser.new_context()
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(10_000)
        return Console(page, live_server, artifacts)

    yield open_device
    for context in contexts:
        context.close()


def _click_menu(console: Console, selector: str, name: str) -> None:
    with console.page.expect_navigation():
        console.page.locator(selector).filter(has_text=re.compile(rf"^\s*{name}\s*$")).click()


def test_sign_out_everywhere_in_the_menu_ends_the_persons_session_on_the_other_device(device):
    laptop, phone = device(), device()
    for console in (laptop, phone):
        console.sign_in(EMAILS["both"])
        with console.page.expect_navigation():
            console.page.locator("form.list-group-item", has_text="Org-A").locator("button").click()
    laptop.page.click("#user-menu")
    laptop.page.click("text=Sign out everywhere")
    laptop.page.wait_for_url(LOGIN)
    _click_menu(phone, ORG_MENU, "Calls")
    assert LOGIN.match(phone.page.url), phone.page.url
    assert laptop.errors == [] and phone.errors == []


def test_signing_out_on_one_device_leaves_the_other_signed_in(device):
    laptop, phone = device(), device()
    for console in (laptop, phone):
        console.sign_in(EMAILS["admin_b"])
    laptop.sign_out()
    phone.page.reload()
    assert not LOGIN.match(phone.page.url), phone.page.url
    assert "/admin" in phone.page.url


def test_a_platform_admin_signs_a_person_out_everywhere_from_their_user_page(device):
    admin, person = device(), device()
    person.sign_in(EMAILS["admin_a"])
    admin.sign_in(EMAILS["root"])
    admin.page.click("#admin-navbar-collapse .dropdown-toggle:has-text('Platform')")
    _click_menu(admin, PLATFORM_MENU, "Users")
    row = admin.page.locator("tr", has_text=EMAILS["admin_a"])
    row.locator("a[href*='details']").first.click()
    admin.page.wait_for_load_state()
    with admin.page.expect_navigation():
        admin.page.click("form[action$='/users/sign-out'] button")  # the person's, not the admin's own in the menu
    admin.expect_flash(re.compile("signed out", re.IGNORECASE))
    assert not LOGIN.match(admin.page.url)
    person.page.reload()
    assert LOGIN.match(person.page.url), person.page.url
    assert admin.errors == [] and person.errors == []
