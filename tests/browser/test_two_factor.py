"""Two-factor sign-in clicked as a person does it: from the console's menu to the enrolment page, the
code typed from the secret the page shows (computed here, as the app would), the recovery codes, then
signing out and in again with a code. Two orgs; no page may log a console error or a CSP violation.

The clock is an input: the whole process (the server's thread too) runs from a fixed instant, and
moves one 30-second step on before signing in again, as a person waiting for the next code would."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pyotp
import pytest
import time_machine

from tests.browser.helpers import Console
from tests.factories import make_org, make_user
from vsync.extensions import db

ADMIN = "admin@alder.test"
START = datetime(2026, 11, 2, 12, 0, 5, tzinfo=UTC)


@pytest.fixture
def console(app, browser, live_server, artifacts):
    with app.app_context():
        for slug in ("alder", "birch"):
            make_org(slug)
        make_user(ADMIN, org_slug="alder")
        make_user("admin@birch.test", org_slug="birch")
        db.session.remove()
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield Console(page, live_server, artifacts)
    context.close()


def test_a_person_enrols_from_the_menu_and_signs_in_with_a_code_from_the_app(console):
    with time_machine.travel(START, tick=True) as clock:
        console.sign_in(ADMIN)
        console.page.click("#user-menu")
        with console.page.expect_navigation():
            console.page.click("a.two-factor-link")
        assert console.page.locator(".qr svg").count() == 1
        secret = console.page.inner_text(".two-factor-secret").strip()
        console.shot("two-factor-enrol")
        console.page.fill("form.confirm-form input[name=code]", pyotp.TOTP(secret).at(datetime.now(UTC)))
        with console.page.expect_navigation():
            console.page.click("form.confirm-form button")
        codes = console.page.locator(".recovery-codes code").all_inner_texts()
        assert len(codes) == 10 and all(re.fullmatch(r"[a-z0-9]{5}-[a-z0-9]{5}", c) for c in codes)
        console.expect_flash("Two-factor sign-in is on")

        with console.page.expect_navigation():
            console.page.click("text=Go to the console")
        console.sign_out()
        clock.shift(timedelta(seconds=30))
        console.sign_in(ADMIN)
        assert console.page.url.endswith("/login/two-factor")
        console.page.fill("input[name=code]", "12ab56")
        console.page.click("button[type=submit]")
        console.page.wait_for_load_state()
        assert "6 digits the app shows" in console.page.inner_text("main")
        console.page.fill("input[name=code]", pyotp.TOTP(secret).at(datetime.now(UTC)))
        with console.page.expect_navigation():
            console.page.click("button[type=submit]")
        console.page.wait_for_url(re.compile(r".*/admin/orgs/alder/.*"))
        console.shot("two-factor-signed-in")
    refused_code = "/login/two-factor: Failed to load resource: the server responded with a status of 400"
    assert [e for e in console.errors if refused_code not in e] == []  # the malformed code's 400 is expected
