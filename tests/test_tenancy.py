"""The tenant filter, with two orgs in every test, each test trying to cross from one to the other."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import joinedload, selectinload

from tests.factories import T0, assign, make_calls, make_integration, make_number, make_org, make_user
from vsync.extensions import db
from vsync.models import (ApiKey, Call, Integration, Membership, NumberAssignment, Organization, PhoneNumber,
                          SyncRun)
from vsync.services import audit
from vsync.services.keys import create_api_key
from vsync.tenancy import (CrossTenantWrite, TenancyError, TenantContextRequired, platform_bypass, tenant,
                           traffic_visible_sql)

A_ONLY, B_ONLY, SHARED, MOVED = "+12125550101", "+12125550102", "+12125550103", "+12125550104"
T = T0  # the moment MOVED passes from org A to org B


@pytest.fixture
def world(ctx):
    """Org A and org B, each with a member, a key, a sync run, an integration and calls on:
    A_ONLY (A's), B_ONLY (B's), SHARED (both orgs'), MOVED (A's until T, B's from T)."""
    ids = {"a": make_org("org-a"), "b": make_org("org-b")}
    make_user("alice@a.test", org_slug="org-a")
    make_user("bob@b.test", org_slug="org-b")
    numbers = {e164: make_number(e164) for e164 in (A_ONLY, B_ONLY, SHARED, MOVED)}
    assign("org-a", A_ONLY)
    assign("org-b", B_ONLY)
    assign("org-a", SHARED)
    assign("org-b", SHARED)
    assign("org-a", MOVED, until=T)
    assign("org-b", MOVED, at=T)
    ids["int_a"] = make_integration(ids["a"])
    ids["int_b"] = make_integration(ids["b"])
    hour = timedelta(hours=1)
    with platform_bypass("test setup"):
        calls = {
            "a": make_calls(ids["int_a"], numbers[A_ONLY], [T - hour, T + hour], prefix="a"),
            "b": make_calls(ids["int_b"], numbers[B_ONLY], [T - hour, T + hour], prefix="b"),
            "shared": make_calls(ids["int_a"], numbers[SHARED], [T], prefix="shared"),
            "moved_before": make_calls(ids["int_a"], numbers[MOVED], [T - hour], prefix="moved-before"),
            "moved_after": make_calls(ids["int_b"], numbers[MOVED], [T + hour], prefix="moved-after"),
        }
        for org, integration in (("a", "int_a"), ("b", "int_b")):
            create_api_key(org_id=ids[org], name=f"key {org}")
            db.session.add(SyncRun(org_id=ids[org], integration_id=ids[integration], kind="calls"))
        db.session.commit()
        ids["call_ids"] = {ext: cid for ext, cid in db.session.execute(select(Call.external_id, Call.id))}
    ids["calls"] = calls
    ids["numbers"] = numbers
    return ids


def visible_calls() -> set[str]:
    return set(db.session.scalars(select(Call.external_id)))


def test_each_org_selects_only_calls_on_its_numbers_in_its_periods(world):
    c = world["calls"]
    with tenant(world["a"]):
        assert visible_calls() == {*c["a"], *c["shared"], *c["moved_before"]}
    with tenant(world["b"]):
        assert visible_calls() == {*c["b"], *c["shared"], *c["moved_after"]}


def test_number_shared_by_two_orgs_shows_its_calls_to_both(world):
    for org in ("a", "b"):
        with tenant(world[org]):
            assert set(world["calls"]["shared"]) <= visible_calls()


def test_reassigned_number_splits_its_history_at_the_moment_of_reassignment(world):
    with tenant(world["a"]):
        assert visible_calls() & {*world["calls"]["moved_before"], *world["calls"]["moved_after"]} == \
            set(world["calls"]["moved_before"])
    with tenant(world["b"]):
        assert visible_calls() & {*world["calls"]["moved_before"], *world["calls"]["moved_after"]} == \
            set(world["calls"]["moved_after"])


def test_counts_match_the_visible_rows(world):
    with tenant(world["a"]):
        assert db.session.scalar(select(func.count()).select_from(Call)) == 4
        assert db.session.query(Call).count() == 4
        assert db.session.scalar(select(func.count(Membership.id))) == 1
        assert db.session.scalar(select(func.count()).select_from(Organization)) == 1


def test_session_get_of_another_orgs_rows_returns_none(world):
    b_call = world["call_ids"][world["calls"]["b"][0]]
    with tenant(world["a"]):
        assert db.session.get(Call, b_call) is None
        assert db.session.get(Integration, world["int_b"]) is None
        assert db.session.get(Organization, world["b"]) is None
        assert db.session.get(Integration, world["int_a"]) is not None


def test_object_loaded_under_bypass_is_not_served_from_the_identity_map_to_a_tenant(world):
    with platform_bypass("test"):
        assert db.session.get(Integration, world["int_b"]) is not None
    with tenant(world["a"]):
        assert db.session.get(Integration, world["int_b"]) is None


def test_lazy_selectin_and_joined_loads_stay_inside_the_org(world):
    shared_id = world["numbers"][SHARED]
    with tenant(world["a"]):
        number = db.session.get(PhoneNumber, shared_id)
        assert {a.org_id for a in number.assignments} == {world["a"]}  # lazy
    with tenant(world["a"]):
        number = db.session.scalars(select(PhoneNumber).where(PhoneNumber.id == shared_id)
                                    .options(selectinload(PhoneNumber.assignments))).one()
        assert {a.org_id for a in number.assignments} == {world["a"]}
    with tenant(world["a"]):
        numbers = db.session.scalars(select(PhoneNumber).options(joinedload(PhoneNumber.assignments))).unique().all()
        assert {a.org_id for n in numbers for a in n.assignments} == {world["a"]}
        assert {n.e164 for n in numbers} == {A_ONLY, SHARED, MOVED}
    with tenant(world["b"]):
        orgs = db.session.scalars(select(Organization).options(selectinload(Organization.memberships))).all()
        assert [m.user.email for o in orgs for m in o.memberships] == ["bob@b.test"]


def test_orm_bulk_update_and_delete_touch_only_the_current_org(world):
    with tenant(world["a"]):
        db.session.execute(update(Call).values(agent_extension="999"), execution_options={"synchronize_session": False})
        db.session.execute(delete(ApiKey))
        db.session.execute(update(SyncRun).values(error="touched"))
        db.session.commit()
    with platform_bypass("check"):
        touched = set(db.session.scalars(select(Call.external_id).where(Call.agent_extension == "999")))
        assert touched == {*world["calls"]["a"], *world["calls"]["shared"], *world["calls"]["moved_before"]}
        assert set(db.session.scalars(select(ApiKey.org_id))) == {world["b"]}
        assert set(db.session.scalars(select(SyncRun.org_id).where(SyncRun.error == "touched"))) == {world["a"]}


def test_scoped_query_without_a_tenant_fails_closed(world):
    for statement in (select(Call), select(Membership.id), select(func.count()).select_from(Integration),
                      update(SyncRun).values(error="x"), delete(ApiKey)):
        with pytest.raises(TenantContextRequired):
            db.session.execute(statement)
        db.session.rollback()
    with pytest.raises(TenantContextRequired):
        db.session.get(Membership, 1)


def test_write_without_a_tenant_fails_closed(world):
    db.session.add(SyncRun(org_id=world["a"], integration_id=world["int_a"], kind="sms"))
    with pytest.raises(TenantContextRequired):
        db.session.flush()
    db.session.rollback()


def test_new_rows_are_stamped_with_the_current_org(world):
    with tenant(world["a"]):
        run = SyncRun(integration_id=world["int_a"], kind="sms")
        db.session.add(run)
        db.session.flush()
        assert run.org_id == world["a"]
        db.session.commit()


def test_creating_a_row_in_another_org_is_refused(world):
    with pytest.raises(CrossTenantWrite):
        with tenant(world["a"]):
            db.session.add(SyncRun(org_id=world["b"], integration_id=world["int_b"], kind="sms"))
            db.session.flush()
    db.session.rollback()


def test_moving_a_row_to_another_org_is_refused(world):
    with pytest.raises(CrossTenantWrite):
        with tenant(world["a"]):
            run = db.session.scalars(select(SyncRun)).one()
            run.org_id = world["b"]
            db.session.flush()
    db.session.rollback()


def test_tenant_cannot_write_provider_or_number_rows(world):
    with pytest.raises(CrossTenantWrite):
        with tenant(world["a"]):
            db.session.add(Call(integration_id=world["int_a"], phone_number_id=world["numbers"][A_ONLY],
                                external_id="forged", direction="inbound", status="answered",
                                started_at=T, raw={}))
            db.session.flush()
    db.session.rollback()
    with pytest.raises(CrossTenantWrite):
        with tenant(world["a"]):
            db.session.get(PhoneNumber, world["numbers"][SHARED]).label = "mine now"
            db.session.flush()
    db.session.rollback()


def test_audit_record_cannot_target_another_org_from_a_tenant(world):
    with pytest.raises(CrossTenantWrite):
        with tenant(world["a"]):
            audit.record("test.crossing", org_id=world["b"], actor="test")
    db.session.rollback()


def test_a_session_never_mixes_a_tenant_with_a_bypass_or_another_tenant(world):
    with tenant(world["a"]):
        with pytest.raises(TenancyError):
            with platform_bypass("sneaking in"):
                pass
        with pytest.raises(TenancyError):
            with tenant(world["b"]):
                pass
        assert visible_calls() == {*world["calls"]["a"], *world["calls"]["shared"], *world["calls"]["moved_before"]}


def test_platform_bypass_sees_every_org_and_needs_a_reason(world):
    with platform_bypass("test"):
        assert db.session.scalar(select(func.count()).select_from(Organization)) == 2
        assert len(visible_calls()) == 7
    with pytest.raises(TenancyError):
        with platform_bypass(""):
            pass


def test_core_statements_are_unfiltered_until_a_helper_adds_the_criterion(world):
    """The documented escape hatch: table-level Core is not filtered, `traffic_visible_sql` filters it."""
    calls = Call.__table__
    with tenant(world["a"]):
        assert db.session.scalar(select(func.count()).select_from(calls)) == 7
        filtered = select(calls.c.external_id).where(traffic_visible_sql(calls, world["a"]))
        assert set(db.session.scalars(filtered)) == visible_calls()
    with tenant(world["b"]):
        filtered = select(calls.c.external_id).where(traffic_visible_sql(calls, world["b"]))
        assert set(db.session.scalars(filtered)) == visible_calls()


def test_assignment_periods_of_one_number_in_one_org_cannot_overlap(world):
    from vsync.errors import Conflict
    from vsync.services.numbers import assign_number, get_number
    with platform_bypass("test"):
        org = db.session.get(Organization, world["a"])
        with pytest.raises(Conflict):
            assign_number(org, get_number(A_ONLY), at=T)
        with pytest.raises(Conflict):  # A had MOVED until T: a new period may start at T, not before
            assign_number(org, get_number(MOVED), at=T - timedelta(minutes=1))
        assert assign_number(org, get_number(MOVED), at=T).assigned_at == T
        assert db.session.scalar(select(func.count()).select_from(NumberAssignment)
                                 .where(NumberAssignment.org_id == world["a"])) == 4


def test_an_error_inside_a_scope_surfaces_and_its_pending_rows_are_dropped(world):
    with pytest.raises(ValueError, match="boom"):
        with tenant(world["a"]):
            db.session.add(SyncRun(org_id=world["b"], integration_id=world["int_b"], kind="sms"))
            raise ValueError("boom")  # leaving must not flush the cross-org row and mask this error
    db.session.rollback()
    with platform_bypass("check"):
        assert db.session.scalar(select(func.count()).select_from(SyncRun).where(SyncRun.kind == "sms")) == 0
