"""Two-factor sign-in: enrolment, the code after the password, drift and replay, recovery codes,
throttling shared with passwords, orgs and the platform that require it, a platform admin's reset,
and API keys, which it leaves alone.

The clock is an input: service calls take `now`, and requests run at a fixed instant
(`time_machine`, not ticking), with every code computed by the test from the enrolled secret."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pyotp
import pytest
import time_machine
from sqlalchemy import select

from tests.factories import PASSWORD, make_org, make_user
from tests.helpers import csrf_token, login
from vsync.errors import ValidationError
from vsync.extensions import db
from vsync.models import AuditEvent, OutboundEmail, User, UserSession
from vsync.services import orgs, twofactor
from vsync.services.keys import create_api_key
from vsync.tenancy import platform_bypass

NOW = datetime(2026, 11, 2, 12, 0, 10, tzinfo=UTC)  # 10 s into its 30-second step
ALICE, BOTH, ROOT = "alice@a.test", "both@ab.test", "root@platform.test"
_SECRET = re.compile(r'class="two-factor-secret">([A-Z2-7]+)<')
_CODES = re.compile(r"<li><code>([a-z0-9]{5}-[a-z0-9]{5})</code></li>")


@pytest.fixture
def people(in_app):
    """Two orgs; Alice admin of A, Both a manager of A and of B, Root a platform admin."""
    with in_app():
        make_org("org-a")
        make_org("org-b")
        ids = {
            ALICE: make_user(ALICE, org_slug="org-a"),
            BOTH: make_user(BOTH, org_slug="org-a", role="manager"),
            ROOT: make_user(ROOT, platform_admin=True),
        }
        make_user(BOTH, org_slug="org-b", role="manager")
    return ids


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def code_at(secret: str, when: datetime) -> str:
    return pyotp.TOTP(secret).at(when)


def enrol_in_service(user_id: int, email: str, now: datetime = NOW) -> tuple[str, list[str]]:
    with platform_bypass("test"):
        secret = twofactor.begin_enrolment(user_id, email).secret
        codes = twofactor.confirm_enrolment(user_id, code_at(secret, now), now=now)
        db.session.commit()
    return secret, codes


def enrol_in_browser(client) -> tuple[str, list[str], str]:
    """Enrol the signed-in person through their page; the secret, the recovery codes and that page."""
    page = client.get("/account/two-factor").get_data(as_text=True)
    secret = _SECRET.search(page).group(1)
    token = csrf_token(client, "/account/two-factor")
    done = client.post("/account/two-factor/confirm", data={"code": code_at(secret, NOW), "csrf_token": token})
    assert done.status_code == 200, done.get_data(as_text=True)
    return secret, _CODES.findall(done.get_data(as_text=True)), page


def post_code(client, code: str):
    return client.post("/login/two-factor", data={"code": code, "csrf_token": csrf_token(client, "/login/two-factor")})


def actions(app) -> list[str]:
    with app.app_context(), platform_bypass("test"):
        return list(db.session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


def test_enrolment_shows_a_qr_code_and_the_secret_and_is_on_only_once_a_code_confirms_it(app, client, people, clock):
    login(client, ALICE)
    page = client.get("/account/two-factor").get_data(as_text=True)
    assert "<svg" in page and _SECRET.search(page)
    assert client.get("/account/two-factor").get_data(as_text=True).count(_SECRET.search(page).group(1)) == 1
    token = csrf_token(client, "/account/two-factor")
    wrong = client.post("/account/two-factor/confirm", data={"code": "000000", "csrf_token": token})
    assert wrong.status_code == 302
    assert "That code is not right" in client.get("/account/two-factor").get_data(as_text=True)
    with app.app_context(), platform_bypass("test"):
        assert twofactor.state_of(people[ALICE]).enabled is False

    secret, codes, _ = enrol_in_browser(client)
    assert len(codes) == 10 and len(set(codes)) == 10
    with app.app_context(), platform_bypass("test"):
        user = db.session.get(User, people[ALICE])
        assert user.two_factor_enabled_at == NOW and secret not in (user.two_factor_secret or "")
        assert not any(code.replace("-", "") in str(user.two_factor_recovery_hashes) for code in codes)
    assert client.get("/admin/orgs/org-a/").status_code == 200  # turning it on ends no session
    assert "two_factor.enabled" in actions(app)


def test_sign_in_asks_for_the_code_after_the_password_and_the_half_sign_in_reaches_no_page(
    app, client, people, clock, in_app
):
    with in_app():
        secret, _ = enrol_in_service(people[ALICE], ALICE, NOW - timedelta(minutes=5))
    response = login(client, ALICE)
    assert response.headers["Location"] == "/login/two-factor"
    assert client.get("/admin/orgs/org-a/").headers["Location"].startswith("/login")
    assert client.get("/api/v1/me").status_code == 401
    signed_in = post_code(client, code_at(secret, NOW))
    assert signed_in.status_code == 302 and signed_in.headers["Location"] == "/admin/"
    assert client.get("/admin/orgs/org-a/").status_code == 200
    with app.app_context(), platform_bypass("test"):
        assert db.session.scalar(select(UserSession.user_id)) == people[ALICE]  # one session, after the code


def test_the_code_step_without_a_fresh_password_sends_to_sign_in(client, people, clock, in_app):
    with in_app():
        enrol_in_service(people[ALICE], ALICE, NOW - timedelta(minutes=5))
    assert client.get("/login/two-factor").headers["Location"] == "/login"
    login(client, ALICE)
    clock.shift(timedelta(seconds=301))
    assert client.get("/login/two-factor").headers["Location"] == "/login"


@pytest.mark.parametrize(("steps", "accepted"), [(-2, False), (-1, True), (0, True), (1, True), (2, False)])
def test_a_code_one_step_off_is_accepted_and_two_steps_off_refused(ctx, people, steps, accepted):
    secret, _ = enrol_in_service(people[ALICE], ALICE, NOW - timedelta(minutes=10))
    code = code_at(secret, NOW + timedelta(seconds=30 * steps))
    with platform_bypass("test"):
        if accepted:
            assert twofactor.verify(people[ALICE], code, now=NOW) == "code"
        else:
            with pytest.raises(ValidationError, match="not right"):
                twofactor.verify(people[ALICE], code, now=NOW)


def test_a_code_is_used_once_and_an_earlier_step_after_a_later_one_is_refused(ctx, people):
    secret, _ = enrol_in_service(people[ALICE], ALICE, NOW - timedelta(minutes=10))
    with platform_bypass("test"):
        assert twofactor.verify(people[ALICE], code_at(secret, NOW), now=NOW) == "code"
        with pytest.raises(ValidationError, match="used already"):
            twofactor.verify(people[ALICE], code_at(secret, NOW), now=NOW + timedelta(seconds=15))
        with pytest.raises(ValidationError, match="used already"):
            twofactor.verify(people[ALICE], code_at(secret, NOW - timedelta(seconds=30)), now=NOW)


def test_a_replayed_code_is_refused_at_sign_in(client, people, clock, in_app):
    with in_app():
        secret, _ = enrol_in_service(people[ALICE], ALICE, NOW - timedelta(minutes=5))
    login(client, ALICE)
    assert post_code(client, code_at(secret, NOW)).status_code == 302
    other = client.application.test_client()
    login(other, ALICE)
    replay = post_code(other, code_at(secret, NOW))
    assert replay.status_code == 400 and "used already" in replay.get_data(as_text=True)


def test_a_recovery_code_signs_in_once(app, client, people, clock, in_app):
    with in_app():
        _, codes = enrol_in_service(people[ALICE], ALICE, NOW - timedelta(minutes=5))
    login(client, ALICE)
    used = post_code(client, codes[3].upper())  # any case, as read off paper
    assert used.headers["Location"] == "/admin/"
    assert "9 left" in client.get("/admin/", follow_redirects=True).get_data(as_text=True)
    other = app.test_client()
    login(other, ALICE)
    again = post_code(other, codes[3])
    assert again.status_code == 400 and "used already" in again.get_data(as_text=True)
    assert client.get("/admin/orgs/org-a/").status_code == 200  # a recovery code ends no session
    assert "two_factor.recovery_code_used" in actions(app)


@pytest.mark.parametrize("typed", ["12345", "1234567", "abcdef", "12a456", "abcde-fghi", ""])
def test_a_malformed_code_is_a_clear_error_on_the_code_field(ctx, typed):
    with pytest.raises(ValidationError) as refused:
        twofactor.parse_code(typed)
    assert refused.value.field == "code"
    assert "6 digits" in refused.value.message or "Enter the code" in refused.value.message


def test_a_malformed_code_at_sign_in_says_what_a_code_is(client, people, clock, in_app):
    with in_app():
        enrol_in_service(people[ALICE], ALICE, NOW - timedelta(minutes=5))
    login(client, ALICE)
    response = post_code(client, "12ab56")
    assert response.status_code == 400
    assert "6 digits the app shows" in response.get_data(as_text=True)


def test_wrong_codes_and_wrong_passwords_count_toward_one_sign_in_throttle(app, client, people, clock, in_app):
    with in_app():
        secret, _ = enrol_in_service(people[ALICE], ALICE, NOW - timedelta(minutes=5))
    half = app.config["VSYNC_LOGIN_MAX_FAILURES"] // 2
    for _ in range(half):
        login(client, ALICE, "not the password")
    login(client, ALICE)
    for _ in range(app.config["VSYNC_LOGIN_MAX_FAILURES"] - half):
        assert post_code(client, "000000").status_code == 400
    throttled = post_code(client, code_at(secret, NOW))  # even the right code waits
    assert throttled.status_code == 429
    assert "Too many failed sign-in attempts" in throttled.get_data(as_text=True)
    assert login(client, ALICE).status_code == 429


def test_an_org_requiring_two_factor_sends_an_unenrolled_member_to_enrolment_there_only(
    app, client, people, clock, in_app
):
    with in_app():
        enrol_in_service(people[ALICE], ALICE, NOW - timedelta(minutes=5))
    admin = app.test_client()
    login(admin, ALICE)
    post_code(admin, code_at(twofactor_secret(app, people[ALICE]), NOW))
    patched = admin.patch(
        "/api/v1/orgs/org-a", json={"require_two_factor": True}, headers={"X-CSRFToken": csrf_token(admin, "/admin/")}
    )
    assert patched.status_code == 200 and patched.json["require_two_factor"] is True

    login(client, BOTH)
    sent = client.get("/admin/orgs/org-a/calls/")
    assert sent.status_code == 302 and sent.headers["Location"] == "/account/two-factor"
    refused = client.get("/api/v1/orgs/org-a")
    assert refused.status_code == 403 and refused.json["error"]["code"] == "two_factor_required"
    assert client.get("/admin/orgs/org-b/").status_code == 200  # org B does not require it
    assert client.get("/api/v1/me").json["two_factor"] == {"enabled": False, "required": True}
    enrol_in_browser(client)
    assert client.get("/admin/orgs/org-a/calls/").status_code == 200
    assert client.get("/api/v1/me").json["two_factor"] == {"enabled": True, "required": True}


def twofactor_secret(app, user_id: int) -> str:
    from vsync import crypto

    with app.app_context(), platform_bypass("test"):
        return crypto.decrypt(db.session.get(User, user_id).two_factor_secret)


def test_the_org_settings_page_sets_the_requirement(app, client, people, in_app):
    login(client, ALICE)
    form = {
        "name": "Org-A",
        "timezone": "UTC",
        "service_level_target": "0.8",
        "service_level_threshold_seconds": "20",
        "short_abandon_seconds": "5",
        "require_two_factor": "y",
        "csrf_token": csrf_token(client, "/admin/orgs/org-a/settings/"),
    }
    assert client.post("/admin/orgs/org-a/settings/", data=form).status_code == 302
    with in_app(), platform_bypass("test"):
        assert orgs.get_org_by_slug("org-a").require_two_factor is True
    assert client.get("/admin/orgs/org-a/").headers["Location"] == "/account/two-factor"  # Alice too


def test_platform_admins_must_enrol_when_the_platform_requires_it(app, client, people, clock, monkeypatch):
    login(client, ROOT)
    assert client.get("/admin/platform/users/").status_code == 200  # the embedded default offers, not forces
    monkeypatch.setitem(app.config, "VSYNC_TWO_FACTOR_PLATFORM_ADMINS", True)
    assert client.get("/admin/platform/users/").headers["Location"] == "/account/two-factor"
    assert client.get("/admin/orgs/org-b/").headers["Location"] == "/account/two-factor"
    enrol_in_browser(client)
    assert client.get("/admin/platform/users/").status_code == 200


def test_turning_two_factor_off_takes_the_password_and_a_code_and_keeps_the_session(app, client, people, clock, in_app):
    login(client, ALICE)
    secret, _, _ = enrol_in_browser(client)
    token = re.search(r'name="off-csrf_token"[^>]*value="([^"]+)"', client.get("/account/two-factor").text).group(1)
    later = NOW + timedelta(seconds=30)
    clock.move_to(later)
    wrong = {"off-password": "not it", "off-code": code_at(secret, later), "off-csrf_token": token}
    client.post("/account/two-factor/disable", data=wrong)
    assert "current password is not right" in client.get("/account/two-factor").get_data(as_text=True)
    with in_app(), platform_bypass("test"):
        assert twofactor.state_of(people[ALICE]).enabled
    right = {"off-password": PASSWORD, "off-code": code_at(secret, later), "off-csrf_token": token}
    client.post("/account/two-factor/disable", data=right)
    with in_app(), platform_bypass("test"):
        assert not twofactor.state_of(people[ALICE]).enabled
    assert client.get("/admin/orgs/org-a/").status_code == 200
    assert "two_factor.disabled" in actions(app)


def test_new_recovery_codes_replace_the_old_ones(ctx, people):
    secret, old = enrol_in_service(people[ALICE], ALICE, NOW - timedelta(minutes=5))
    with platform_bypass("test"):
        new = twofactor.regenerate_recovery_codes(people[ALICE], code_at(secret, NOW), now=NOW)
        db.session.commit()
        with pytest.raises(ValidationError, match="recovery code is not right"):
            twofactor.verify(people[ALICE], old[0], now=NOW)
        assert twofactor.verify(people[ALICE], new[0], now=NOW) == "recovery code"


def test_a_platform_admins_reset_is_audited_emails_the_person_and_ends_their_sessions(
    app, client, people, clock, in_app
):
    with in_app():
        secret, _ = enrol_in_service(people[ALICE], ALICE, NOW - timedelta(minutes=5))
    login(client, ALICE)
    post_code(client, code_at(secret, NOW))
    assert client.get("/admin/orgs/org-a/").status_code == 200
    root = app.test_client()
    login(root, ROOT)
    page = f"/admin/platform/users/details/?id={people[ALICE]}"
    assert "Reset two-factor" in root.get(page).get_data(as_text=True)
    data = {"twofactor-row_id": str(people[ALICE]), "twofactor-csrf_token": csrf_token(root, page)}
    done = root.post("/admin/platform/users/two-factor-reset", data=data, headers={"Referer": page})
    assert done.status_code == 302
    assert client.get("/admin/orgs/org-a/").headers["Location"].startswith("/login")  # her session ended
    with in_app(), platform_bypass("test"):
        assert not twofactor.state_of(people[ALICE]).enabled
        event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "two_factor.reset"))
        assert event.actor == ROOT and "1 session(s) ended; emailed" in event.summary
        email = db.session.scalar(select(OutboundEmail).where(OutboundEmail.kind == "account"))
        assert email.to_address == ALICE and email.context["event"] == "two_factor_reset"
        assert "turned two-factor sign-in off" in email.context["what"]
    assert login(client, ALICE).headers["Location"] == "/admin/"  # the password alone signs in again


def test_api_keys_are_unaffected_by_two_factor(app, client, people, in_app):
    with in_app(), platform_bypass("test"):
        org = orgs.get_org_by_slug("org-a")
        orgs.update_org_settings(org, require_two_factor=True)
        _, key = create_api_key(org_id=org.id, name="dashboard", scopes="read")
        db.session.commit()
    headers = {"Authorization": f"Bearer {key}"}
    assert client.get("/api/v1/orgs/org-a", headers=headers).status_code == 200
    me = client.get("/api/v1/me", headers=headers)
    assert me.status_code == 200 and me.json["two_factor"] is None
