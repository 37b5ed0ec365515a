"""POST /orgs/{org}/sync, GET /orgs/{org}/sync-runs and /sync-runs/{id}: starting and following syncs.

The test app has Redis, so a started run waits in the real queue (no worker runs here)."""

from __future__ import annotations

from tests.api.helpers import audit_rows
from vsync.extensions import db
from vsync.models import SyncRun
from vsync.tenancy import platform_bypass

SYNC = "/api/v1/orgs/{org}/sync"
RUNS = "/api/v1/orgs/{org}/sync-runs"


def test_a_manager_starts_a_sync_and_joins_the_run_already_under_way(app, world, as_):
    response = as_("manager_a").post(SYNC.format(org="org-a"), json={"kinds": ["numbers", "calls"]})
    assert response.status_code == 202, response.get_json()
    numbers, calls = response.get_json()["runs"]
    assert (numbers["kind"], numbers["joined"], numbers["status"]) == ("numbers", False, "queued")
    assert numbers["window_start"] is None and numbers["trigger"] == "manual"
    assert (calls["id"], calls["joined"]) == (world.runs["a"], True)  # the world's calls run is queued
    (row,) = audit_rows(app, world.a, "sync.requested")
    assert row.actor == "manager@a.test" and row.target_id == str(numbers["id"])
    with app.app_context(), platform_bypass("test"):
        assert db.session.get(SyncRun, numbers["id"]).requested_by_user_id == world.users["manager_a"]


def test_a_write_key_starts_every_kind_by_default_and_a_backfill_gets_its_window(app, world, as_):
    with app.app_context(), platform_bypass("test"):
        db.session.get(SyncRun, world.runs["b"]).status = "succeeded"
        db.session.commit()
    response = as_("write_b").post(SYNC.format(org="org-b"), json={"since": "2026-11-01", "until": "2026-11-03"})
    assert response.status_code == 202, response.get_json()
    runs = {run["kind"]: run for run in response.get_json()["runs"]}
    assert list(runs) == ["numbers", "agents", "calls", "sms"]
    assert (runs["calls"]["trigger"], runs["calls"]["window_start"], runs["calls"]["window_end"]) == (
        "backfill",
        "2026-11-01T00:00:00Z",
        "2026-11-03T00:00:00Z",
    )
    assert runs["numbers"]["window_start"] is None


def test_a_window_for_a_kind_that_takes_none_or_an_unknown_kind_is_a_400(as_):
    client = as_("admin_a")
    numbers = client.post(SYNC.format(org="org-a"), json={"kinds": ["numbers"], "since": "2026-11-01"})
    assert numbers.status_code == 400 and "since" in numbers.get_json()["error"]["details"]
    unknown = client.post(SYNC.format(org="org-a"), json={"kinds": ["calls", "faxes"]})
    assert unknown.status_code == 400 and "kinds.1" in unknown.get_json()["error"]["details"]
    empty = client.post(SYNC.format(org="org-a"), json={"kinds": []})
    assert empty.status_code == 400 and "kinds" in empty.get_json()["error"]["details"]


def test_another_backfill_window_while_one_runs_is_a_409(as_):
    client = as_("admin_a")
    # Closed windows: one left open ends now, and from a fixed start grows past the three-year cap.
    first = client.post(SYNC.format(org="org-a"), json={"kinds": ["sms"], "since": "2026-11-01", "until": "2026-11-03"})
    assert first.status_code == 202, first.get_json()
    other = client.post(SYNC.format(org="org-a"), json={"kinds": ["sms"], "since": "2026-10-01", "until": "2026-11-03"})
    assert other.status_code == 409, other.get_json()


def test_runs_are_listed_newest_first_with_a_cursor_and_read_one_by_one(world, as_):
    client = as_("manager_a")
    started = client.post(SYNC.format(org="org-a"), json={"kinds": ["numbers", "agents"]}).get_json()["runs"]
    first = client.get(RUNS.format(org="org-a") + "?limit=2").get_json()
    rest = client.get(RUNS.format(org="org-a") + f"?limit=2&cursor={first['next_cursor']}").get_json()
    assert [run["id"] for run in first["data"] + rest["data"]] == [started[1]["id"], started[0]["id"], world.runs["a"]]
    assert rest["next_cursor"] is None
    one = client.get(f"{RUNS.format(org='org-a')}/{started[0]['id']}")
    assert one.status_code == 200 and one.get_json()["kind"] == "numbers"


def test_another_orgs_run_is_a_404_and_a_cursor_of_one_org_is_refused_in_the_other(world, as_):
    client = as_("root")
    missing = client.get(f"{RUNS.format(org='org-a')}/{world.runs['b']}")
    assert missing.status_code == 404
    assert missing.get_json()["error"]["details"] == {"run_id": f"No sync run {world.runs['b']}."}
    client.post(SYNC.format(org="org-a"), json={"kinds": ["numbers"]})
    cursor = client.get(RUNS.format(org="org-a") + "?limit=1").get_json()["next_cursor"]
    replayed = client.get(RUNS.format(org="org-b") + f"?limit=1&cursor={cursor}")
    assert replayed.status_code == 400 and "cursor" in replayed.get_json()["error"]["details"]


def test_read_keys_and_agents_may_not_start_syncs_and_agents_may_not_follow_them(as_):
    assert as_("read_a").post(SYNC.format(org="org-a"), json={}).get_json()["error"]["details"] == {
        "scope": "requires 'write'"
    }
    agent = as_("agent_a")
    assert agent.post(SYNC.format(org="org-a"), json={}).status_code == 403
    assert agent.get(RUNS.format(org="org-a")).status_code == 403
