"""Sessions end on the server: a cookie saved before a session-ending event is refused when replayed
after it, by the console (a redirect to sign in) and by the API's cookie path (a JSON 401), in the
two-org world. Times are inputs: a session starts at a chosen instant relative to the test's own now.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask_login.utils import _create_identifier
from sqlalchemy import select

from tests.factories import PASSWORD
from tests.helpers import csrf_token, login
from tests.world import EMAILS, api_as
from vsync.auth.principals import load_user
from vsync.crypto import secret_digest
from vsync.extensions import db
from vsync.models import Membership, User, UserSession
from vsync.models.types import utcnow
from vsync.services import members, orgs, sessions
from vsync.tenancy import platform_bypass


def signed_in(app, world, who: str):
    """A client (a device) signed in as `who`, and a copy of its session cookie."""
    client = api_as(app.test_client(), who, world)
    return client, client.get_cookie("session").value


def replayed(app, cookie: str) -> tuple:
    """What a fresh client carrying only the saved cookie gets from the console and from the API."""
    other = app.test_client()
    other.set_cookie("session", cookie)
    return other.get("/admin/"), other.get("/api/v1/me")


def assert_refused(app, cookie: str) -> None:
    page, api = replayed(app, cookie)
    assert page.status_code == 302 and page.headers["Location"].startswith("/login"), page.headers.get("Location")
    assert api.status_code == 401 and api.get_json()["error"]["code"] == "unauthorized"


def assert_accepted(app, cookie: str, email: str) -> None:
    page, api = replayed(app, cookie)
    assert not page.headers.get("Location", "").startswith("/login")
    assert api.status_code == 200 and api.get_json()["principal"]["email"] == email


def post(client, path: str, data: dict | None = None, token_page: str = "/admin/"):
    return client.post(path, data={**(data or {}), "csrf_token": csrf_token(client, token_page)})


def user_id(app, email: str) -> int:
    with app.app_context(), platform_bypass("test"):
        return db.session.scalar(select(User.id).where(User.email == email))


def membership_id(app, org_id: int, email: str) -> int:
    with app.app_context(), platform_bypass("test"):
        return db.session.scalar(
            select(Membership.id).join(User).where(Membership.org_id == org_id, User.email == email)
        )


def test_a_signed_in_cookie_is_accepted_when_replayed(app, world):
    _client, cookie = signed_in(app, world, "agent_a")
    assert_accepted(app, cookie, EMAILS["agent_a"])


# Each event, done by whoever does it, to agent A (a member of org A only).
def _sign_out(app, world, device):
    assert post(device, "/logout").status_code == 302


def _sign_out_everywhere(app, world, device):
    response = post(device, "/logout/everywhere")
    assert response.headers["Location"] == "/login"
    assert "signed out everywhere" in device.get("/login").get_data(as_text=True)


def _platform(app, world, path: str, data: dict):
    root = api_as(app.test_client(), "root", world)
    uid = user_id(app, EMAILS["agent_a"])
    return post(
        root,
        f"/admin/platform/users/{path}",
        {k: v.format(uid) for k, v in data.items()},
        f"/admin/platform/users/details/?id={uid}",
    )


def _signed_out_by_the_platform(app, world, device):
    _platform(app, world, "sign-out", {"signout-row_id": "{}"})


def _reset_by_the_platform(app, world, device):
    _platform(app, world, "reset", {"reset-row_id": "{}"})


def _deactivated(app, world, device):
    _platform(app, world, "active", {"active-row_id": "{}"})
    with app.app_context(), platform_bypass("test"):
        assert db.session.get(User, user_id(app, EMAILS["agent_a"])).active is False


def _last_membership_removed(app, world, device):
    admin = api_as(app.test_client(), "admin_a", world, csrf=True)
    assert admin.delete(f"/api/v1/orgs/org-a/members/{world.agent_memberships['a']}").status_code == 204


def _password_changed(app, world, device):
    """A reset by the platform ends the sessions; the person signs in again (the old password works until
    the link is used), keeps that cookie, and then sets a new password with the link."""
    with app.app_context(), platform_bypass("test: a platform admin resets"):
        token = members.reset_password(db.session.get(User, user_id(app, EMAILS["agent_a"])))
        db.session.commit()
    again, cookie = signed_in(app, world, "agent_a")
    assert_accepted(app, cookie, EMAILS["agent_a"])
    page = app.test_client()
    form = {
        "password": "a brand new pw",
        "confirm": "a brand new pw",
        "csrf_token": csrf_token(page, f"/set-password/{token}"),
    }
    assert page.post(f"/set-password/{token}", data=form).status_code == 302
    return cookie


EVENTS = {
    "sign-out": _sign_out,
    "sign out everywhere": _sign_out_everywhere,
    "sign out everywhere by a platform admin": _signed_out_by_the_platform,
    "password reset by a platform admin": _reset_by_the_platform,
    "password changed": _password_changed,
    "deactivation": _deactivated,
    "last membership removed": _last_membership_removed,
}


@pytest.mark.parametrize("event", EVENTS)
def test_a_cookie_saved_before_a_session_ending_event_is_refused_after_it(app, world, event):
    device, cookie = signed_in(app, world, "agent_a")
    assert_accepted(app, cookie, EMAILS["agent_a"])
    cookie = EVENTS[event](app, world, device) or cookie
    assert_refused(app, cookie)
    if event == "deactivation":
        with app.app_context(), platform_bypass("test"):
            orgs.set_user_active(db.session.get(User, user_id(app, EMAILS["agent_a"])), True)
            db.session.commit()
        assert_refused(app, cookie)  # reactivating does not bring an ended session back


@pytest.mark.parametrize(
    "event",
    [
        "sign out everywhere by a platform admin",
        "password reset by a platform admin",
        "deactivation",
        "last membership removed",
    ],
)
def test_an_event_of_one_person_leaves_everyone_elses_sessions_in_both_orgs(app, world, event):
    _device, cookie = signed_in(app, world, "agent_a")
    others = {who: signed_in(app, world, who)[1] for who in ("admin_a", "agent_b", "both")}
    EVENTS[event](app, world, None)
    assert_refused(app, cookie)
    for who, saved in others.items():
        assert_accepted(app, saved, EMAILS[who])


def test_signing_out_on_one_device_leaves_the_other_signed_in(app, world):
    laptop, laptop_cookie = signed_in(app, world, "both")
    _phone, phone_cookie = signed_in(app, world, "both")
    _sign_out(app, world, laptop)
    assert_refused(app, laptop_cookie)
    assert_accepted(app, phone_cookie, EMAILS["both"])
    with app.app_context(), platform_bypass("test"):
        ended = db.session.scalars(
            select(UserSession.ended_reason)
            .where(UserSession.user_id == user_id(app, EMAILS["both"]))
            .order_by(UserSession.id)
        ).all()
    assert ended == ["signed_out", None]


def test_sign_out_everywhere_ends_every_device_of_the_person(app, world):
    laptop, laptop_cookie = signed_in(app, world, "both")
    _phone, phone_cookie = signed_in(app, world, "both")
    _sign_out_everywhere(app, world, laptop)
    assert_refused(app, laptop_cookie)
    assert_refused(app, phone_cookie)


def test_leaving_one_of_two_orgs_keeps_the_session_but_not_that_org(app, world):
    _device, cookie = signed_in(app, world, "both")
    admin = api_as(app.test_client(), "admin_a", world, csrf=True)
    assert admin.delete(f"/api/v1/orgs/org-a/members/{membership_id(app, world.a, EMAILS['both'])}").status_code == 204
    assert_accepted(app, cookie, EMAILS["both"])
    other = app.test_client()
    other.set_cookie("session", cookie)
    assert other.get("/api/v1/orgs/org-a/calls").status_code == 404
    assert other.get("/api/v1/orgs/org-b/calls").status_code == 200


def test_a_platform_admin_whose_role_is_withdrawn_with_no_org_left_is_signed_out(app, world):
    _device, cookie = signed_in(app, world, "root")
    with app.app_context(), platform_bypass("test: another platform admin withdraws the role"):
        orgs.set_global_role(db.session.get(User, user_id(app, EMAILS["root"])), "user")
        db.session.commit()
    assert_refused(app, cookie)


def test_the_console_offers_sign_out_everywhere_and_the_platform_user_page_counts_sessions(app, world):
    device, _cookie = signed_in(app, world, "agent_a")
    assert 'action="/logout/everywhere"' in device.get("/admin/orgs/org-a/").get_data(as_text=True)
    root = api_as(app.test_client(), "root", world)
    page = root.get(f"/admin/platform/users/details/?id={user_id(app, EMAILS['agent_a'])}").get_data(as_text=True)
    assert "1 signed-in session(s)." in page and "Sign out everywhere" in page


def test_an_api_key_is_not_a_session_and_outlives_sign_out_everywhere(app, world):
    device, _cookie = signed_in(app, world, "admin_a")
    _sign_out_everywhere(app, world, device)
    key_client = api_as(app.test_client(), "write_a", world)
    assert key_client.get("/api/v1/orgs/org-a/members").status_code == 200


def test_a_cookie_naming_a_user_id_instead_of_a_session_token_is_nobody(app, world):
    """Cookies from before sessions were rows held the user's id: they sign nobody in."""
    client = app.test_client()
    with client.session_transaction() as cookie, app.test_request_context(environ_base=client.environ_base):
        cookie.update({"_user_id": str(user_id(app, EMAILS["admin_a"])), "_fresh": True, "_id": _create_identifier()})
    assert_refused(app, client.get_cookie("session").value)


# Expiry on the server, with the clock as an input --------------------------------------------------


def cookie_for(app, token: str) -> str:
    """The cookie a browser signed in with session `token` holds (Flask-Login's keys, as `login_user` sets
    them for the test client's address and user agent)."""
    client = app.test_client()
    with client.session_transaction() as cookie, app.test_request_context(environ_base=client.environ_base):
        cookie.update({"_user_id": token, "_fresh": True, "_id": _create_identifier()})
    return client.get_cookie("session").value


def test_a_session_expires_on_the_server_after_the_session_hours(app, world, in_app):
    lifetime = app.permanent_session_lifetime
    now = utcnow()
    with in_app():
        uid = user_id(app, EMAILS["admin_b"])
        old = sessions.start_session(uid, now=now - lifetime - timedelta(seconds=1))
        recent = sessions.start_session(uid, now=now - lifetime + timedelta(minutes=5))
        db.session.commit()
    assert_refused(app, cookie_for(app, old))  # the cookie itself was signed just now
    assert_accepted(app, cookie_for(app, recent), EMAILS["admin_b"])
    with in_app():
        start = now - timedelta(hours=1)
        token = sessions.start_session(uid, now=start)
        db.session.commit()
        assert load_user(token, now=start + lifetime - timedelta(seconds=1)) is not None
        assert load_user(token, now=start + lifetime) is None
        before, after = (
            len(sessions.list_active_sessions(uid, now=start + lifetime + delta))
            for delta in (-timedelta(seconds=1), timedelta(0))
        )
        assert before - after == 1


def test_last_seen_is_written_at_most_once_a_minute(app, world, in_app):
    start = utcnow() - timedelta(hours=1)

    def last_seen():
        with platform_bypass("test"):
            return db.session.scalar(
                select(UserSession.last_seen_at).where(UserSession.token_hash == secret_digest(token))
            )

    with in_app():
        token = sessions.start_session(user_id(app, EMAILS["agent_b"]), now=start)
        db.session.commit()
        load_user(token, now=start + timedelta(seconds=59))
        assert last_seen() == start
        load_user(token, now=start + timedelta(minutes=1))
        assert last_seen() == start + timedelta(minutes=1)
        load_user(token, now=start + timedelta(minutes=1, seconds=30))
        assert last_seen() == start + timedelta(minutes=1)


def test_a_person_lists_their_active_sessions_and_ends_one_but_never_anothers(app, world, in_app):
    laptop, laptop_cookie = signed_in(app, world, "agent_a")
    _phone, phone_cookie = signed_in(app, world, "agent_a")
    with in_app():
        mine = sessions.list_active_sessions(user_id(app, EMAILS["agent_a"]))
        assert len(mine) == 2 and {s.ip for s in mine} == {"127.0.0.1"}
        assert all(s.user_agent.startswith("Werkzeug/") for s in mine)
        assert not sessions.end_session(user_id(app, EMAILS["agent_b"]), mine[0].id)  # not agent B's
        db.session.commit()
    assert_accepted(app, laptop_cookie, EMAILS["agent_a"])
    assert_accepted(app, phone_cookie, EMAILS["agent_a"])
    with in_app():
        assert sessions.end_session(user_id(app, EMAILS["agent_a"]), mine[0].id)
        db.session.commit()
        assert [s.id for s in sessions.list_active_sessions(user_id(app, EMAILS["agent_a"]))] == [mine[1].id]
    refused, still = (phone_cookie, laptop_cookie) if mine[0].id > mine[1].id else (laptop_cookie, phone_cookie)
    assert_refused(app, refused)
    assert_accepted(app, still, EMAILS["agent_a"])


def test_no_organisation_sees_sessions_not_even_its_members(app, world, in_app):
    signed_in(app, world, "agent_a")
    from vsync.tenancy import tenant

    with in_app(), tenant(world.a, role="org_admin"):
        assert db.session.scalars(select(UserSession)).all() == []
    with in_app(), platform_bypass("test"):
        assert (
            db.session.scalar(select(UserSession.id).where(UserSession.user_id == user_id(app, EMAILS["agent_a"])))
            is not None
        )


def test_a_wrong_password_starts_no_session(app, world, in_app):
    client = app.test_client()
    login(client, EMAILS["agent_a"], PASSWORD + "x")
    with in_app(), platform_bypass("test"):
        assert (
            db.session.scalars(select(UserSession).where(UserSession.user_id == user_id(app, EMAILS["agent_a"]))).all()
            == []
        )
