"""GET /orgs/{org}/alerts/rules, PUT /orgs/{org}/alerts/rules/{kind}, GET and PUT
/orgs/{org}/alerts/business-hours, GET /orgs/{org}/alerts/history: managers read, org admins change,
agents are refused; bad input is a 400 naming the field and changes nothing; one org never reaches another's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from tests.api.helpers import audit_rows
from vsync.extensions import db
from vsync.models import AlertEvent, AlertRule
from vsync.tenancy import tenant

RULES = "/api/v1/orgs/{org}/alerts/rules"
HOURS = "/api/v1/orgs/{org}/alerts/business-hours"
HISTORY = "/api/v1/orgs/{org}/alerts/history"
T = datetime(2026, 11, 5, 15, 0, tzinfo=UTC)  # after the world's own firing (2026-11-02 12:00)


def test_org_admins_save_rules_managers_read_them_agents_and_read_keys_are_refused(app, world, as_):
    saved = as_("admin_a").put(RULES.format(org="org-a") + "/silence", json={"window_minutes": 30})
    assert saved.status_code == 200, saved.get_json()
    assert saved.get_json() | {"created_at": None} == {
        "kind": "silence",
        "description": "No calls",
        "window_minutes": 30,
        "threshold": 0.0,
        "enabled": True,
        "created_at": None,
    }
    changed = as_("root").put(
        RULES.format(org="org-a") + "/service_level", json={"window_minutes": 60, "threshold": 0.8, "enabled": False}
    )
    assert changed.status_code == 200, changed.get_json()
    listed = as_("manager_a").get(RULES.format(org="org-a")).get_json()
    assert [(r["kind"], r["window_minutes"], r["threshold"], r["enabled"]) for r in listed["data"]] == [
        ("service_level", 60, 0.8, False),
        ("silence", 30, 0.0, True),
    ]
    assert {"service_level", "silence"} <= set(listed["kinds"])
    assert as_("read_a").get(RULES.format(org="org-a")).status_code == 200
    assert as_("agent_a").get(RULES.format(org="org-a")).status_code == 403
    for who in ("manager_a", "read_a", "agent_a"):
        refused = as_(who).put(RULES.format(org="org-a") + "/silence", json={"window_minutes": 5})
        assert refused.status_code == 403, who
    b_rules = as_("admin_b").get(RULES.format(org="org-b")).get_json()["data"]
    assert [(r["kind"], r["window_minutes"], r["enabled"]) for r in b_rules] == [("silence", 30, False)]  # B's own
    assert as_("admin_b").put(RULES.format(org="org-a") + "/silence", json={"window_minutes": 5}).status_code == 404
    assert as_("manager_a").get(RULES.format(org="org-a")).get_json()["data"][1]["window_minutes"] == 30
    assert [row.action for row in audit_rows(app, world.a, "alerts.")] == ["alerts.rule_saved"] * 2


def test_a_bad_rule_is_a_400_naming_the_field_and_changes_nothing(app, world, as_):
    client = as_("admin_a")
    assert client.put(RULES.format(org="org-a") + "/silence", json={"window_minutes": 30}).status_code == 200
    for kind, body, field in (
        ("weather", {"window_minutes": 30}, "kind"),
        ("service_level", {"window_minutes": 30, "threshold": -0.5}, "threshold"),
        ("service_level", {"window_minutes": 30}, "threshold"),  # the kind needs one
        ("service_level", {"window_minutes": 30, "threshold": 1.5}, "threshold"),
        ("silence", {"window_minutes": 0}, "window_minutes"),
        ("silence", {"window_minutes": 1441}, "window_minutes"),
        ("silence", {"window_minutes": 7.5}, "window_minutes"),
        ("silence", {"window_minutes": "thirty"}, "window_minutes"),
        ("silence", {}, "window_minutes"),
        ("silence", {"window_minutes": 5, "enabled": "maybe"}, "enabled"),
        ("silence", {"window_minutes": 5, "window": 5}, "window"),
    ):
        response = client.put(RULES.format(org="org-a") + f"/{kind}", json=body)
        assert response.status_code == 400, (kind, body)
        error = response.get_json()["error"]
        assert error["message"] and field in error["details"], (kind, body, error)
    rules = client.get(RULES.format(org="org-a")).get_json()["data"]
    assert [(r["kind"], r["window_minutes"]) for r in rules] == [("silence", 30)]
    assert len(audit_rows(app, world.a, "alerts.")) == 1


def test_business_hours_are_read_by_managers_and_replaced_by_org_admins_in_the_orgs_zone(app, world, as_):
    b_hours = as_("manager_b").get(HOURS.format(org="org-b")).get_json()
    closed = ("tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
    assert b_hours == {"timezone": "America/New_York", "monday": "09:00-17:00", **dict.fromkeys(closed, None)}
    saved = as_("admin_a").put(HOURS.format(org="org-a"), json={"monday": "08:00-12:00", "saturday": "10:00-24:00"})
    assert saved.status_code == 200, saved.get_json()
    assert (saved.get_json()["monday"], saved.get_json()["tuesday"], saved.get_json()["saturday"]) == (
        "08:00-12:00",
        None,
        "10:00-24:00",
    )
    assert as_("manager_a").get(HOURS.format(org="org-a")).get_json() == saved.get_json()
    assert as_("manager_b").get(HOURS.format(org="org-b")).get_json() == b_hours  # B's own, unchanged
    assert as_("agent_a").get(HOURS.format(org="org-a")).status_code == 403
    assert as_("manager_a").put(HOURS.format(org="org-a"), json={"monday": "07:00-08:00"}).status_code == 403
    assert as_("admin_a").put(HOURS.format(org="org-b"), json={"monday": "07:00-08:00"}).status_code == 404
    for body, field in (
        ({"monday": "17:00-09:00"}, "monday"),
        ({"tuesday": "9-5"}, "tuesday"),
        ({"friday": "09:00-25:00"}, "friday"),
        ({"holiday": "09:00-17:00"}, "holiday"),
    ):
        response = as_("admin_a").put(HOURS.format(org="org-a"), json=body)
        assert response.status_code == 400, body
        assert field in response.get_json()["error"]["details"], response.get_json()
    assert as_("manager_a").get(HOURS.format(org="org-a")).get_json() == saved.get_json()


def _firings(app, org_id: int, starts: list[datetime]) -> None:
    with app.app_context(), tenant(org_id):
        rule = db.session.scalars(select(AlertRule)).one()  # the world's
        for i, start in enumerate(starts):
            resolved = None if i == len(starts) - 1 else start + timedelta(minutes=20)
            db.session.add(
                AlertEvent(
                    org_id=org_id,
                    rule_id=rule.id,
                    kind=rule.kind,
                    fired_at=start,
                    fired_value=0.0,
                    resolved_at=resolved,
                )
            )
        db.session.commit()


def test_alert_history_pages_newest_first_keeps_a_window_and_holds_only_the_orgs_own(app, world, as_):
    _firings(app, world.a, [T - timedelta(days=2), T - timedelta(hours=3), T - timedelta(hours=1), T])
    _firings(app, world.b, [T - timedelta(hours=2)])
    client = as_("manager_a")
    first = client.get(HISTORY.format(org="org-a") + "?limit=3").get_json()
    assert [e["fired_at"] for e in first["data"]] == [
        "2026-11-05T15:00:00Z",
        "2026-11-05T14:00:00Z",
        "2026-11-05T12:00:00Z",
    ]
    assert [e["state"] for e in first["data"]] == ["firing", "resolved", "resolved"]
    assert first["data"][0]["kind"] == "silence" and first["data"][0]["resolved_at"] is None
    rest = client.get(HISTORY.format(org="org-a") + f"?limit=3&cursor={first['next_cursor']}").get_json()
    assert [e["fired_at"] for e in rest["data"]] == ["2026-11-03T15:00:00Z", "2026-11-02T12:00:00Z"]
    assert rest["next_cursor"] is None
    window = client.get(HISTORY.format(org="org-a") + "?from=2026-11-05T13:00:00Z&to=2026-11-05T15:00:00Z").get_json()
    assert [e["fired_at"] for e in window["data"]] == ["2026-11-05T14:00:00Z"]
    days = client.get(HISTORY.format(org="org-a") + "?from=2026-11-03&to=2026-11-04").get_json()  # local dates
    assert [e["fired_at"] for e in days["data"]] == ["2026-11-03T15:00:00Z"]
    b_history = as_("admin_b").get(HISTORY.format(org="org-b")).get_json()["data"]
    assert [e["fired_at"] for e in b_history] == ["2026-11-05T13:00:00Z", "2026-11-02T12:00:00Z"]
    assert as_("agent_a").get(HISTORY.format(org="org-a")).status_code == 403
    assert as_("manager_b").get(HISTORY.format(org="org-a")).status_code == 404
    for query, field in (
        ("?from=yesterday", "from"),
        ("?from=2026-11-03&to=2026-11-01", "from"),
        ("?limit=0", "limit"),
        ("?cursor=forged", "cursor"),
        (f"?from=2026-11-01&cursor={first['next_cursor']}", "cursor"),  # another query's cursor
        ("?kind=silence", "kind"),
    ):
        response = client.get(HISTORY.format(org="org-a") + query)
        assert response.status_code == 400, query
        assert field in response.get_json()["error"]["details"], (query, response.get_json())
