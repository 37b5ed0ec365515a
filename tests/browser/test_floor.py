"""The live floor in Chromium: it changes by itself when MightyCall's webhook events reach the receiver
(over real HTTP, processed inline as on the embedded default), an agent's floor shows the agent
alone, the wallboard fills the screen without navigation, and no page logs a console error or a
Content-Security-Policy violation. Screenshots at 1366×900 and 390×844 go to tests/artifacts/.

The floor is live, so the calls are played at the clock's own `now`."""

from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import Console
from tests.factories import make_user
from tests.helpers import app_config
from tests.mightycall.helpers import serve_wsgi
from tests.webhooks.helpers import FAST, make_tenant
from vsync import create_app
from vsync.extensions import db
from vsync.mightycall.parsing import parse_datetime
from vsync.mightycall.simulator import WebhookEmitter
from vsync.models import Integration
from vsync.models.types import utcnow
from vsync.services.webhooks import add_signing_secret
from vsync.tenancy import tenant

S = 1  # seconds, for readability of the offsets below
DESKTOP, PHONE = {"width": 1366, "height": 900}, {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def inline_app(app):
    return create_app(app_config(REDIS_URL=None, **FAST))


@pytest.fixture(scope="module")
def live_server(inline_app):
    with serve_wsgi(inline_app) as url:
        yield url


@pytest.fixture
def floors(inline_app):
    """Acme, whose receiver requires signed deliveries (its signing secret returned), and Globex."""
    acme = make_tenant(inline_app, "acme", "+12127363100")
    globex = make_tenant(inline_app, "globex", "+13125550100")
    with inline_app.app_context(), tenant(acme.org_id):
        secret = add_signing_secret(db.session.get_one(Integration, acme.integration_id))
        db.session.commit()
    with inline_app.app_context():
        make_user("manager@acme.test", org_slug="acme", role="manager")
        make_user("agent@acme.test", org_slug="acme", role="agent", extension="101")
        make_user("root@floor.test", platform_admin=True)
    return acme, secret, globex


def _deliver(base_url: str, to, lifecycle: str, *, ago: int, extension: str, seed: int, secret=None, **options):
    """POST (signed with `secret`) the events of a call that started `ago` seconds before now and have
    happened by now, over HTTP, as MightyCall or a signing relay would."""
    now = utcnow()
    started = now.replace(microsecond=0) - timedelta(seconds=ago)
    events = to.events(lifecycle, seed=seed, extension=extension, started_at=started, **options)
    due = [event for event in events if parse_datetime(event["Timestamp"]) <= now]
    assert WebhookEmitter(base_url + to.url, to.api_key, signing_secret=secret, timeout=10).send(due) == 200


def test_the_floor_updates_itself_an_agent_sees_only_themselves_and_the_wallboard_fills_the_screen(
    page, live_server, artifacts, floors
):
    acme, secret, globex = floors
    page.set_default_timeout(10_000)
    page.set_viewport_size(DESKTOP)
    console = Console(page, live_server, artifacts)
    _deliver(live_server, acme, "answered", ago=70 * S, extension="101", seed=1, secret=secret)
    _deliver(live_server, globex, "missed", ago=5 * S, extension="105", seed=9)

    console.sign_in("manager@acme.test")
    console.open("/admin/orgs/acme/floor/")

    def counter(state: str):
        return page.locator(f"[data-count='{state}']")

    expect(counter("on_call")).to_have_text("1")
    expect(counter("ringing")).to_have_text("0")
    expect(page.locator(".agent-card")).to_have_count(1)  # Globex's ringing 105 is not on Acme's floor
    card = page.locator(".agent-card[data-extension='101']")
    expect(card).to_contain_text("On a call")
    expect(card).to_contain_text("+17185550123")
    talked = card.locator(".agent-duration").inner_text()
    ticking = "t => document.querySelector(\".agent-card[data-extension='101'] .agent-duration\").textContent !== t"
    page.wait_for_function(ticking, arg=talked)  # the running duration ticks in the page, between polls

    page.evaluate("window.vsyncSamePage = true")
    _deliver(live_server, acme, "missed", ago=2 * S, extension="102", seed=2, secret=secret, caller="+14155550142")
    expect(counter("ringing")).to_have_text("1")  # within a poll or two, without a reload
    expect(page.locator(".agent-card[data-extension='102']")).to_contain_text("Ringing")
    expect(page.locator("#calls-waiting")).to_have_text("1")
    expect(page.locator(".waiting-call")).to_have_count(1)
    expect(page.locator(".waiting-call")).to_contain_text("+14155550142")
    assert page.evaluate("window.vsyncSamePage") is True
    console.shot("floor-1366")
    page.set_viewport_size(PHONE)
    console.shot("floor-390")
    page.set_viewport_size(DESKTOP)

    with page.expect_navigation():
        page.click("#wallboard-button")
    assert page.url.endswith("/admin/orgs/acme/floor/?wallboard=1")
    assert page.locator("nav").count() == 0 and page.locator("body.wallboard").count() == 1
    expect(counter("ringing")).to_have_text("1")
    assert float(page.eval_on_selector(".floor-counter-value", "e => parseFloat(getComputedStyle(e).fontSize)")) >= 48
    console.shot("floor-wallboard-1366")
    page.click("text=Exit wallboard")
    console.sign_out()

    console.sign_in("agent@acme.test")
    console.open("/admin/orgs/acme/floor/")
    expect(page.locator(".agent-card")).to_have_count(1)
    expect(page.locator(".agent-card[data-extension='101']")).to_contain_text("On a call")
    expect(page.locator("#calls-waiting")).to_have_text("1")  # the queue as a figure, never the caller
    assert page.locator("[data-count]").count() == 0  # no counters of agents: the agent's card is the floor
    assert page.locator("#floor-waiting").count() == 0 and "+14155550142" not in page.content()
    page.set_viewport_size(PHONE)
    console.shot("floor-agent-390")
    page.set_viewport_size(DESKTOP)
    console.sign_out()

    console.sign_in("root@floor.test")
    console.open("/admin/platform/floor/")
    acme_row = page.locator("tr[data-org='acme']")
    expect(acme_row.locator("[data-count='ringing']")).to_have_text("1")
    expect(page.locator("tr[data-org='globex'] [data-count='ringing']")).to_have_text("1")
    assert acme_row.locator("a").get_attribute("href") == "/admin/orgs/acme/floor/"
    console.shot("platform-floor-1366")
    page.set_viewport_size(PHONE)
    console.shot("platform-floor-390")
    assert console.errors == []
