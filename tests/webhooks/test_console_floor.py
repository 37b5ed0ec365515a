"""The console's live floor, server side: the JSON the page polls for each role, two orgs that never
see each other's agents, the platform floor across orgs, and calls in progress in the calls list.

The floor is read at the clock's `now` (it is live), so the events are played relative to it."""

from __future__ import annotations

import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import requests

from tests.factories import PASSWORD, make_user
from tests.helpers import DATABASE_URL, ENCRYPTION_KEY, login
from tests.webhooks.test_live import S, play_until
from vsync.mightycall.parsing import parse_datetime
from vsync.models.types import utcnow

FLOOR = "/admin/orgs/{org}/floor/data"


@pytest.fixture
def busy_acme(hook, acme, globex, inline_app):
    """Acme: extension 101 on a call, 102 ringing for a waiting caller; Globex: nothing. Members of each."""
    with inline_app.app_context():
        for role in ("org_admin", "manager", "agent"):
            make_user(f"{role}@acme.test", org_slug="acme", role=role, extension="101" if role == "agent" else None)
        make_user("org_admin@globex.test", org_slug="globex")
        make_user("root@floor.test", platform_admin=True)
    now = utcnow().replace(microsecond=0)
    talking = acme.events("answered", seed=1, extension="101", started_at=now - 60 * S)
    ringing = acme.events("missed", seed=2, extension="102", started_at=now - 10 * S)
    play_until(hook, acme, talking, now)
    play_until(hook, acme, ringing, now)
    return {"talking": talking[0]["Body"]["Id"], "ringing": ringing[0]["Body"]["Id"], "now": now}


def _as(app, email: str):
    client = app.test_client()
    assert login(client, email).status_code == 302
    return client


def _states(body) -> dict[str, str]:
    return {agent["extension"]: agent["state"] for agent in body["agents"]}


@pytest.mark.parametrize("role", ["org_admin", "manager"])
def test_admins_and_managers_see_every_agent_of_their_org_and_the_waiting_callers(inline_app, busy_acme, role):
    body = _as(inline_app, f"{role}@acme.test").get(FLOOR.format(org="acme")).get_json()
    assert _states(body) == {"101": "on_call", "102": "ringing"}
    assert body["counts"] == {"available": 0, "ringing": 1, "on_call": 1, "offline": 0, "unknown": 0}
    assert body["calls_waiting"] == 1 and len(body["waiting"]) == 1 and body["longest_wait_seconds"] >= 10
    on_call = next(a for a in body["agents"] if a["extension"] == "101")
    assert on_call["since"] == (busy_acme["now"] - 51 * S).isoformat().replace("+00:00", "Z")
    assert on_call["number"] == "+17185550123"


def test_an_agent_sees_only_their_own_state_and_the_queues_figures(inline_app, busy_acme):
    body = _as(inline_app, "agent@acme.test").get(FLOOR.format(org="acme")).get_json()
    assert _states(body) == {"101": "on_call"}
    assert body["counts"]["ringing"] == 0 and body["counts"]["on_call"] == 1
    assert body["waiting"] == [] and body["calls_waiting"] == 1 and body["longest_wait_seconds"] >= 10


def test_another_orgs_floor_is_out_of_reach_and_its_own_shows_none_of_acmes_agents(inline_app, busy_acme):
    client = _as(inline_app, "org_admin@globex.test")
    crossing = client.get(FLOOR.format(org="acme"))
    assert crossing.status_code == 302 and crossing.headers["Location"] == "/admin/"
    own = client.get(FLOOR.format(org="globex")).get_json()
    assert own["agents"] == [] and own["calls_waiting"] == 0 and set(own["counts"].values()) == {0}
    page = client.get("/admin/orgs/globex/floor/").get_data(as_text=True)
    assert "+17185550123" not in page and '"101"' not in page


def test_the_platform_floor_counts_each_org_in_its_own_scope_and_links_into_its_floor(inline_app, busy_acme):
    body = _as(inline_app, "root@floor.test").get("/admin/platform/floor/data").get_json()
    orgs = {row["slug"]: row for row in body["orgs"]}
    assert orgs["acme"]["counts"]["on_call"] == 1 and orgs["acme"]["calls_waiting"] == 1
    assert orgs["acme"]["url"] == "/admin/orgs/acme/floor/"
    assert set(orgs["globex"]["counts"].values()) == {0} and orgs["globex"]["calls_waiting"] == 0
    refused = _as(inline_app, "org_admin@acme.test").get("/admin/platform/floor/data")
    assert refused.status_code == 403


def test_a_call_in_progress_shows_as_in_progress_with_a_running_duration_in_the_calls_list(inline_app, busy_acme):
    page = _as(inline_app, "org_admin@acme.test").get("/admin/orgs/acme/calls/").get_data(as_text=True)
    assert page.count("In progress") == 2  # the call being talked and the one still ringing
    started = (busy_acme["now"] - 60 * S).isoformat().replace("+00:00", "Z")
    assert f'data-since="{started}"' in page and "console/live.js" in page


def test_the_wallboard_is_the_floor_without_the_consoles_navigation(inline_app, busy_acme):
    client = _as(inline_app, "manager@acme.test")
    page = client.get("/admin/orgs/acme/floor/").get_data(as_text=True)
    board = client.get("/admin/orgs/acme/floor/?wallboard=1").get_data(as_text=True)
    assert "admin-navbar-collapse" in page and "?wallboard=1" in page
    assert "admin-navbar-collapse" not in board and 'class="wallboard"' in board and "Exit wallboard" in board


def test_an_agent_of_the_org_not_heard_of_in_the_window_is_offline(inline_app, busy_acme, acme):
    from vsync.extensions import db
    from vsync.models import Agent
    from vsync.tenancy import platform_bypass

    with inline_app.app_context(), platform_bypass("test setup"):
        db.session.add(Agent(account_id=acme.account_id, extension="109", display_name="Ivy Offline"))
        db.session.commit()
    body = _as(inline_app, "org_admin@acme.test").get(FLOOR.format(org="acme")).get_json()
    assert _states(body)["109"] == "offline" and body["counts"]["offline"] == 1
    assert next(a for a in body["agents"] if a["extension"] == "109")["since"] is None


def test_old_events_do_not_make_a_call_in_progress(inline_app, acme, hook):
    now = utcnow().replace(microsecond=0)
    events = acme.events("answered", extension="101", started_at=now - timedelta(hours=2))
    play_until(hook, acme, events, now - timedelta(hours=2) + 20 * S)  # no Completed: its end was lost
    with inline_app.app_context():
        make_user("org_admin@acme.test", org_slug="acme")
    page = _as(inline_app, "org_admin@acme.test").get("/admin/orgs/acme/calls/").get_data(as_text=True)
    assert "In progress" not in page


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def gunicorn_two_workers(tmp_path):
    """vsync under gunicorn with two worker processes on the test database, without Redis (webhook
    events processed in the request, as on the embedded default); its access log names each
    request's worker pid."""
    port, log = _free_port(), tmp_path / "access.log"
    env = {
        "PATH": os.environ["PATH"],
        "DATABASE_URL": DATABASE_URL,
        "SECRET_KEY": "floor-test-secret",
        "VSYNC_ENCRYPTION_KEYS": ENCRYPTION_KEY,
        "VSYNC_ENV": "development",
    }
    server = subprocess.Popen(
        [
            str(pathlib.Path(sys.executable).parent / "gunicorn"),
            "--workers=2",
            "--graceful-timeout=2",
            "--preload",  # the app loaded once, before the workers fork
            f"--bind=127.0.0.1:{port}",
            f"--access-logfile={log}",
            "--access-logformat=%(p)s %(U)s %(s)s",
            "wsgi:app",
        ],
        env=env,
        cwd=pathlib.Path(__file__).resolve().parents[2],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    try:
        while True:
            try:
                requests.get(f"{url}/login", timeout=5)
                break
            except requests.RequestException:  # not listening yet, or its workers still loading the app
                assert server.poll() is None and time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.1)
        yield url, log
    finally:
        server.send_signal(signal.SIGQUIT)  # gunicorn's quick shutdown
        try:
            server.wait(timeout=5)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def test_every_gunicorn_worker_serves_the_same_floor_right_after_an_event(inline_app, acme, gunicorn_two_workers):
    """The floor lives in the database: an event received by one worker is on the floor whichever
    worker answers the next poll. Polls go four at a time, so both workers answer them."""
    url, log = gunicorn_two_workers
    with inline_app.app_context():
        make_user("org_admin@acme.test", org_slug="acme")
    session = requests.Session()
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', session.get(f"{url}/login", timeout=5).text)
    assert token
    signed_in = session.post(
        f"{url}/login",
        data={"email": "org_admin@acme.test", "password": PASSWORD, "csrf_token": token.group(1)},
        timeout=5,
    )
    assert signed_in.ok

    def polls() -> list[dict]:
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda _: session.get(f"{url}{FLOOR.format(org='acme')}", timeout=10), range(12)))
        assert all(answer.status_code == 200 for answer in answers)
        return [answer.json() for answer in answers]

    assert all(_states(body) == {} for body in polls())
    now = utcnow().replace(microsecond=0)
    events = acme.events("missed", extension="103", started_at=now - 2 * S)
    due = [event for event in events if parse_datetime(event["Timestamp"]) <= now]
    assert requests.post(f"{url}{acme.url}", json=due, timeout=10).status_code == 200
    assert all(_states(body) == {"103": "ringing"} for body in polls())
    served = [line.split() for line in log.read_text().splitlines()]
    assert len({pid for pid, path, _status in served if path.endswith("/floor/data")}) == 2
