"""The tenancy rules in the two-org world: who sees which traffic, the Core helper, the audit log,
and the guards of the unit of work. Every statement shape is walked in `test_tenancy_catalogue`."""

from __future__ import annotations

import ast
import pathlib
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tests.world import B_ONLY, MOVED, SHARED, T
from vsync.errors import Conflict
from vsync.extensions import db
from vsync.models import Call, Integration, Organization, SyncRun
from vsync.services import audit
from vsync.services.numbers import assign_number, get_number
from vsync.tenancy import (
    CrossTenantWrite,
    RefusedStatement,
    Scope,
    TenancyError,
    platform_bypass,
    tenant,
    traffic_visible_sql,
)


def visible_calls(prefix: str = "") -> set[str]:
    return {e for e in db.session.scalars(select(Call.external_id)) if e.startswith(prefix)}


def test_each_org_sees_the_calls_on_its_numbers_in_its_periods_only(ctx, world):
    with tenant(world.a):
        assert visible_calls() == {"a-1100", "a-1300", "shared-1200", "moved-before-1100"}
    with tenant(world.b):
        assert visible_calls() == {"b-1100", "b-1300", "shared-1200", "moved-after-1300"}


def test_a_reassigned_number_splits_its_history_at_the_moment_of_reassignment(ctx, world):
    with tenant(world.a):
        assert visible_calls("moved") == {"moved-before-1100"}
    with tenant(world.b):
        assert visible_calls("moved") == {"moved-after-1300"}


def test_the_core_helper_filters_by_the_whole_scope_the_same_as_the_hook(ctx, world):
    calls = Call.__table__
    for scope in (
        Scope(org_id=world.a),
        Scope(org_id=world.b),
        Scope(org_id=world.a, role="agent", extension="101"),
        Scope(org_id=world.b, role="agent", extension="201"),
    ):
        with platform_bypass("core helper"):
            core = set(db.session.scalars(select(calls.c.external_id).where(traffic_visible_sql(calls, scope))))
        with tenant(scope):
            assert core == visible_calls(), scope


def test_core_selects_on_scoped_tables_are_narrowed_inside_a_tenant_scope_too(ctx, world):
    with tenant(world.a):
        assert db.session.scalar(select(func.count()).select_from(Call.__table__)) == 4
        assert db.session.scalar(select(func.count()).select_from(Organization.__table__)) == 1


def test_audit_record_cannot_target_another_org_from_a_tenant(ctx, world):
    with pytest.raises(CrossTenantWrite), tenant(world.a):
        audit.record("test.crossing", org_id=world.b, actor="test")
    db.session.rollback()


def test_platform_bypass_sees_every_org_and_needs_a_reason(ctx, world):
    with platform_bypass("test"):
        assert db.session.scalar(select(func.count()).select_from(Organization)) == 2
        assert len(visible_calls()) == 7
    with pytest.raises(TenancyError), platform_bypass(""):
        pass


def test_assign_number_is_a_platform_operation_refused_in_a_tenant_scope(ctx, world):
    with pytest.raises(CrossTenantWrite), tenant(world.a):
        org = db.session.get(Organization, world.a)
        assign_number(org, get_number(MOVED), at=T + timedelta(days=400))  # A had it until T
    db.session.rollback()


def test_assignment_periods_of_one_number_in_one_org_cannot_overlap(ctx, world):
    with platform_bypass("test"):
        org = db.session.get(Organization, world.a)
        with pytest.raises(Conflict):
            assign_number(org, get_number(SHARED), at=T)
        with pytest.raises(Conflict):  # A had MOVED until T: a new period may start at T, not before
            assign_number(org, get_number(MOVED), at=T - timedelta(minutes=1))
        assert assign_number(org, get_number(MOVED), at=T).assigned_at == T
        assert get_number(B_ONLY).e164 == B_ONLY


def test_an_error_inside_a_scope_surfaces_and_its_pending_rows_are_dropped(ctx, world):
    with pytest.raises(ValueError, match="boom"), tenant(world.a):
        db.session.add(SyncRun(org_id=world.b, integration_id=world.integrations["b"], kind="sms"))
        raise ValueError("boom")  # leaving must not flush the cross-org row and mask this error
    db.session.rollback()
    with platform_bypass("check"):
        assert db.session.scalar(select(func.count()).select_from(SyncRun).where(SyncRun.kind == "sms")) == 0


def test_from_statement_and_legacy_bulk_methods_are_refused_on_scoped_models(ctx, world):
    from sqlalchemy import text

    with pytest.raises(RefusedStatement), tenant(world.a):
        db.session.execute(select(Call).from_statement(text("SELECT * FROM calls")))
    db.session.rollback()
    with pytest.raises(RefusedStatement), tenant(world.a):
        db.session.bulk_insert_mappings(
            SyncRun, [{"org_id": world.b, "integration_id": world.integrations["b"], "kind": "sms"}]
        )
    db.session.rollback()


# Modules reviewed to run Core or text SQL on tables, scoping it themselves (see `vsync.tenancy`).
REVIEWED_CORE_MODULES = {
    "vsync/services/sync/ingest.py",
    "vsync/services/audit.py",
    "vsync/auth/principals.py",
    "vsync/auth/keys.py",
    "vsync/auth/throttle.py",
    "vsync/api/health.py",
    "vsync/metrics.py",
    "vsync/services/rollups.py",  # hourly rollups of a number: every org's rows of it, recomputed from rows
    "vsync/services/integrations.py",  # the shared MightyCall token, by integration id, on its own connection
    "vsync/services/webhooks/store.py",  # the receiver's connection: the token's row, events stored in the token's org
    "vsync/services/recordings.py",  # a recording's fresh provider link, by id, narrowed by the hook
    "vsync/services/members.py",  # users by email across orgs; set-password links, conditioned on the scope
    "vsync/services/accounts.py",  # whether any org's integration shares an account: a count, no rows
    "vsync/services/live.py",  # an agent's queue figures: two numbers under the org's own criterion
    "vsync/services/sessions.py",  # sign-in sessions, which no org sees, ended from any scope
    "vsync/services/profile.py",  # a person's own account, by their own user id, in no org
    "vsync/services/twofactor.py",  # a person's own two-factor columns, by their own user id, in no org
    "vsync/services/notifications/mail.py",  # a person's account emails, which belong to no org
    "vsync/services/replica.py",  # the replica's recovery state: server functions and a statistics view, no table
    "vsync/services/csv_copy.py",  # a list's COPY: the statement narrowed by the rewriter, run by the driver
}
REVIEWED_CORE_PACKAGES = ("vsync/models/", "vsync/tenancy/")  # each kind declares its criterion over its table;
# the tenant filter checks rows with the same criterion


def _core_uses(path: pathlib.Path) -> list[str]:
    """Lines that build Core or text SQL on a table (`Model.__table__`, `text(...)`, `literal_column(...)`,
    a lightweight `table(...)`), run SQL past the session's hooks (`.connection()`, `db.engine.connect()`),
    or mark a statement as reviewed (`reviewed_sql(...)`, which lets it run so in a tenant scope)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute) and (
            node.attr in ("__table__", "connection")
            or (node.attr in ("connect", "begin") and getattr(node.value, "attr", None) == "engine")
        ):
            found.append(f"{path}:{node.lineno} .{node.attr}")
        elif isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) in (
            "text",
            "literal_column",
            "table",
            "reviewed_sql",
        ):
            found.append(f"{path}:{node.lineno} {getattr(node.func, 'id', getattr(node.func, 'attr', ''))}()")
    return found


def test_core_and_text_sql_appear_only_in_reviewed_modules():
    root = pathlib.Path(__file__).resolve().parent.parent
    offenders = [
        use
        for path in sorted((root / "vsync").rglob("*.py"))
        if str(path.relative_to(root)) not in REVIEWED_CORE_MODULES
        and not str(path.relative_to(root)).startswith(REVIEWED_CORE_PACKAGES)
        and "mightycall" not in path.parts
        for use in _core_uses(path)
    ]
    assert offenders == [], "Core or text SQL outside the reviewed modules:\n" + "\n".join(offenders)


def test_the_database_itself_refuses_a_row_pointing_at_another_orgs_integration(ctx, world):
    from sqlalchemy.exc import IntegrityError

    from vsync.models import WebhookEvent

    for row in (
        SyncRun(org_id=world.a, integration_id=world.integrations["b"], kind="sms"),
        WebhookEvent(org_id=world.a, integration_id=world.integrations["b"], guid="crossing", body="{}"),
    ):
        with pytest.raises(IntegrityError), platform_bypass("even a platform operation cannot"):
            db.session.add(row)
            db.session.flush()
        db.session.rollback()


def test_an_org_writes_rows_of_its_own_integrations_whatever_their_ids(ctx, world):
    """A row keyed (org_id, integration_id) is checked by its integration id only: the org id half of
    that key names the integration's org, not an integration."""
    from tests.factories import make_integration, make_org
    from vsync.models import WebhookEvent

    org_c = make_org("org-c")
    own = make_integration(org_c, base_url="http://127.0.0.1:2/v4")
    if own == org_c:  # no integration of org C may carry org C's id
        first, own = own, make_integration(org_c, base_url="http://127.0.0.1:3/v4")
        with platform_bypass("test setup"):
            db.session.delete(db.session.get(Integration, first))
            db.session.commit()
    with tenant(org_c):
        db.session.add_all(
            [
                SyncRun(org_id=org_c, integration_id=own, kind="sms"),
                WebhookEvent(org_id=org_c, integration_id=own, guid="own", body="{}"),
            ]
        )
        db.session.flush()
    db.session.rollback()
    with pytest.raises(CrossTenantWrite), tenant(org_c):
        db.session.add(SyncRun(org_id=org_c, integration_id=world.integrations["a"], kind="sms"))
        db.session.flush()
    db.session.rollback()


def test_a_lightweight_table_named_like_a_scoped_one_is_refused(ctx, world):
    from sqlalchemy import table

    with pytest.raises(RefusedStatement), tenant(world.a):
        db.session.execute(select(func.count()).select_from(table("calls")))
    db.session.rollback()


def test_an_org_edits_but_never_deletes_its_own_row_and_never_rewrites_its_audit_log(ctx, world):
    from sqlalchemy import delete, update

    from vsync.models import AuditEvent

    with tenant(world.a):
        db.session.execute(update(Organization).values(name="Renamed A"))
    db.session.commit()
    for statement in (delete(Organization), update(AuditEvent).values(summary="nothing happened"), delete(AuditEvent)):
        with pytest.raises(CrossTenantWrite), tenant(world.a):
            db.session.execute(statement)
        db.session.rollback()
    with pytest.raises(CrossTenantWrite), tenant(world.a):
        db.session.delete(db.session.get(Organization, world.a))
        db.session.flush()
    db.session.rollback()
    with platform_bypass("check"):
        assert db.session.get(Organization, world.a).name == "Renamed A"
        assert (
            db.session.scalar(
                select(func.count()).select_from(AuditEvent).where(AuditEvent.summary == "nothing happened")
            )
            == 0
        )
