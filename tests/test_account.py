"""Your account: a forgotten password, the own page (name, email, password, sessions), new-device
emails and the password rules. Two people in two orgs; the clock is an input where links expire."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.factories import PASSWORD, make_org, make_user
from tests.helpers import csrf_token, login
from vsync.errors import ValidationError
from vsync.extensions import db
from vsync.models import Membership, OutboundEmail, User
from vsync.models.types import utcnow
from vsync.services import members, orgs, profile
from vsync.services.notifications import preferences
from vsync.tenancy import platform_bypass, tenant

ANN, BOB = "ann@a.test", "bob@b.test"
FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 Version/18.1 Safari/604.1"


@pytest.fixture
def people(app):
    """Ann, admin of org A, and Bob, admin of org B."""
    with app.app_context():
        make_org("org-a"), make_org("org-b")
        ids = {ANN: make_user(ANN, org_slug="org-a"), BOB: make_user(BOB, org_slug="org-b")}
        db.session.remove()
    return ids


def device(app, email: str, agent: str = FIREFOX, ip: str = "198.51.100.7"):
    """A browser (its own cookies, user agent and address) signed in as `email`."""
    client = app.test_client()
    client.environ_base.update({"HTTP_USER_AGENT": agent, "REMOTE_ADDR": ip})
    assert login(client, email).status_code == 302
    return client


def post(client, path: str, data: dict | None = None, page: str = "/account/"):
    return client.post(path, data={**(data or {}), "csrf_token": csrf_token(client, page)})


def signed_in(client) -> bool:
    return client.get("/api/v1/me").status_code == 200


def outbox(app, **where) -> list[OutboundEmail]:
    with app.app_context(), platform_bypass("test: read the outbox"):
        rows = db.session.scalars(select(OutboundEmail).filter_by(**where).order_by(OutboundEmail.id)).all()
        db.session.expunge_all()
        return list(rows)


def link_in(row: OutboundEmail, name: str) -> str:
    return re.sub(r"^https?://[^/]+", "", row.context[name])


# --- forgot password --------------------------------------------------------------------------------


def test_forgot_password_answers_alike_for_a_known_and_an_unknown_email(app, people):
    answers = []
    for email in (ANN, "nobody@a.test"):
        client = app.test_client()
        token = csrf_token(client, "/forgot-password")
        answer = client.post("/forgot-password", data={"email": email, "csrf_token": token})
        answers.append((answer.status_code, answer.get_data(as_text=True).replace(email, "EMAIL")))
    assert answers[0] == answers[1] and answers[0][0] == 200
    assert "a link to choose a new password is on its way" in answers[0][1]
    sent = outbox(app, kind="account")
    assert [(row.to_address, row.template, row.org_id) for row in sent] == [(ANN, "password_reset", None)]


def test_forgot_password_is_throttled_per_address_and_refuses_a_malformed_one(app, people):
    client = app.test_client()
    bad = client.post("/forgot-password", data={"email": "not an email", "csrf_token": csrf_token(client)})
    assert bad.status_code == 400
    statuses = [
        client.post("/forgot-password", data={"email": ANN, "csrf_token": csrf_token(client, "/forgot-password")})
        for _ in range(6)
    ]
    assert [s.status_code for s in statuses] == [200] * 5 + [429]
    assert "Too many reset requests" in statuses[-1].get_data(as_text=True)
    other = client.post("/forgot-password", data={"email": BOB, "csrf_token": csrf_token(client, "/forgot-password")})
    assert other.status_code == 200  # another address from the same client address still may
    assert len(outbox(app, template="password_reset")) == 6


def test_a_reset_link_works_once_and_expires(app, people):
    now = utcnow()
    with app.app_context():
        profile.request_password_reset(ANN, now=now)
        db.session.commit()
    token = link_in(outbox(app, template="password_reset")[0], "reset_url").rsplit("/", 1)[1]
    with app.app_context():
        assert members.password_link(token, now=now + timedelta(minutes=59)).email == ANN
        with pytest.raises(ValidationError, match="expired"):
            members.password_link(token, now=now + timedelta(minutes=61))
        members.set_password_with_link(token, "a fresh long password", now=now + timedelta(minutes=5))
        db.session.commit()
        with pytest.raises(ValidationError, match="used already"):
            members.set_password_with_link(token, "another long password", now=now + timedelta(minutes=6))
        db.session.rollback()
    assert login(app.test_client(), ANN, "a fresh long password").status_code == 302
    assert outbox(app, template="account_security")[0].context["event"] == "password_set"


def test_a_reset_used_ends_every_session_of_the_person_only(app, people):
    laptop, phone = device(app, ANN), device(app, ANN, IPHONE, "203.0.113.9")
    bob = device(app, BOB)
    page = app.test_client()
    page.post("/forgot-password", data={"email": ANN, "csrf_token": csrf_token(page, "/forgot-password")})
    reset = link_in(outbox(app, template="password_reset")[0], "reset_url")
    form = {"password": "a fresh long password", "confirm": "a fresh long password"}
    assert page.post(reset, data={**form, "csrf_token": csrf_token(page, reset)}).status_code == 302
    assert not signed_in(laptop) and not signed_in(phone) and signed_in(bob)
    again = page.post(reset, data={**form, "csrf_token": csrf_token(page, "/forgot-password")})
    assert again.status_code == 410 and "used already" in again.get_data(as_text=True)


# --- the own page -----------------------------------------------------------------------------------


def test_the_own_page_lists_ones_own_sessions_and_signs_out_one(app, people):
    laptop, phone = device(app, ANN), device(app, ANN, IPHONE, "203.0.113.9")
    bob = device(app, BOB, IPHONE, "192.0.2.55")
    page = laptop.get("/account/").get_data(as_text=True)
    assert "Firefox on Windows" in page and "Safari on an iPhone" in page and "203.0.113.9" in page
    assert "192.0.2.55" not in page  # Bob's session is not Ann's to see
    assert re.search(r'account-two-factor"><p class="mb-1">Off\.</p>', page)  # her two-factor status
    ids = [int(i) for i in re.findall(r"/account/sessions/(\d+)/end", page)]
    bobs = int(re.findall(r"/account/sessions/(\d+)/end", bob.get("/account/").get_data(as_text=True))[0])
    refused = post(laptop, f"/account/sessions/{bobs}/end")
    assert refused.status_code == 302 and signed_in(bob)
    assert "not one of yours" in laptop.get("/account/").get_data(as_text=True)
    phone_id = max(ids)  # the later sign-in
    assert post(laptop, f"/account/sessions/{phone_id}/end").status_code == 302
    assert signed_in(laptop) and not signed_in(phone)


def test_sign_out_everywhere_else_keeps_this_session(app, people):
    laptop, phone = device(app, ANN), device(app, ANN, IPHONE)
    post(laptop, "/account/sessions/end-others")
    assert signed_in(laptop) and not signed_in(phone)


def test_name_is_changed_on_the_own_page(app, people):
    laptop = device(app, ANN)
    assert post(laptop, "/account/name", {"profile-name": "  Ann   Example "}).status_code == 302
    assert "Ann Example" in laptop.get("/account/").get_data(as_text=True)


def test_email_changes_only_when_the_link_sent_to_the_new_address_is_followed(app, people):
    laptop = device(app, ANN)
    taken = post(laptop, "/account/email", {"change-email": BOB.upper()})
    assert taken.status_code == 409 and "belongs to another vsync account" in taken.get_data(as_text=True)
    malformed = post(laptop, "/account/email", {"change-email": "ann at home"})
    assert malformed.status_code == 400
    assert post(laptop, "/account/email", {"change-email": "ann@new.test"}).status_code == 302
    sent = outbox(app, template="email_change")
    assert [row.to_address for row in sent] == ["ann@new.test"]
    assert "ann@a.test" in laptop.get("/account/").get_data(as_text=True)  # unchanged until confirmed
    link = link_in(sent[0], "confirm_url")
    stranger = app.test_client()
    assert "ann@new.test" in stranger.get(link).get_data(as_text=True)  # GET changes nothing
    assert login(app.test_client(), "ann@new.test").status_code == 200  # not yet
    done = stranger.post(link, data={"csrf_token": csrf_token(stranger, link)})
    assert done.status_code == 200 and "is now" in done.get_data(as_text=True)
    assert login(app.test_client(), "ann@new.test").status_code == 302
    told = [row for row in outbox(app, template="account_security") if row.context["event"] == "email_changed"]
    assert [row.to_address for row in told] == [ANN]
    again = stranger.post(link, data={"csrf_token": csrf_token(stranger, "/forgot-password")})
    assert again.status_code == 410 and "used already" in again.get_data(as_text=True)


def test_an_email_change_link_expires_and_refuses_an_address_taken_since(app, people):
    now = utcnow()
    with app.app_context():
        profile.request_email_change(people[ANN], "shared@x.test", now=now)
        db.session.commit()
    token = link_in(outbox(app, template="email_change")[0], "confirm_url").rsplit("/", 1)[1]
    with app.app_context():
        with pytest.raises(ValidationError, match="expired"):
            profile.read_email_change(token, now=now + timedelta(hours=25))
        make_user("shared@x.test")
        with pytest.raises(Exception, match="belongs to another vsync account"):
            profile.confirm_email_change(token, now=now + timedelta(hours=1))
        db.session.rollback()
        assert profile.person(people[ANN]).email == ANN


def test_password_change_needs_the_current_password_and_ends_the_other_sessions(app, people):
    laptop, phone = device(app, ANN), device(app, ANN, IPHONE)
    wrong = post(
        laptop,
        "/account/password",
        {
            "password-current_password": "not it at all",
            "password-new_password": "a fresh long password",
            "password-confirm": "a fresh long password",
        },
    )
    assert wrong.status_code == 400 and "current password is not right" in wrong.get_data(as_text=True)
    assert signed_in(phone) and login(app.test_client(), ANN, PASSWORD).status_code == 302  # nothing changed
    changed = post(
        laptop,
        "/account/password",
        {
            "password-current_password": PASSWORD,
            "password-new_password": "a fresh long password",
            "password-confirm": "a fresh long password",
        },
    )
    assert changed.status_code == 302 and signed_in(laptop) and not signed_in(phone)
    assert login(app.test_client(), ANN, "a fresh long password").status_code == 302
    events = [row.context["event"] for row in outbox(app, template="account_security", to_address=ANN)]
    assert "password_changed" in events


def test_wrong_current_passwords_are_throttled(app, people):
    laptop = device(app, ANN)
    data = {
        "password-current_password": "not it at all",
        "password-new_password": "a fresh long password",
        "password-confirm": "a fresh long password",
    }
    statuses = [post(laptop, "/account/password", data).status_code for _ in range(11)]
    assert statuses == [400] * 10 + [429]
    right = {**data, "password-current_password": PASSWORD}
    assert post(laptop, "/account/password", right).status_code == 429  # even the right one, until the window passes


def test_the_own_page_shows_and_changes_preferences_of_each_org_of_the_person(app, people):
    laptop = device(app, ANN)
    page = laptop.get("/account/").get_data(as_text=True)
    assert "In Org-A" in page and "In Org-B" not in page
    org_a = re.search(r'action="(/admin/orgs/org-a/notifications/\?next=account)"', page).group(1)
    fields = {
        f"org{n}-{key}": value
        for n in [re.search(r'name="org(\d+)-digest"', page).group(1)]
        for key, value in {**preferences.DEFAULTS["org_admin"], preferences.ACCOUNT_SECURITY: "off"}.items()
    }
    saved = post(laptop, org_a, fields)
    assert saved.status_code == 302 and saved.headers["Location"].startswith("/account/")
    with app.app_context():
        assert profile.wants_account_security(people[ANN]) is False


def orgs_id(app, slug: str) -> int:
    with app.app_context(), platform_bypass("test"):
        return orgs.get_org_by_slug(slug).id


# --- new devices ------------------------------------------------------------------------------------


def test_a_new_device_is_told_once_and_a_known_device_never(app, people):
    laptop = device(app, ANN)  # the first sign-in ever: no news
    assert outbox(app, template="account_security") == []
    phone = device(app, ANN, IPHONE, "203.0.113.9")
    told = outbox(app, template="account_security")
    assert [(row.to_address, row.context["event"]) for row in told] == [(ANN, "new_device")]
    assert "Safari on an iPhone" in told[0].context["what"] and "203.0.113.9" in told[0].context["what"]
    post(phone, "/logout", page="/admin/")
    assert login(phone, ANN).status_code == 302  # the phone again: known now
    assert login(laptop, ANN).status_code == 302
    assert len(outbox(app, template="account_security")) == 1


def test_no_new_device_email_when_account_security_is_off(app, people):
    with app.app_context(), tenant(orgs_id(app, "org-a")):
        membership = db.session.scalar(select(Membership).where(Membership.user_id == people[ANN]))
        preferences.set_preferences(membership, {preferences.ACCOUNT_SECURITY: "off"}, actor="test")
        db.session.commit()
    device(app, ANN)
    device(app, ANN, IPHONE)
    assert outbox(app, template="account_security") == []


# --- password rules ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("password", "rule"),
    [("short one", "Too short"), ("qazwsxedcrfv", "Commonly breached"), ("1QAZ2WSX3EDC", "Commonly breached")],
)
def test_short_and_breached_passwords_are_refused_with_the_rule_named(app, password, rule):
    with app.app_context(), pytest.raises(ValidationError, match=rule):
        orgs.validate_password(password)


def test_the_reset_page_names_the_rule_and_sets_nothing(app, people):
    with app.app_context():
        profile.request_password_reset(ANN)
        db.session.commit()
    reset = link_in(outbox(app, template="password_reset")[0], "reset_url")
    page = app.test_client()
    form = {"password": "1qaz2wsx3edc", "confirm": "1qaz2wsx3edc", "csrf_token": csrf_token(page, reset)}
    refused = page.post(reset, data=form)
    assert refused.status_code == 400 and "Commonly breached" in refused.get_data(as_text=True)
    with app.app_context(), platform_bypass("test"):
        assert db.session.get(User, people[ANN]).password_token_used_at is None


def test_the_cli_refuses_a_breached_password_with_the_rule_named(app, runner):
    result = runner.invoke(args=["create-platform-admin", "root@p.test", "--password", "Password1234"])
    assert result.exit_code != 0 and "Commonly breached" in result.output
    with app.app_context(), platform_bypass("test"):
        assert orgs.find_user("root@p.test") is None


def test_a_platform_admin_of_no_org_has_an_own_page_too(app):
    with app.app_context():
        make_user("root@p.test", platform_admin=True)
        db.session.remove()
    root = device(app, "root@p.test")
    page = root.get("/account/")
    assert page.status_code == 200 and "You belong to no organisation" in page.get_data(as_text=True)
    assert 'href="/account/"' in root.get("/admin/platform/overview/").get_data(as_text=True)
