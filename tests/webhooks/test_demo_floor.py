"""The demo floor plays calls over real HTTP against the receiver, each event when it is due."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.mightycall.helpers import serve_wsgi
from tests.webhooks.helpers import NOW, calls_state, stored_events
from vsync.mightycall.simulator import WebhookEmitter
from vsync.services.live import floor_state
from vsync.tenancy import tenant
from vsync.webhooks.demo_floor import DemoFloor, main


@pytest.fixture
def live_receiver(inline_app):
    with serve_wsgi(inline_app) as url:
        yield url


def test_the_demo_floor_starts_calls_and_delivers_their_events_as_they_fall_due(live_receiver, acme, inline_app):
    clock = [NOW]
    floor = DemoFloor(
        WebhookEmitter(live_receiver + acme.url, acme.api_key), [acme.number], every=10, seed=3, clock=lambda: clock[0]
    )
    for _ in range(60):  # ten simulated minutes, a tick every ten seconds
        floor.tick()
        clock[0] += timedelta(seconds=10)
    stored = stored_events(inline_app)
    assert floor.failed == 0 and floor.sent == len(stored) > 20
    assert {r.status for r in stored} == {"processed"}
    assert len(calls_state(inline_app)["calls"]) >= 20
    with inline_app.app_context(), tenant(acme.org_id):
        state = floor_state(acme.org_id, now=clock[0])
    assert state.agents and all(a.state in ("available", "ringing", "on_call") for a in state.agents)


def test_the_demo_floor_refuses_to_start_without_a_number():
    with pytest.raises(ValueError, match="business number"):
        DemoFloor(WebhookEmitter("http://127.0.0.1:9/x", "k"), [])


def test_the_command_line_needs_the_receiver_url(capsys):
    with pytest.raises(SystemExit):
        main(["--api-key", "k", "--number", "+12127363100"])
    assert "--url" in capsys.readouterr().err
