"""GET /orgs/{org}/numbers and the platform's POST/DELETE of an org's assignment of a number."""

from __future__ import annotations

from tests.api.helpers import audit_rows
from tests.world import A_ONLY, B_ONLY, MOVED, SHARED, T

ASSIGNMENT = "/api/v1/orgs/{org}/numbers/{e164}/assignment"


def _numbers(client, org: str) -> dict[str, dict]:
    response = client.get(f"/api/v1/orgs/{org}/numbers")
    assert response.status_code == 200
    return {number["e164"]: number for number in response.get_json()["data"]}


def test_an_org_lists_its_numbers_with_its_own_periods_only(as_):
    a = _numbers(as_("agent_a"), "org-a")
    assert sorted(a) == [A_ONLY, SHARED, MOVED]
    assert a[MOVED]["assignments"] == [{"assigned_at": "2026-10-03T12:00:00Z", "unassigned_at": "2026-11-02T12:00:00Z"}]
    assert len(a[SHARED]["assignments"]) == 1 and a[SHARED]["assigned"] is True
    b = _numbers(as_("admin_b"), "org-b")
    assert sorted(b) == [B_ONLY, SHARED, MOVED]
    assert b[MOVED]["assignments"] == [{"assigned_at": "2026-11-02T12:00:00Z", "unassigned_at": None}]


def test_numbers_page_by_e164_with_a_cursor(as_):
    client = as_("manager_a")
    first = client.get("/api/v1/orgs/org-a/numbers?limit=2").get_json()
    second = client.get(f"/api/v1/orgs/org-a/numbers?limit=2&cursor={first['next_cursor']}").get_json()
    assert [n["e164"] for n in first["data"] + second["data"]] == [A_ONLY, SHARED, MOVED]
    assert second["next_cursor"] is None


def test_a_platform_key_assigns_a_number_to_an_org_from_a_time_and_it_is_audited(app, world, as_):
    response = as_("platform").post(ASSIGNMENT.format(org="org-a", e164=B_ONLY), json={"at": "2026-11-01T00:00:00Z"})
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["assignments"] == [{"assigned_at": "2026-11-01T00:00:00Z", "unassigned_at": None}]
    assert B_ONLY in _numbers(as_("admin_a"), "org-a")
    assert len(_numbers(as_("admin_b"), "org-b")[B_ONLY]["assignments"]) == 1  # B's own period, untouched
    (row,) = audit_rows(app, world.a, "number.assigned")[-1:]
    assert row.actor == "api key vsk_" + world.keys["platform"].split("_")[1] + " (platform)"
    assert B_ONLY in row.summary and "org-a" in row.summary


def test_a_platform_admin_assigns_now_without_a_body_and_an_overlapping_period_is_a_409(as_):
    client = as_("root")
    assert client.post(ASSIGNMENT.format(org="org-b", e164=A_ONLY)).status_code == 201
    again = client.post(ASSIGNMENT.format(org="org-b", e164=A_ONLY))
    error = again.get_json()["error"]
    assert again.status_code == 409 and error["details"] == {"number": error["message"]}


def test_the_platform_ends_an_assignment_at_a_time_and_the_org_keeps_what_came_before(app, world, as_):
    client = as_("platform")
    response = client.delete(ASSIGNMENT.format(org="org-b", e164=SHARED) + "?at=2026-11-10T00:00:00Z")
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["assignments"][-1]["unassigned_at"] == "2026-11-10T00:00:00Z"
    assert response.get_json()["assigned"] is False
    assert audit_rows(app, world.b, "number.unassigned")
    assert client.delete(ASSIGNMENT.format(org="org-b", e164=SHARED)).status_code == 404
    assert client.delete(ASSIGNMENT.format(org="org-a", e164=MOVED)).status_code == 404  # ended at T already


def test_an_end_before_the_start_or_a_time_without_zone_is_a_400_naming_at(as_):
    client = as_("platform")
    early = client.delete(ASSIGNMENT.format(org="org-a", e164=A_ONLY) + "?at=2020-01-01")
    assert early.status_code == 400 and "at" in early.get_json()["error"]["details"]
    naive = client.post(ASSIGNMENT.format(org="org-a", e164=B_ONLY), json={"at": "2026-11-01T00:00:00"})
    assert naive.status_code == 400 and "at" in naive.get_json()["error"]["details"]


def test_a_bad_e164_is_a_400_and_an_unknown_number_a_404(as_):
    client = as_("platform")
    bad = client.post(ASSIGNMENT.format(org="org-a", e164="12345"))
    assert bad.status_code == 400 and list(bad.get_json()["error"]["details"]) == ["e164"]
    assert client.post(ASSIGNMENT.format(org="org-a", e164="+14155550123")).status_code == 404


def test_org_admins_and_write_keys_may_not_change_assignments(as_):
    for principal in ("admin_a", "write_a"):
        response = as_(principal).post(ASSIGNMENT.format(org="org-a", e164=B_ONLY))
        assert response.status_code == 403
        assert response.get_json()["error"]["details"] == {"role": "requires a platform principal"}
    assert B_ONLY not in _numbers(as_("admin_a"), "org-a")


def test_assignment_routes_act_in_the_org_of_the_url_only(as_):
    """A platform principal acts in the bypass there; the answer still holds that org's periods alone."""
    response = as_("platform").post(ASSIGNMENT.format(org="org-b", e164=MOVED), json={"at": T.isoformat()})
    assert response.status_code == 409  # B holds MOVED from T already
    response = as_("platform").delete(ASSIGNMENT.format(org="org-b", e164=MOVED))
    assert [p["assigned_at"] for p in response.get_json()["assignments"]] == ["2026-11-02T12:00:00Z"]
