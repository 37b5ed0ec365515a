"""Your account, clicked as a person does it: a forgotten password reset by following the link the
outbox holds, then the own page reached from the navbar (sessions, name, notification preferences)."""

from __future__ import annotations

import re

from sqlalchemy import select

from tests.browser.helpers import Console
from tests.factories import make_org, make_user
from vsync.extensions import db
from vsync.models import OutboundEmail
from vsync.tenancy import platform_bypass

ANN = "ann@a.test"
NEW_PASSWORD = "a fresh long password"


def _reset_link(app) -> str:
    with app.app_context(), platform_bypass("test: read the outbox"):
        row = db.session.scalars(select(OutboundEmail).where(OutboundEmail.template == "password_reset")).one()
        return re.sub(r"^https?://[^/]+", "", row.context["reset_url"])


def test_a_person_resets_a_forgotten_password_by_email_and_uses_their_own_page(app, page, live_server, artifacts):
    with app.app_context():
        make_org("org-a")
        make_user(ANN, org_slug="org-a")
        db.session.remove()
    page.set_default_timeout(10_000)
    console = Console(page, live_server, artifacts)
    console.open("/login")
    page.click("text=Forgot password?")
    page.fill("input[name=email]", ANN)
    page.click("button[type=submit]")
    assert "on its way" in page.locator(".reset-answer").inner_text()

    console.open(_reset_link(app))
    page.fill("input[name=password]", NEW_PASSWORD)
    page.fill("input[name=confirm]", NEW_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/login.*"))
    console.sign_in(ANN, NEW_PASSWORD)

    with page.expect_navigation():
        page.click("#user-menu")
        page.click("a.own-page")
    assert page.url.endswith("/account/")
    assert "Chrome on Linux" in page.locator("tr.this-session").inner_text()
    page.fill("input[name='profile-name']", "Ann Example")
    with page.expect_navigation():
        page.click(".account-name button[type=submit]")
    console.expect_flash("Your name is saved")
    page.select_option("select[name$='-account_security']", "off")
    with page.expect_navigation():
        page.click(".account-notifications button[type=submit]")
    console.expect_flash("preferences are saved")
    assert "/account/" in page.url
    assert page.locator("select[name$='-account_security']").input_value() == "off"
    console.shot("account-own-page")
    assert console.errors == []
