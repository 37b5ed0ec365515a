"""GET and PATCH /orgs/{org}/me/preferences and /me/preferences: a signed-in person's own notification
preferences, per org; keys and non-members are refused with a clear 403; bad input changes nothing."""

from __future__ import annotations

from tests.api.helpers import audit_rows

MINE = "/api/v1/orgs/{org}/me/preferences"
PLATFORM = "/api/v1/me/preferences"


def test_each_person_reads_and_changes_their_own_preferences_in_one_org_only(app, world, as_):
    both = as_("both")  # manager of A, agent of B
    in_a = both.get(MINE.format(org="org-a")).get_json()
    assert (in_a["role"], in_a["preferences"]["digest"], in_a["preferences"]["alert_silence"]) == (
        "manager",
        "daily",
        "on",
    )
    assert in_a["defaults"] == in_a["preferences"]
    changed = both.patch(
        MINE.format(org="org-a"), json={"digest": "weekly", "digest_hour": "7", "alert_silence": "off"}
    )
    assert changed.status_code == 200, changed.get_json()
    assert {k: changed.get_json()["preferences"][k] for k in ("digest", "digest_hour", "alert_silence")} == {
        "digest": "weekly",
        "digest_hour": "7",
        "alert_silence": "off",
    }
    assert both.get(MINE.format(org="org-a")).get_json()["preferences"]["digest"] == "weekly"
    in_b = both.get(MINE.format(org="org-b")).get_json()
    assert (in_b["role"], in_b["preferences"]["digest"], in_b["preferences"]["digest_hour"]) == ("agent", "weekly", "8")
    assert as_("manager_a").get(MINE.format(org="org-a")).get_json()["preferences"]["digest"] == "daily"  # others' own
    (row,) = audit_rows(app, world.a, "notifications.")
    assert row.summary == "digest daily → weekly, digest_hour 8 → 7, alert_silence on → off"
    assert as_("agent_a").get(MINE.format(org="org-b")).status_code == 404

    for body, field in (
        ({"digest": "hourly"}, "digest"),
        ({"digest_hour": "24"}, "digest_hour"),
        ({"digest": "off", "nope": "on"}, "nope"),
        ({}, "body"),
    ):
        response = both.patch(MINE.format(org="org-a"), json=body)
        assert response.status_code == 400, body
        assert field in response.get_json()["error"]["details"], response.get_json()
    assert both.get(MINE.format(org="org-a")).get_json()["preferences"]["digest"] == "weekly"
    assert len(audit_rows(app, world.a, "notifications.")) == 1


def test_keys_and_platform_admins_outside_the_org_have_no_preferences_there_but_platform_admins_have_their_own(
    app, as_
):
    for who, method in (("read_a", "get"), ("write_a", "patch"), ("platform", "get")):
        response = getattr(as_(who), method)(MINE.format(org="org-a"), json={"digest": "off"})
        assert response.status_code == 403, who
        assert response.get_json()["error"]["code"] == "person_required"
    outside = as_("root").get(MINE.format(org="org-a"))
    assert outside.status_code == 403 and outside.get_json()["error"]["code"] == "not_a_member"

    root = as_("root")
    assert root.get(PLATFORM).get_json() == {"preferences": {"sync_failures": "on"}}
    assert root.patch(PLATFORM, json={"sync_failures": "off"}).get_json() == {"preferences": {"sync_failures": "off"}}
    assert root.get(PLATFORM).get_json() == {"preferences": {"sync_failures": "off"}}
    assert root.patch(PLATFORM, json={"sync_failures": "sometimes"}).status_code == 400
    assert root.patch(PLATFORM, json={"digest": "off"}).status_code == 400
    assert as_("admin_a").get(PLATFORM).status_code == 403
    assert as_("platform").get(PLATFORM).get_json()["error"]["code"] == "person_required"
    assert [row.action for row in audit_rows(app, None, "notifications.")] == [
        "notifications.platform_preferences_changed"
    ]
