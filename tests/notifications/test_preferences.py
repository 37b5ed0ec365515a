"""Each person's preferences in each org: role defaults, changed on their own console page, and a
digest's one-click unsubscribe link that turns exactly one preference off, once."""

from __future__ import annotations

from sqlalchemy import select

from tests.helpers import csrf_token, login
from tests.world import BOTH, USERS
from vsync.extensions import db
from vsync.models import AuditEvent, Membership, OutboundEmail
from vsync.services.notifications import preferences
from vsync.tenancy import tenant


def prefs(app, org_id: int, user_id: int) -> dict[str, str]:
    with app.app_context(), tenant(org_id):
        membership = db.session.scalar(select(Membership).where(Membership.user_id == user_id))
        return preferences.preferences_of(membership)


def test_defaults_follow_the_role(app, world):
    assert prefs(app, world.a, world.users["admin_a"])["digest"] == "daily"
    assert prefs(app, world.a, world.users["admin_a"])["alert_silence"] == "on"
    assert prefs(app, world.a, world.users["agent_a"])["digest"] == "weekly"
    assert prefs(app, world.a, world.users["agent_a"])["alert_service_level"] == "off"
    assert prefs(app, world.a, world.users["manager_a"])["sync_failures"] == "off"
    assert prefs(app, world.a, world.users["manager_a"])["alert_abandon_rate"] == "on"
    assert prefs(app, world.a, world.users["manager_a"])["alert_webhook_silence"] == "off"  # admins fix integrations
    assert prefs(app, world.a, world.users["admin_a"])["alert_sync_failing"] == "on"


def save(client, data: dict) -> object:
    path = "/admin/orgs/org-a/notifications/"
    return client.post(path, data={**data, "csrf_token": csrf_token(client, path)})


FORM = {
    "digest": "weekly",
    "digest_hour": "7",
    "alert_service_level": "off",
    "alert_silence": "on",
    "alert_abandon_rate": "on",
    "alert_missed_calls": "off",
    "alert_sync_failing": "off",
    "alert_webhook_silence": "on",
    "sync_failures": "on",
    "account_security": "on",
    "support_tickets": "on",
}


def test_a_person_changes_their_own_preferences_in_one_org_only(app, world):
    client = app.test_client()
    login(client, BOTH)
    page = client.get("/admin/orgs/org-a/notifications/").get_data(as_text=True)
    assert "My notifications in Org-A" in page
    assert save(client, FORM).status_code == 302
    assert prefs(app, world.a, world.users["both"]) == FORM
    assert prefs(app, world.b, world.users["both"])["digest"] == "weekly"  # B: their agent default, untouched
    assert prefs(app, world.b, world.users["both"])["digest_hour"] == "8"
    assert prefs(app, world.a, world.users["manager_a"])["digest"] == "daily"  # nobody else's changed
    with app.app_context(), tenant(world.a):
        [event] = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "notifications.preferences_changed"))
        assert "digest daily → weekly" in event.summary and event.actor == BOTH


def test_a_value_out_of_range_is_a_form_error_and_changes_nothing(app, world):
    client = app.test_client()
    login(client, USERS["admin_a"][0])
    response = save(client, {**FORM, "digest": "hourly"})
    assert response.status_code == 400
    assert prefs(app, world.a, world.users["admin_a"])["digest"] == "daily"


def test_an_unknown_key_is_refused_by_the_service(app, world):
    import pytest

    from vsync.errors import ValidationError

    with app.app_context(), tenant(world.a):
        membership = db.session.scalar(select(Membership).where(Membership.user_id == world.users["admin_a"]))
        with pytest.raises(ValidationError):
            preferences.set_preferences(membership, {"digest": "off", "pager": "on"})
        db.session.rollback()
    assert prefs(app, world.a, world.users["admin_a"])["digest"] == "daily"


def digest_message(app, org_id: int, user_id: int, key: str = "digest") -> str:
    """A sent digest's outbox row for the person; the path of its unsubscribe link."""
    with app.app_context(), tenant(org_id):
        row = OutboundEmail(
            org_id=org_id,
            user_id=user_id,
            kind="digest",
            dedupe_key=f"test:{user_id}",
            to_address="x@example.com",
            subject="s",
            template="test",
            context={},
            status="sent",
        )
        db.session.add(row)
        db.session.commit()
        return f"/unsubscribe/{preferences.unsubscribe_token(org_id, row.id, key)}"


def test_the_unsubscribe_link_turns_off_exactly_one_preference_once(app, world):
    path = digest_message(app, world.a, world.users["admin_a"])
    client = app.test_client()
    before = prefs(app, world.a, world.users["admin_a"])
    assert client.get(path).status_code == 200  # a mail scanner's fetch changes nothing
    assert prefs(app, world.a, world.users["admin_a"]) == before
    response = client.post(path, data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200 and "is now off" in response.get_data(as_text=True)
    assert prefs(app, world.a, world.users["admin_a"]) == {**before, "digest": "off"}
    again = client.post(path, data={"List-Unsubscribe": "One-Click"})
    assert again.status_code == 400 and "used already" in again.get_data(as_text=True)


def test_a_tampered_unsubscribe_link_is_refused_and_changes_nothing(app, world):
    path = digest_message(app, world.a, world.users["admin_a"])
    before_a, before_b = prefs(app, world.a, world.users["admin_a"]), prefs(app, world.b, world.users["admin_b"])
    client = app.test_client()
    for tampered in (path[:-3] + "xyz", path.replace("/unsubscribe/", "/unsubscribe/x")):
        response = client.post(tampered)
        assert response.status_code == 400 and "not valid" in response.get_data(as_text=True)
    with app.test_request_context():
        # a validly signed link naming org B and org A's message finds no message in B
        forged = "/unsubscribe/" + preferences.unsubscribe_token(world.b, 1, "digest")
    assert client.post(forged).status_code == 404
    assert prefs(app, world.a, world.users["admin_a"]) == before_a
    assert prefs(app, world.b, world.users["admin_b"]) == before_b
