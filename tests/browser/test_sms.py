"""SMS in the console as a manager uses it: the conversations list, a conversation opened by
clicking, a reply typed and sent through MightyCall (the simulator on loopback), and the reply in the
thread at once. Screenshots at desktop and phone width; no console errors."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import insert

from tests.browser.helpers import Console
from tests.factories import T0, account_of, assign, make_integration, make_number, make_org, make_user
from tests.mightycall.helpers import API_KEY, USER_KEY
from vsync.extensions import db
from vsync.mightycall.simulator import SimulatorServer
from vsync.models import SmsMessage
from vsync.models.types import utcnow
from vsync.tenancy import platform_bypass

CUSTOMER = "+14155550123"
QUESTION = "Is the blue sofa still in stock?"
REPLY = "Yes, two left. Shall we hold one for you?"
SIZES = {"desktop": (1366, 900), "phone": (390, 844)}


@pytest.fixture
def sim_server():
    with SimulatorServer(seed=3, calls_per_day=10, api_key=API_KEY, user_key=USER_KEY) as server:
        yield server


@pytest.fixture
def shop(app, sim_server):
    number = sim_server.simulator.phone_numbers()[0]
    with app.app_context():
        org_id = make_org("shop", "Europe/London")
        make_user("manager@shop.test", org_slug="shop", role="manager")
        number_id = make_number(number)
        assign("shop", number, at=T0 - timedelta(days=400))
        integration_id = make_integration(org_id, base_url=sim_server.base_url, api_key=API_KEY, user_key=USER_KEY)
        with platform_bypass("test setup"):
            db.session.execute(
                insert(SmsMessage.__table__).values(
                    account_id=account_of(integration_id),
                    phone_number_id=number_id,
                    external_id="sms-question",
                    direction="inbound",
                    counterpart=CUSTOMER,
                    text=QUESTION,
                    sent_at=utcnow() - timedelta(minutes=5),
                    raw={},
                )
            )
            db.session.commit()
        db.session.remove()
    return number


def _shots(console: Console, name: str) -> None:
    for size, (width, height) in SIZES.items():
        console.page.set_viewport_size({"width": width, "height": height})
        console.shot(f"sms-{name}-{size}")
    console.page.set_viewport_size({"width": 1366, "height": 900})


def test_a_manager_opens_a_conversation_replies_and_sees_the_reply_in_the_thread(
    page, live_server, artifacts, shop, sim_server
):
    page.set_default_timeout(10_000)
    console = Console(page, live_server, artifacts)
    console.sign_in("manager@shop.test")
    with page.expect_navigation():
        page.locator("#admin-navbar-collapse a.nav-link", has_text="SMS").click()
    assert page.locator(".sms-conversations").inner_text().count(CUSTOMER) == 1
    _shots(console, "conversations")
    with page.expect_navigation():
        page.locator("a.conversation-link", has_text=CUSTOMER).click()
    assert QUESTION in page.locator(".sms-bubble.sms-in").inner_text()
    page.fill("form.sms-reply textarea", REPLY)
    with page.expect_navigation():
        page.click("form.sms-reply button[type=submit]")
    console.expect_flash(f"Sent to {CUSTOMER}")
    bubbles = page.locator(".sms-bubble").all_inner_texts()
    assert QUESTION in bubbles[0] and REPLY in bubbles[-1]
    assert page.locator(".sms-bubble.sms-out").inner_text().startswith(REPLY)
    _shots(console, "thread")
    assert [m["text"] for m in sim_server.simulator.sent_messages] == [REPLY]
    assert console.errors == []
