"""Sign-in pages, throttling, sessions, and API-key authentication."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.factories import make_org, make_user
from tests.helpers import app_config, csrf_token, login
from vsync import create_app
from vsync.auth import platform_wide
from vsync.auth.keys import verify_api_key
from vsync.extensions import db
from vsync.models import ApiKey, AuditEvent
from vsync.models.types import utcnow
from vsync.services.keys import create_api_key, revoke_api_key
from vsync.tenancy import platform_bypass


def audit_actions() -> list[tuple[str, str]]:
    with platform_bypass("test"):
        return [(e.action, e.actor) for e in db.session.scalars(select(AuditEvent).order_by(AuditEvent.id))]


@pytest.fixture
def member(in_app):
    with in_app():
        make_org("org-a")
        make_user("alice@a.test", org_slug="org-a")
    return "alice@a.test"


def test_login_page_renders_a_csrf_protected_form(client):
    response = client.get("/login")
    assert response.status_code == 200
    assert 'name="csrf_token"' in response.get_data(as_text=True)


def test_login_without_csrf_token_is_refused(client, member):
    response = client.post("/login", data={"email": member, "password": "correct horse battery"})
    assert response.status_code == 400
    assert "_user_id" not in (client.get_cookie("session") or "")


def test_member_signs_in_and_lands_on_the_console_scoped_to_their_org(client, member, in_app):
    response = login(client, member)
    assert response.status_code == 302 and response.headers["Location"] == "/admin/"
    picker = client.get("/admin/")
    assert picker.headers["Location"] == "/admin/orgs/org-a/"  # one org: straight to its dashboard
    page = client.get(picker.headers["Location"]).get_data(as_text=True)
    assert "Org-A as org admin; times on these pages are in UTC" in page
    with in_app():
        assert ("login.succeeded", member) in audit_actions()


def test_session_cookie_is_httponly_and_samesite_lax(client, member):
    response = login(client, member)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_wrong_password_and_unknown_email_get_the_same_message(client, member, in_app):
    wrong = login(client, member, "not the password").get_data(as_text=True)
    unknown = login(client, "nobody@a.test", "not the password").get_data(as_text=True)
    assert "The email or password is incorrect." in wrong
    assert "The email or password is incorrect." in unknown
    with in_app():
        actions = [a for a, _ in audit_actions()]
    assert actions == ["org.created", "user.created", "member.added", "login.failed", "login.failed"]


def test_inactive_user_cannot_sign_in(client, member, in_app):
    from vsync.services.orgs import find_user

    with in_app(), platform_bypass("test"):
        find_user(member).active = False
        db.session.commit()
    assert "The email or password is incorrect." in login(client, member).get_data(as_text=True)


def test_ten_failures_on_one_account_throttle_it_with_429(app, client, member):
    for _ in range(app.config["VSYNC_LOGIN_MAX_FAILURES"]):
        assert login(client, member, "wrong password!").status_code == 200
    response = login(client, member)  # even the right password waits
    assert response.status_code == 429
    assert "Too many failed sign-in attempts" in response.get_data(as_text=True)


def test_ten_failures_from_one_address_throttle_other_accounts_too(app, client, member):
    for i in range(app.config["VSYNC_LOGIN_MAX_FAILURES"]):
        login(client, f"guess{i}@a.test", "wrong password!")
    assert login(client, member).status_code == 429


def test_failures_older_than_the_window_do_not_count(app, client, member, in_app):
    for _ in range(app.config["VSYNC_LOGIN_MAX_FAILURES"]):
        login(client, member, "wrong password!")
    with in_app(), platform_bypass("test"):
        for event in db.session.scalars(select(AuditEvent)):
            event.created_at = utcnow() - timedelta(seconds=app.config["VSYNC_LOGIN_WINDOW_SECONDS"] + 1)
        db.session.commit()
    assert login(client, member).status_code == 302


def test_logout_needs_post_with_csrf_and_ends_the_session(client, member):
    login(client, member)
    assert client.get("/logout").status_code == 405
    token = csrf_token(client, "/admin/orgs/org-a/")
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/admin/").headers["Location"].startswith("/login")


@pytest.mark.parametrize(
    "target,expected", [("/admin/", "/admin/"), ("https://evil.test/x", "/admin/"), ("//evil.test/x", "/admin/")]
)
def test_login_redirects_only_to_local_paths(client, member, target, expected):
    response = client.post(
        f"/login?next={target}",
        data={"email": member, "password": "correct horse battery", "csrf_token": csrf_token(client)},
    )
    assert response.headers["Location"] == expected


# API keys ----------------------------------------------------------------------------------------


@pytest.fixture
def org_key(in_app, member):
    from vsync.services.orgs import get_org_by_slug

    with in_app(), platform_bypass("test"):
        key, plaintext = create_api_key(org_id=get_org_by_slug("org-a").id, name="dashboard")
        db.session.commit()
        return key.id, plaintext


def test_key_is_shaped_vsk_public_secret_and_only_its_hash_is_stored(org_key, in_app):
    key_id, plaintext = org_key
    prefix, public_id, secret = plaintext.split("_", 2)
    assert prefix == "vsk" and len(public_id) == 12 and len(secret) >= 43
    with in_app(), platform_bypass("test"):
        stored = db.session.get(ApiKey, key_id)
        assert plaintext not in (stored.secret_hash, stored.public_id) and len(stored.secret_hash) == 64


def test_valid_key_authenticates_without_a_session_cookie(client, org_key):
    response = client.get("/api/v1/health", headers={"Authorization": f"Bearer {org_key[1]}"})
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers


@pytest.mark.parametrize("header", ["Bearer vsk_nothing_here", "Bearer ", "Basic dXNlcjpwYXNz", "vsk_abc"])
def test_bad_authorization_header_gets_json_401(client, header):
    response = client.get("/api/v1/me", headers={"Authorization": header})
    assert response.status_code == 401
    body = response.get_json()["error"]
    assert body["code"] == "unauthorized" and body["request_id"]


def test_key_in_query_string_is_not_accepted(client, org_key):
    assert client.get(f"/api/v1/me?api_key={org_key[1]}").status_code == 401


def test_revoked_and_expired_keys_stop_working(ctx, org_key):
    key_id, plaintext = org_key
    assert verify_api_key(plaintext) is not None
    with platform_bypass("test"):
        revoke_api_key(key_id)
        db.session.commit()
    assert verify_api_key(plaintext) is None
    with platform_bypass("test"):
        key, expiring = create_api_key(org_id=None, name="short", expires_at=utcnow() + timedelta(seconds=60))
        key.expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
    assert verify_api_key(expiring) is None


def test_key_with_a_tampered_secret_is_refused(ctx, org_key):
    plaintext = org_key[1]
    tampered = plaintext[:-1] + ("A" if plaintext[-1] != "A" else "B")
    assert verify_api_key(tampered) is None


def test_last_used_is_written_at_most_once_a_minute(ctx, org_key):
    key_id, plaintext = org_key
    verify_api_key(plaintext)
    with platform_bypass("test"):
        first = db.session.get(ApiKey, key_id).last_used_at
    verify_api_key(plaintext)
    with platform_bypass("test"):
        assert db.session.get(ApiKey, key_id).last_used_at == first
        db.session.get(ApiKey, key_id).last_used_at = first - timedelta(minutes=2)
        db.session.commit()
    verify_api_key(plaintext)
    with platform_bypass("test"):
        assert db.session.get(ApiKey, key_id).last_used_at > first


def test_bad_bearer_key_is_401_even_with_a_valid_session_cookie(client, member):
    login(client, member)
    response = client.get("/api/v1/me", headers={"Authorization": "Bearer vsk_aaaaaaaaaaaa_" + "b" * 43})
    assert response.status_code == 401


def test_key_creation_refuses_bad_scopes_and_past_expiry(ctx):
    from vsync.errors import ValidationError

    with platform_bypass("test"):
        with pytest.raises(ValidationError) as err:
            create_api_key(org_id=None, name="x", scopes="admin")
        assert err.value.field == "scope"
        with pytest.raises(ValidationError) as err:
            create_api_key(org_id=None, name="x", expires_at=utcnow() - timedelta(days=1))
        assert err.value.field == "expires_at"


def test_each_app_knows_its_own_platform_wide_routes_and_no_other_apps(app):
    def probe():
        return ""

    def wide_probe():
        return ""

    wide_probe.platform_wide = True
    first, second = create_app(app_config()), create_app(app_config())
    first.add_url_rule("/probe", "probe", wide_probe)
    second.add_url_rule("/probe", "probe", probe)
    with first.test_request_context():
        assert platform_wide("probe")
    with second.test_request_context():
        assert not platform_wide("probe")
    for each in (first, second):
        with each.test_request_context():
            assert platform_wide("platform_users.index_view") and platform_wide("platform_audit.details_view")
            assert not platform_wide("platform_overview.index")  # its own scope: one org at a time
            assert not platform_wide("platform_webhooks.replay")
            assert not platform_wide("org_dashboard.index") and not platform_wide("api.get_org")
            assert not platform_wide(None)
