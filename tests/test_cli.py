"""The flask commands: each calls one domain function, writes the audit log, and fails cleanly."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from vsync.auth.keys import verify_api_key
from vsync.extensions import db
from vsync.models import ApiKey, AuditEvent, Membership, NumberAssignment, Organization, PhoneNumber, User
from vsync.tenancy import platform_bypass


def run(runner, *args):
    return runner.invoke(args=list(args), catch_exceptions=False)


def count(app, model, *where) -> int:
    with app.app_context(), platform_bypass("test"):
        return db.session.scalar(select(func.count()).select_from(model).where(*where))


def audit_actions(app) -> list[str]:
    with app.app_context(), platform_bypass("test"):
        return list(db.session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


def test_setup_commands_build_an_org_and_audit_every_step(app, runner):
    assert run(runner, "create-platform-admin", "root@p.test", "--password", "long enough pw").exit_code == 0
    assert run(runner, "create-org", "Acme", "--slug", "acme", "--timezone", "America/New_York").exit_code == 0
    assert run(runner, "add-member", "acme", "ann@acme.test", "--role", "manager", "--password", "long enough pw",
               "--extension", "101").exit_code == 0
    assert run(runner, "add-number", "+1 (212) 555-0148", "--label", "Front desk").exit_code == 0
    assert run(runner, "assign-number", "acme", "+12125550148", "--at", "2026-01-01T00:00:00Z").exit_code == 0
    assert run(runner, "unassign-number", "acme", "+12125550148", "--at", "2026-06-01").exit_code == 0
    assert count(app, Membership, Membership.extension == "101") == 1
    assert count(app, PhoneNumber, PhoneNumber.e164 == "+12125550148") == 1
    assert count(app, NumberAssignment, NumberAssignment.unassigned_at.is_not(None)) == 1
    assert audit_actions(app) == ["user.created", "org.created", "user.created", "member.added", "number.added",
                                  "number.assigned", "number.unassigned"]


def test_create_api_key_prints_the_key_alone_on_the_last_line(app, runner):
    run(runner, "create-org", "Acme", "--slug", "acme")
    result = run(runner, "create-api-key", "acme", "--name", "dashboard", "--scope", "write")
    assert result.exit_code == 0
    key = result.output.strip().splitlines()[-1]
    with app.app_context():
        principal = verify_api_key(key)
    assert principal.scopes == ("read", "write") and principal.org_id is not None
    assert key not in "".join(audit_actions(app))


def test_revoke_api_key_stops_the_key(app, runner):
    key = run(runner, "create-api-key", "--platform", "--name", "ops").output.strip().splitlines()[-1]
    with app.app_context(), platform_bypass("test"):
        key_id = db.session.scalar(select(ApiKey.id))
    assert run(runner, "revoke-api-key", str(key_id)).exit_code == 0
    with app.app_context():
        assert verify_api_key(key) is None


@pytest.mark.parametrize("args,message", [
    (("create-org", "Acme", "--slug", "Not A Slug"), "error (slug)"),
    (("create-org", "Acme", "--slug", "acme", "--timezone", "Mars/Olympus"), "error (timezone)"),
    (("add-number", "12345"), "error (number)"),
    (("add-number", "+1 212 000 0000"), "error (number)"),
    (("assign-number", "nope", "+12125550148"), "error (slug)"),
    (("add-member", "nope", "x@y.test", "--role", "agent"), "error (slug)"),
    (("create-api-key", "--name", "x"), "error (org_slug)"),
    (("create-platform-admin", "root@p.test", "--password", "short"), "error (password)"),
    (("revoke-api-key", "999"), "error (key_id)"),
])
def test_bad_arguments_exit_2_with_one_line_and_write_nothing(app, runner, args, message):
    result = runner.invoke(args=list(args))
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0 and message in result.output
    assert count(app, Organization) == 0 and count(app, User) == 0 and audit_actions(app) == []


def test_assigning_a_number_twice_is_a_conflict(app, runner):
    run(runner, "create-org", "Acme", "--slug", "acme")
    run(runner, "add-number", "+12125550148")
    assert run(runner, "assign-number", "acme", "+12125550148").exit_code == 0
    result = runner.invoke(args=["assign-number", "acme", "+12125550148"])
    assert result.exit_code == 2 and "already" in result.output


def test_demo_is_idempotent(app, runner):
    first = run(runner, "demo")
    assert first.exit_code == 0 and "admin@vsync.demo" in first.output
    counts = [count(app, m) for m in (Organization, User, Membership, PhoneNumber, NumberAssignment)]
    assert run(runner, "demo").exit_code == 0
    assert [count(app, m) for m in (Organization, User, Membership, PhoneNumber, NumberAssignment)] == counts
    assert counts[0] == 2


def test_rotate_encryption_keys_reencrypts_under_the_newest_key(app, runner):
    from cryptography.fernet import Fernet
    from tests.conftest import app_config
    from tests.factories import make_integration, make_org
    from vsync import create_app, crypto
    from vsync.models import Integration
    with app.app_context():
        integration_id = make_integration(make_org("acme"), api_key="secret-api-key")
    new_key = Fernet.generate_key().decode()
    rotated = create_app(app_config(VSYNC_ENCRYPTION_KEYS=[new_key, *app.config["VSYNC_ENCRYPTION_KEYS"]]))
    assert rotated.test_cli_runner().invoke(args=["rotate-encryption-keys"]).exit_code == 0
    only_new = create_app(app_config(VSYNC_ENCRYPTION_KEYS=[new_key]))
    with only_new.app_context(), platform_bypass("test"):
        stored = db.session.get(Integration, integration_id).credentials_encrypted
        assert crypto.decrypt_json(stored)["api_key"] == "secret-api-key"
