"""One-time links stay one-time: a set-password link works only while its account is as it was when the
link was made, and adding someone to an org never takes a password and answers alike whoever the email
belongs to. Two orgs throughout: org A's admin keeps a link, org B (or the platform) changes the account.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select, update

from tests.factories import PASSWORD, make_user
from tests.helpers import csrf_token, login
from tests.world import EMAILS, api_as
from vsync.extensions import db
from vsync.models import AuditEvent, Membership, Organization, User
from vsync.services import members, orgs
from vsync.tenancy import platform_bypass, tenant

NEW = "new.person@example.test"
MEMBERS = "/api/v1/orgs/{org}/members"
LINK = re.compile(r"http://localhost(/set-password/[\w-]+)")


def invite(app, world, org: str = "org-a", email: str = NEW, role: str = "agent") -> str:
    """Org A's admin adds `email` through the API and keeps the link; its path."""
    admin = api_as(app.test_client(), f"admin_{org[-1]}", world, csrf=True)
    response = admin.post(MEMBERS.format(org=org), json={"email": email, "role": role})
    assert response.status_code == 201, response.get_json()
    return LINK.match(response.get_json()["set_password_url"]).group(1)


def choose(app, path: str, password: str = "chosen by whoever holds the link"):
    """Submit a password to the link (with a valid CSRF token, whatever the link's page shows)."""
    client = app.test_client()
    return client.post(path, data={"password": password, "confirm": password, "csrf_token": csrf_token(client)})


def the_user(email: str = NEW) -> User:
    return db.session.scalar(select(User).where(User.email == email))


def membership(org_id: int, email: str = NEW) -> Membership:
    return db.session.scalar(select(Membership).join(User).where(Membership.org_id == org_id, User.email == email))


def test_a_kept_link_works_while_nothing_changed(app, world):
    path = invite(app, world)
    assert app.test_client().get(path).status_code == 200
    assert choose(app, path).status_code == 302
    assert login(app.test_client(), NEW, "chosen by whoever holds the link").status_code == 302


# Each change of the account after org A's admin made the link, and (where there is one) its undoing.
def _password_set_by_another_path(world):
    with platform_bypass("test: a password set by any other path"):
        the_user().set_password("set some other way")


def _password_cleared_again(world):
    with platform_bypass("test"):
        db.session.execute(update(User).where(User.email == NEW).values(password_hash=None))


def _joined_org_b(world):
    with tenant(world.b, role="org_admin"):
        members.add_member(db.session.get(Organization, world.b), NEW, "org_admin")


def _left_org_b(world):
    with tenant(world.b, role="org_admin"):
        members.remove_member(db.session.get(Organization, world.b), membership(world.b))


def _role_changed(world, role: str = "org_admin"):
    with tenant(world.a, role="org_admin"):
        members.change_member(db.session.get(Organization, world.a), membership(world.a), role=role)


def _promoted(world):
    with platform_bypass("test: promoted to platform admin"):
        orgs.set_global_role(the_user(), "platform_admin")


def _demoted(world):
    with platform_bypass("test"):
        orgs.set_global_role(the_user(), "user")


def _deactivated(world, active: bool = False):
    with platform_bypass("test"):
        orgs.set_user_active(the_user(), active)


CHANGES = {
    "password set": (_password_set_by_another_path, _password_cleared_again),
    "membership gained in another org": (_joined_org_b, _left_org_b),
    "role changed": (_role_changed, lambda world: _role_changed(world, "agent")),
    "promoted to platform admin": (_promoted, _demoted),
    "deactivated": (_deactivated, lambda world: _deactivated(world, True)),
}


@pytest.mark.parametrize("change", CHANGES)
def test_a_link_opened_after_its_account_changed_is_refused_and_spent(app, world, in_app, change):
    path = invite(app, world)
    do, undo = CHANGES[change]
    with in_app():
        do(world)
        db.session.commit()
    opened = app.test_client().get(path)
    assert opened.status_code == 410 and "not valid any more" in opened.get_data(as_text=True)
    with in_app():
        undo(world)  # the account is as it was when the link was made: the link stays spent
        db.session.commit()
        with platform_bypass("test"):
            assert db.session.scalar(select(User.password_token_hash).where(User.email == NEW)) is None
    assert app.test_client().get(path).status_code == 410
    assert choose(app, path).status_code == 410
    assert login(app.test_client(), NEW, "chosen by whoever holds the link").status_code == 200  # not signed in


def test_a_link_used_once_is_refused_the_second_time(app, world):
    path = invite(app, world)
    assert choose(app, path, "the first password").status_code == 302
    again = choose(app, path, "the second password")
    assert again.status_code == 410 and "used already" in again.get_data(as_text=True)
    assert login(app.test_client(), NEW, "the second password").status_code == 200
    assert login(app.test_client(), NEW, "the first password").status_code == 302


def test_a_link_refused_for_a_change_is_spent_even_if_never_submitted(app, world, in_app):
    """The change is seen when the link is opened, before anyone submits a password."""
    path = invite(app, world)
    with in_app():
        _deactivated(world)
        db.session.commit()
    assert app.test_client().get(path).status_code == 410
    with in_app(), platform_bypass("test"):
        row = db.session.execute(
            select(User.password_token_hash, User.password_token_expires_at, User.password_token_state).where(
                User.email == NEW
            )
        ).one()
    assert tuple(row) == (None, None, None)


def test_the_reported_takeover_org_b_adds_the_person_as_org_admin_and_as_link_is_dead(app, world, in_app):
    a_link = invite(app, world)
    b_admin = api_as(app.test_client(), "admin_b", world)
    page = "/admin/orgs/org-b/members/"
    b_admin.post(
        page + "add", data={"add-email": NEW, "add-role": "org_admin", "csrf_token": csrf_token(b_admin, page)}
    )
    b_link = LINK.search(b_admin.get(page).get_data(as_text=True)).group(1)
    for path in (a_link, b_link):  # neither org may give a password to a person of two orgs
        assert choose(app, path).status_code == 410, path
    assert login(app.test_client(), NEW, "chosen by whoever holds the link").status_code == 200
    with in_app(), platform_bypass("test"):
        assert the_user().role == "user" and membership(world.b).role == "org_admin"
        reset = members.reset_password(the_user())  # the platform can
        db.session.commit()
    assert choose(app, f"/set-password/{reset}", "the person's own").status_code == 302
    assert login(app.test_client(), NEW, "the person's own").status_code == 302


def test_a_platform_reset_link_dies_when_the_account_joins_an_org(app, world, in_app):
    with in_app(), platform_bypass("test"):
        token = members.reset_password(the_user(EMAILS["agent_b"]))
        db.session.commit()
    invite(app, world, email=EMAILS["agent_b"])
    assert app.test_client().get(f"/set-password/{token}").status_code == 410
    assert login(app.test_client(), EMAILS["agent_b"], PASSWORD).status_code == 302  # the old one still works


# Adding an existing account answers as adding a new email, and never takes a password ------------------


def _normalised(text: str, email: str) -> str:
    text = LINK.sub("http://localhost/set-password/<token>", text.replace(email, "<email>"))
    return re.sub(r"/set-password/[\w-]+", "/set-password/<token>", text)


@pytest.fixture
def kinds_of_email(app, world):
    """An email new to vsync, one of org B's members, an account in no org (with a password), and one in
    no org still waiting for its first password (made by the platform)."""
    with app.app_context():
        make_user("loner@example.test")
        with platform_bypass("test"):
            members.issue_password_link(orgs.create_user("pending@example.test", None))
            db.session.commit()
    return {
        "new": NEW,
        "of org B": EMAILS["agent_b"],
        "in no org": "loner@example.test",
        "in no org, no password yet": "pending@example.test",
    }


def test_the_api_answers_alike_for_a_new_email_another_orgs_member_and_an_account_in_no_org(app, world, kinds_of_email):
    admin = api_as(app.test_client(), "admin_a", world, csrf=True)
    answers, audits = {}, {}
    for kind, email in kinds_of_email.items():
        response = admin.post(MEMBERS.format(org="org-a"), json={"email": email, "role": "agent", "extension": "150"})
        body = response.get_json()
        assert LINK.match(body["set_password_url"]) and len(body["set_password_url"]) == len(
            f"http://localhost/set-password/{'x' * 43}"
        )
        answers[kind] = (
            response.status_code,
            sorted(body),
            {k: v for k, v in body.items() if k not in ("id", "email", "created_at", "set_password_url")},
        )
        assert body["email"] == email
        audits[kind] = org_a_audit(app, world, email)
    assert len(set(map(repr, answers.values()))) == 1, answers
    assert answers["new"][0] == 201 and "user_id" not in answers["new"][1]
    assert len(set(map(repr, audits.values()))) == 1, audits
    assert audits["new"] == [("member.added", "<email> as agent, extension 150; a set-password link was given")]


def org_a_audit(app, world, email: str) -> list[tuple[str, str]]:
    """What org A's own audit log says about adding `email`, the email written out of it."""
    with app.app_context(), platform_bypass("test"):
        rows = db.session.execute(
            select(AuditEvent.action, AuditEvent.summary)
            .where(AuditEvent.org_id == world.a, AuditEvent.summary.contains(email))
            .order_by(AuditEvent.id)
        ).all()
    return [(action, summary.replace(email, "<email>")) for action, summary in rows]


def test_the_console_answers_alike_for_every_kind_of_email_and_offers_no_password(app, world, kinds_of_email):
    admin = api_as(app.test_client(), "admin_a", world)
    page = "/admin/orgs/org-a/members/"
    form = admin.get(page).get_data(as_text=True)
    assert 'type="password"' not in form and "add-password" not in form
    answers = {}
    for kind, email in kinds_of_email.items():
        response = admin.post(
            page + "add", data={"add-email": email, "add-role": "agent", "csrf_token": csrf_token(admin, page)}
        )
        flashes = re.findall(
            r'<div class="alert[^"]*"[^>]*>(.*?)</div>', admin.get(page).get_data(as_text=True), re.DOTALL
        )
        answers[kind] = (response.status_code, [_normalised(f, email) for f in flashes])
    assert len(set(map(repr, answers.values()))) == 1, answers
    assert "is now agent of org-a" in repr(answers["new"])


def test_the_console_and_the_api_refuse_nothing_differently_and_set_no_password(app, world, kinds_of_email):
    api = api_as(app.test_client(), "admin_a", world, csrf=True)
    for email in kinds_of_email.values():
        typed = api.post(
            MEMBERS.format(org="org-a"), json={"email": email, "role": "agent", "password": "chosen by org a"}
        )
        assert typed.status_code == 400 and "password" in typed.get_json()["error"]["details"]
    console = api_as(app.test_client(), "admin_a", world)
    page = "/admin/orgs/org-a/members/"
    console.post(
        page + "add",
        data={
            "add-email": EMAILS["agent_b"],
            "add-role": "manager",
            "add-password": "chosen by org a",
            "csrf_token": csrf_token(console, page),
        },
    )
    api.post(MEMBERS.format(org="org-a"), json={"email": "loner@example.test", "role": "manager"})
    for email in (EMAILS["agent_b"], "loner@example.test"):
        assert login(app.test_client(), email, PASSWORD).status_code == 302
        assert login(app.test_client(), email, "chosen by org a").status_code == 200
    again = api.post(MEMBERS.format(org="org-a"), json={"email": EMAILS["agent_b"], "role": "agent"})
    assert again.status_code == 409


def test_an_existing_accounts_link_opens_on_not_valid_and_its_password_stays(app, world):
    path = invite(app, world, email=EMAILS["agent_b"])
    opened = app.test_client().get(path)
    assert opened.status_code == 410 and "sign in with it" in opened.get_data(as_text=True)
    assert choose(app, path).status_code == 410
    assert login(app.test_client(), EMAILS["agent_b"], PASSWORD).status_code == 302


def test_the_cli_and_the_platform_console_add_existing_accounts_without_a_password(app, world, runner):
    from tests.test_cli import run

    result = run(runner, "add-member", "org-a", EMAILS["agent_b"], "--role", "agent", "--password", "pw pw pw pw")
    assert result.exit_code == 2 and "--password" in result.output
    result = run(runner, "add-member", "org-a", EMAILS["agent_b"], "--role", "agent")
    assert result.exit_code == 0 and result.output.strip().splitlines()[-1].startswith("/set-password/")
    root = api_as(app.test_client(), "root", world)
    page = "/admin/platform/memberships/"
    assert 'type="password"' not in root.get(page).get_data(as_text=True)
    root.post(
        page + "add",
        data={
            "member-org": world.b,
            "member-email": EMAILS["agent_a"],
            "member-role": "agent",
            "csrf_token": csrf_token(root, page),
        },
    )
    assert "is now agent of org-b" in root.get(page).get_data(as_text=True)
    for email in (EMAILS["agent_a"], EMAILS["agent_b"]):
        assert login(app.test_client(), email, PASSWORD).status_code == 302
