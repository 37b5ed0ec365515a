"""The calls and recordings pages in Chromium, on one org whose MightyCall is the simulator on
loopback: the call page shows curated fields (the agent's name, the number's label, wait, ring and
talk in words, the events as a timeline, the player); the recordings filters narrow the list; the
list's one player loads nothing until Play is clicked and plays one recording at a time, through
vsync's audio route. Screenshots at 1366×900 and 390×844; no console error anywhere."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy import insert, update

from tests.browser.helpers import Console
from tests.factories import account_of, assign, make_integration, make_number, make_org, make_user
from tests.mightycall.helpers import API_KEY, USER_KEY
from vsync.extensions import db
from vsync.mightycall.simulator import SimulatorServer
from vsync.models import Agent, Call, CallEvent, PhoneNumber, Recording
from vsync.tenancy import platform_bypass

DAY = datetime(2026, 11, 2, tzinfo=UTC)
ADMIN = "admin@elm.test"
AGENTS = {"101": "Ada Agent", "102": "Ben Agent"}
WINDOW = "from=2026-11-01&to=2026-11-03"
SIZES = {"wide": (1366, 900), "phone": (390, 844)}


@pytest.fixture
def elm(app):
    """Org `elm` (Europe/Paris) with two recorded calls from the simulator, one per agent, on its
    labelled number; the first answered with its webhook events. Yields the calls' ids, newest first."""
    with SimulatorServer(seed=5, calls_per_day=40, api_key=API_KEY, user_key=USER_KEY) as server:
        recorded = [c for c in server.simulator.calls_between(DAY, DAY + timedelta(days=1)) if c["callRecord"]]
        number = recorded[0]["businessNumber"]
        truths = [c for c in recorded if c["businessNumber"] == number][:2]
        with app.app_context():
            org_id = make_org("elm", "Europe/Paris")
            make_user(ADMIN, org_slug="elm", role="org_admin")
            number_id = make_number(number)
            assign("elm", number, at=DAY - timedelta(days=1))
            integration_id = make_integration(org_id, base_url=server.base_url, api_key=API_KEY, user_key=USER_KEY)
            account_id = account_of(integration_id)
            call_ids = []
            with platform_bypass("test setup"):
                db.session.execute(update(PhoneNumber).where(PhoneNumber.id == number_id).values(label="Sales line"))
                db.session.add_all(Agent(account_id=account_id, extension=e, display_name=n) for e, n in AGENTS.items())
                for truth, extension in zip(truths, AGENTS, strict=False):
                    started = datetime.fromisoformat(truth["dateTimeUtc"].replace("Z", "+00:00"))
                    call_ids.append(
                        db.session.execute(
                            insert(Call.__table__)
                            .values(
                                account_id=account_id,
                                phone_number_id=number_id,
                                external_id=truth["id"],
                                direction="inbound",
                                status="answered",
                                from_number="+17185550123",
                                to_number=number,
                                started_at=started,
                                answered_at=started + timedelta(seconds=12),
                                wait_ended_at=started + timedelta(seconds=12),
                                ring_ms=11_000,
                                ended_at=started + timedelta(seconds=137),
                                duration_ms=125_000 if extension == "101" else 20_000,
                                agent_extension=extension,
                                raw={},
                            )
                            .returning(Call.__table__.c.id)
                        ).scalar_one()
                    )
                    db.session.execute(
                        insert(Recording.__table__).values(
                            account_id=account_id,
                            phone_number_id=number_id,
                            call_external_id=truth["id"],
                            started_at=started,
                            file_name=f"{truth['id']}.wav",
                            provider_uri=f"{server.url}/recordings/{truth['id']}.wav?expires=1&signature=old",
                            duration_ms=125_000 if extension == "101" else 20_000,
                        )
                    )
                first = truths[0]
                started = datetime.fromisoformat(first["dateTimeUtc"].replace("Z", "+00:00"))
                for n, (event_type, seconds, extension) in enumerate(
                    (("IncomingCall", 0, None), ("IncomingCallRinging", 1, "101"), ("IncomingCallConnected", 12, "101"))
                ):
                    db.session.execute(
                        insert(CallEvent.__table__).values(
                            account_id=account_id,
                            phone_number_id=number_id,
                            guid=f"elm-{n}",
                            call_external_id=first["id"],
                            event_type=event_type,
                            kind={"IncomingCall": "call", "IncomingCallRinging": "ringing"}.get(
                                event_type, "connected"
                            ),
                            extension=extension,
                            occurred_at=started + timedelta(seconds=seconds),
                            call_started_at=started,
                            raw={},
                        )
                    )
                db.session.commit()
            db.session.remove()
        yield call_ids


def _shots(console: Console, name: str) -> None:
    for size, (width, height) in SIZES.items():
        console.page.set_viewport_size({"width": width, "height": height})
        console.shot(f"{name}-{size}")
    console.page.set_viewport_size({"width": 1366, "height": 900})


def test_call_page_recordings_filters_and_one_player_at_a_time(page, live_server, artifacts, elm):
    page.set_default_timeout(10_000)
    console = Console(page, live_server, artifacts)
    audio_requests: list[str] = []
    page.on("request", lambda r: audio_requests.append(r.url) if r.url.endswith("/audio") else None)
    console.sign_in(ADMIN)

    console.open(f"/admin/orgs/elm/calls/?{WINDOW}")
    assert page.locator("td.col-agent_extension span.agent[title='Extension 101']").inner_text() == "Ada Agent"
    with page.expect_navigation():
        page.locator(f"a[href*='calls/details/?id={elm[0]}']").first.click()
    facts = page.locator("#call-facts").inner_text()
    for shown in ("Ada Agent", "Sales line", "Answered", "Inbound", "12 s", "11 s", "2 min 5 s", "+17185550123"):
        assert shown in facts, shown
    assert "Ring Ms" not in page.content() and "Wait Ended At" not in page.content()
    assert page.locator("#call-facts time").first.get_attribute("title").endswith(" UTC")
    assert page.locator("#call-timeline li").all_inner_texts()[-1].endswith("Connected · Ada Agent")
    assert page.locator("audio.call-audio").count() == 1
    _shots(console, "call-detail")

    audio_requests.clear()  # the call page's own player may have read its recording's length
    console.open(f"/admin/orgs/elm/recordings/?{WINDOW}")
    rows = page.locator("button.play-recording")
    assert rows.count() == 2 and page.locator("audio").count() == 1 and audio_requests == []
    assert "Sales line" in page.locator("td.col-number").first.inner_text()
    _shots(console, "recordings")

    page.select_option("select[name=agent]", "102")
    with page.expect_navigation():
        page.click("form.call-filters button[type=submit]")
    assert page.locator("td.col-agent").all_inner_texts() == ["Ben Agent"]
    page.fill("input[name=min_length]", "60")
    with page.expect_navigation():
        page.click("form.call-filters button[type=submit]")
    assert page.locator("button.play-recording").count() == 0  # Ben's call lasted 20 s
    with page.expect_navigation():
        page.click("a:has-text('Clear')")

    first, second = page.locator("button.play-recording").nth(0), page.locator("button.play-recording").nth(1)
    player = page.locator("#recording-player")
    first_src, second_src = first.get_attribute("data-src"), second.get_attribute("data-src")
    first.click()
    expect(first).to_have_text("Playing")
    expect(player).to_have_attribute("src", first_src or "")
    second.click()
    expect(second).to_have_text("Playing")
    expect(player).to_have_attribute("src", second_src or "")
    assert first.inner_text() == "Play"
    assert page.locator("audio").count() == 1  # one player: the second recording replaced the first
    for src in (first_src, second_src):  # each loaded when its Play was clicked, from vsync's route
        deadline = time.monotonic() + 10
        while f"{live_server}{src}" not in audio_requests and time.monotonic() < deadline:
            page.wait_for_timeout(50)
        assert f"{live_server}{src}" in audio_requests
    assert all(not url.startswith("http://127.0.0.1:") or url.startswith(live_server) for url in audio_requests)
    assert console.errors == []
