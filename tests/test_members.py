"""Members and org settings: the services the CLI, the API and the console share, in two orgs."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from tests.helpers import csrf_token, login
from tests.world import EMAILS
from vsync.errors import Conflict, NotFound, ValidationError
from vsync.extensions import db
from vsync.models import AuditEvent, Membership, Organization, User
from vsync.models.types import utcnow
from vsync.services import members, orgs
from vsync.tenancy import platform_bypass, tenant


def _org(org_id: int) -> Organization:
    return db.session.get(Organization, org_id)


def _membership(org_id: int, email: str) -> Membership:
    return db.session.scalar(select(Membership).join(User).where(Membership.org_id == org_id, User.email == email))


def _actions() -> list[str]:
    with platform_bypass("test"):
        return list(db.session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


def test_an_org_admin_adds_a_member_of_another_org_by_email_in_their_own_scope(ctx, world):
    with tenant(world.a, role="org_admin"):
        membership = members.add_member(_org(world.a), EMAILS["admin_b"], "agent", extension="150").membership
        db.session.commit()
        assert (membership.user.email, membership.role, membership.extension) == (EMAILS["admin_b"], "agent", "150")
    with tenant(world.b):
        assert _membership(world.b, EMAILS["admin_b"]).role == "org_admin"  # B's membership untouched
    assert _actions()[-1] == "member.added"


def test_adding_an_existing_member_again_is_a_conflict(ctx, world):
    with tenant(world.a), pytest.raises(Conflict):
        members.add_member(_org(world.a), EMAILS["agent_a"], "manager")
    db.session.rollback()


@pytest.mark.parametrize("role,extension,field", [("boss", None, "role"), ("agent", "12a", "extension")])
def test_add_member_validates_role_and_extension(ctx, world, role, extension, field):
    with tenant(world.a), pytest.raises(ValidationError) as raised:
        members.add_member(_org(world.a), "new@a.test", role, extension=extension)
    assert raised.value.field == field
    db.session.rollback()


def _invite(org_id: int, email: str) -> str:
    with tenant(org_id, role="org_admin"):
        token = members.add_member(_org(org_id), email, "agent", extension="105").password_token
        db.session.commit()
    return token


def test_a_new_member_without_a_password_sets_one_through_the_link_once(app, world, client, in_app):
    with in_app():
        token = _invite(world.a, "new@a.test")
    page = client.get(f"/set-password/{token}")
    assert page.status_code == 200 and "new@a.test" in page.get_data(as_text=True)
    form = {
        "password": "a brand new pw",
        "confirm": "a brand new pw",
        "csrf_token": csrf_token(client, f"/set-password/{token}"),
    }
    assert client.post(f"/set-password/{token}", data=form).status_code == 302
    assert login(client, "new@a.test", "a brand new pw").status_code == 302
    again = client.get(f"/set-password/{token}")
    assert again.status_code == 410 and "used already" in again.get_data(as_text=True)
    with in_app():
        actions = _actions()
    assert actions.index("member.added") < actions.index("user.password_set")


def test_an_expired_link_is_refused_and_sets_nothing(app, world, client, in_app):
    with in_app():
        token = _invite(world.a, "late@a.test")
        with platform_bypass("test: the link's 72 hours pass"):
            db.session.execute(
                update(User)
                .where(User.email == "late@a.test")
                .values(password_token_expires_at=utcnow() - timedelta(seconds=1))
            )
            db.session.commit()
    page = client.get(f"/set-password/{token}")
    assert page.status_code == 410 and "expired" in page.get_data(as_text=True)
    with in_app(), pytest.raises(ValidationError):
        members.set_password_with_link(token, "a brand new pw")
    assert login(client, "late@a.test", "a brand new pw").status_code == 200  # not signed in


def test_a_link_lasts_72_hours(ctx, world):
    _invite(world.a, "new@a.test")
    with platform_bypass("test"):
        expires = db.session.scalar(select(User.password_token_expires_at).where(User.email == "new@a.test"))
    assert timedelta(hours=71, minutes=59) < expires - utcnow() <= timedelta(hours=72)


def test_an_unknown_link_is_refused(client, world):
    response = client.get("/set-password/not-a-token")
    assert response.status_code == 410 and "not valid" in response.get_data(as_text=True)


def test_a_new_link_replaces_the_old_one(ctx, world):
    first = _invite(world.a, "new@a.test")
    with platform_bypass("test: a platform admin resets"):
        second = members.issue_password_link(db.session.scalar(select(User).where(User.email == "new@a.test")))
        db.session.commit()
    with pytest.raises(ValidationError):
        members.password_link(first)
    assert members.password_link(second).email == "new@a.test"


def test_an_org_admin_cannot_issue_a_link_for_an_existing_account(ctx, world):
    from vsync.tenancy import CrossTenantWrite

    with tenant(world.a, role="org_admin"):
        user = db.session.scalar(select(User).where(User.email == EMAILS["agent_a"]))
        with pytest.raises(CrossTenantWrite):
            members.issue_password_link(user)
    db.session.rollback()


def test_the_password_token_hash_is_never_read_in_a_tenant_scope(ctx, world):
    from vsync.tenancy import RefusedStatement

    with tenant(world.a), pytest.raises(RefusedStatement):
        db.session.execute(select(User.password_token_hash))
    db.session.rollback()


def test_changing_a_member_changes_role_and_extension_and_audits_what_changed(ctx, world):
    with tenant(world.a, role="org_admin"):
        membership = _membership(world.a, EMAILS["agent_a"])
        members.change_member(_org(world.a), membership, role="manager", extension=None)
        db.session.commit()
        assert (membership.role, membership.extension) == ("manager", None)
    with platform_bypass("test"):
        summary = db.session.scalar(select(AuditEvent.summary).where(AuditEvent.action == "member.changed"))
    assert "role agent → manager" in summary and "extension 101 → none" in summary


def test_the_last_org_admin_can_be_neither_demoted_nor_removed(ctx, world):
    with tenant(world.a, role="org_admin"):
        admin = _membership(world.a, EMAILS["admin_a"])
        for attempt in (
            lambda: members.change_member(_org(world.a), admin, role="manager"),
            lambda: members.remove_member(_org(world.a), admin),
        ):
            with pytest.raises(Conflict) as raised:
                attempt()
            assert (raised.value.code, raised.value.status) == ("last_org_admin", 409)
        db.session.rollback()


def test_with_a_second_org_admin_the_first_can_be_demoted_and_removed(ctx, world):
    with tenant(world.a, role="org_admin"):
        org = _org(world.a)
        members.change_member(org, _membership(world.a, EMAILS["manager_a"]), role="org_admin")
        members.change_member(org, _membership(world.a, EMAILS["admin_a"]), role="manager")
        members.remove_member(org, _membership(world.a, EMAILS["admin_a"]))
        db.session.commit()
        assert _membership(world.a, EMAILS["admin_a"]) is None
    with platform_bypass("test"):
        assert db.session.scalar(select(User.id).where(User.email == EMAILS["admin_a"])) is not None


def test_another_orgs_membership_is_not_found(ctx, world):
    with platform_bypass("test"):
        of_b = _membership(world.b, EMAILS["agent_b"])
        org_a = _org(world.a)
        for attempt in (
            lambda: members.change_member(org_a, of_b, role="manager"),
            lambda: members.remove_member(org_a, of_b),
        ):
            with pytest.raises(NotFound):
                attempt()
        db.session.rollback()


def test_org_settings_are_validated_and_audited_with_what_changed(ctx, world):
    with tenant(world.b, role="org_admin"):
        org = _org(world.b)
        orgs.update_org_settings(
            org,
            name="Org B Ltd",
            timezone="Europe/London",
            service_level_target="0.9",
            service_level_threshold_seconds="30",
            short_abandon_seconds=0,
        )
        db.session.commit()
        assert (
            org.name,
            org.timezone,
            org.service_level_target,
            org.service_level_threshold_seconds,
            org.short_abandon_seconds,
        ) == ("Org B Ltd", "Europe/London", 0.9, 30, 0)
    with platform_bypass("test"):
        event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "org.updated"))
        assert event.org_id == world.b and "timezone: America/New_York → Europe/London" in event.summary


@pytest.mark.parametrize(
    "setting,value",
    [
        ("name", " "),
        ("timezone", "Mars/Olympus"),
        ("service_level_target", 80),
        ("service_level_target", "x"),
        ("service_level_threshold_seconds", 0),
        ("service_level_threshold_seconds", "1.5"),
        ("short_abandon_seconds", -1),
        ("short_abandon_seconds", True),
    ],
)
def test_a_bad_setting_names_its_field_and_changes_nothing(ctx, world, setting, value):
    with tenant(world.a, role="org_admin"):
        org = _org(world.a)
        with pytest.raises(ValidationError) as raised:
            orgs.update_org_settings(org, **{"short_abandon_seconds": 9, setting: value})
        assert raised.value.field == setting and org.short_abandon_seconds == 5
        db.session.rollback()


def test_unchanged_settings_write_no_audit_row(ctx, world):
    before = len(_actions())
    with tenant(world.a, role="org_admin"):
        orgs.update_org_settings(_org(world.a), timezone="UTC")
        db.session.commit()
    assert len(_actions()) == before
