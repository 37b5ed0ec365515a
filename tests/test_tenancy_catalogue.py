"""Every scoped model, every read and write shape, two orgs: A's scope never sees or touches B's rows.

The truth is computed in Python from all rows (read under the platform bypass) with the tenancy
rules written out plainly; each statement shape in A's scope must return exactly that. A new model
joins these tests by being scoped (`vsync.tenancy.scoped_models`), not by being listed here.
"""

from __future__ import annotations

import itertools
from contextlib import nullcontext
from datetime import datetime, timedelta

import pytest
from sqlalchemy import delete, exists, func, inspect, lambda_stmt, literal, select, true, union_all, update
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.orm import aliased, joinedload, make_transient_to_detached, selectinload, subqueryload

from tests.world import SHARED
from vsync.extensions import db
from vsync.models import (
    Agent,
    Call,
    CallEvent,
    Integration,
    Membership,
    NumberAssignment,
    Organization,
    PhoneNumber,
    Recording,
    SmsMessage,
    User,
    UserSession,
)
from vsync.models.types import UtcDateTime
from vsync.tenancy import (
    CrossTenantWrite,
    NumberPeriods,
    NumberTraffic,
    OrgOwned,
    RefusedStatement,
    TenancyError,
    TenantContextRequired,
    platform_bypass,
    scoped_models,
    tenant,
)

MODELS = sorted(scoped_models(), key=lambda model: model.__name__)


def _ids(model) -> str:
    return model.__name__


def truth(org_id: int, extension: str | None = None, agent: bool = False) -> dict[type, set[int]]:
    """Which rows of each scoped model `org_id` may see, by the rules, from every row."""
    with platform_bypass("test truth"):
        periods = db.session.execute(
            select(
                NumberAssignment.phone_number_id,
                NumberAssignment.org_id,
                NumberAssignment.assigned_at,
                NumberAssignment.unassigned_at,
            )
        ).all()
        members = {
            user_id for (user_id,) in db.session.execute(select(Membership.user_id).where(Membership.org_id == org_id))
        }
        accounts = set(db.session.scalars(select(Integration.account_id).where(Integration.org_id == org_id)))
        handled = {
            (c.account_id, c.external_id)
            for c in db.session.scalars(select(Call))
            if c.agent_extension == extension and extension is not None and c.account_id in accounts
        }

        def covered(number_id, at):
            return any(
                n == number_id and o == org_id and start <= at and (end is None or end > at)
                for n, o, start, end in periods
            )

        def own(row) -> bool:
            if not agent:
                return True
            if isinstance(row, Call):
                return (row.account_id, row.external_id) in handled
            if isinstance(row, CallEvent):
                return extension is not None and (
                    (row.extension == extension and row.account_id in accounts)
                    or (row.account_id, row.call_external_id) in handled
                )
            if isinstance(row, Agent):
                return row.extension == extension and row.account_id in accounts
            if isinstance(row, Recording):
                return (row.account_id, row.call_external_id) in handled
            return False  # SMS

        result = {}
        for model in MODELS:
            rows = db.session.scalars(select(model)).all()
            if issubclass(model, OrgOwned):
                visible = {r.id for r in rows if r.org_id == org_id}
            elif model is Organization:
                visible = {r.id for r in rows if r.id == org_id}
            elif model is PhoneNumber:
                visible = {r.id for r in rows if any(n == r.id and o == org_id for n, o, *_ in periods)}
            elif model is User:
                visible = {r.id for r in rows if r.id in members}
            elif model is Agent:
                visible = {r.id for r in rows if r.account_id in accounts and own(r)}
            elif model is UserSession:
                visible = set()  # sign-in sessions are nobody's organisation's
            else:
                assert issubclass(model, NumberTraffic), f"no truth rule for {model.__name__}"
                visible = {r.id for r in rows if covered(r.phone_number_id, r.tenant_time) and own(r)}
            result[model] = visible
        db.session.rollback()
    return result


def ghost(model, id_: int):
    """An object of `model` built with a chosen primary key and attached, never loaded."""
    obj = model(id=id_)
    make_transient_to_detached(obj)
    return db.session.merge(obj, load=False)


def all_ids(model) -> set[int]:
    with platform_bypass("test"):
        return set(db.session.scalars(select(model.id)))


def read_shapes(model, foreign: set[int] = frozenset({0})):
    """(name, statement, how to turn its result into a set of ids or a count); `foreign`: ids A may not see."""
    sub = select(model.id).subquery()
    cte = select(model.id).cte()
    alias = aliased(model)
    return [
        ("entity", select(model), lambda r: {o.id for o in r.scalars()}),
        ("column", select(model.id), lambda r: set(r.scalars())),
        ("count", select(func.count(model.id)), lambda r: r.scalar()),
        ("count from entity", select(func.count()).select_from(model), lambda r: r.scalar()),
        ("count over subquery", select(func.count()).select_from(sub), lambda r: r.scalar()),
        ("columns of a derived table", select(sub.c.id).group_by(sub.c.id), lambda r: set(r.scalars())),
        ("cte", select(cte.c.id), lambda r: set(r.scalars())),
        ("union", union_all(select(model.id), select(model.id).where(model.id < 0)), lambda r: set(r.scalars())),
        ("in subquery", select(model.id).where(model.id.in_(select(model.id))), lambda r: set(r.scalars())),
        ("where only", select(literal(1)).where(model.id > 0), lambda r: len(r.all())),
        ("bare exists", select(exists().where(model.id.in_(foreign))), lambda r: r.scalar()),
        ("scalar subquery", select(select(func.count(model.id)).scalar_subquery()), lambda r: r.scalar()),
        ("aliased", select(alias.id), lambda r: set(r.scalars())),
        ("aliased subquery entity", select(aliased(model, select(model).subquery()).id), lambda r: set(r.scalars())),
        ("lambda", lambda_stmt(lambda: select(model.id)), lambda r: set(r.scalars())),
        ("paginate count", None, None),
    ]


@pytest.mark.parametrize("model", MODELS, ids=_ids)
def test_every_read_shape_in_org_a_returns_exactly_what_a_may_see(app, world, model):
    with app.app_context():
        expected = truth(world.a)[model]
        assert all_ids(model) - expected, f"the world has no {model.__name__} of another org to hide"
        for name, statement, read in read_shapes(model, all_ids(model) - expected):
            if name in ("aliased subquery entity", "paginate count") and getattr(model, "__secret_columns__", ()):
                with pytest.raises(RefusedStatement), tenant(world.a):  # a subquery of the entity reads every column
                    db.session.execute(select(func.count()).select_from(select(model).subquery()))
                db.session.rollback()
                continue
            with tenant(world.a):
                if statement is None:
                    page = db.paginate(select(model).order_by(model.id), page=1, per_page=2, error_out=False)
                    assert page.total == len(expected), name
                    continue
                got = read(db.session.execute(statement))
            want = {
                "count": len(expected),
                "count from entity": len(expected),
                "count over subquery": len(expected),
                "scalar subquery": len(expected),
                "where only": len(expected),
            }.get(name, expected)
            if name == "bare exists":
                want = False
            assert got == want, f"{model.__name__} {name}: {got} != {want}"


@pytest.mark.parametrize("model", MODELS, ids=_ids)
def test_every_orm_read_shape_without_a_scope_fails_closed(app, world, model):
    with app.app_context():
        for _name, statement, _read in read_shapes(model):
            if statement is None:
                continue
            with pytest.raises(TenantContextRequired):
                db.session.execute(statement)
            db.session.rollback()


def test_inner_and_outer_joins_of_any_two_scoped_models_stay_in_org_a(app, world):
    with app.app_context():
        expected = truth(world.a)
        for left, right in itertools.combinations_with_replacement(MODELS, 2):
            want_left, want_right = expected[left], expected[right]
            right = aliased(right) if left is right else right
            with tenant(world.a):
                rows = db.session.execute(select(left.id, right.id).join_from(left, right, true())).all()
                assert {(x, y) for x, y in rows} == set(itertools.product(want_left, want_right)), (left, right)
                rows = db.session.execute(select(left.id, right.id).outerjoin_from(left, right, true())).all()
                assert {x for x, _ in rows} <= want_left, (left, right)
                assert {y for _, y in rows if y is not None} <= want_right, (left, right)


def _relationships():
    for model in MODELS:
        for rel in inspect(model).relationships:
            yield model, rel.key


@pytest.mark.parametrize("model,key", list(_relationships()), ids=lambda v: v if isinstance(v, str) else v.__name__)
def test_every_relationship_loader_stays_in_org_a(app, world, model, key):
    attribute = getattr(model, key)
    target = attribute.property.mapper.class_
    with app.app_context():
        expected = truth(world.a)
        for option in (None, selectinload(attribute), joinedload(attribute), subqueryload(attribute)):
            with tenant(world.a):
                statement = select(model) if option is None else select(model).options(option)
                for obj in db.session.scalars(statement).unique():
                    related = getattr(obj, key)
                    related = related if isinstance(related, list) else [related] if related is not None else []
                    assert {r.id for r in related} <= expected[target], f"{model.__name__}.{key} via {option}"


@pytest.mark.parametrize("model", MODELS, ids=_ids)
def test_another_orgs_row_cannot_be_refreshed_merged_or_got_in_org_a(app, world, model):
    with app.app_context():
        foreign = sorted(all_ids(model) - truth(world.a)[model])[0]
        with tenant(world.a):
            assert db.session.get(model, foreign) is None
            obj = ghost(model, foreign)
            with pytest.raises(InvalidRequestError):  # "could not refresh": there is no such row in A
                db.session.refresh(obj)
        db.session.rollback()


@pytest.mark.parametrize("model", MODELS, ids=_ids)
def test_another_orgs_row_cannot_be_changed_or_deleted_from_org_a(app, world, model):
    with app.app_context():
        foreign = sorted(all_ids(model) - truth(world.a)[model])[0]
        column, kind = next(
            (c.key, _python_type(c))
            for c in inspect(model).columns
            if not c.primary_key and not c.foreign_keys and c.key != "org_id" and _python_type(c) in (str, datetime)
        )
        changed = "changed by a" if kind is str else _t() + timedelta(days=999)
        for attempt in (
            "unit of work",
            "delete object",
            "merge as new",
            "orm update",
            "orm delete",
            "update by primary key",
            "legacy bulk",
        ):
            filtered = attempt in ("orm update", "orm delete") and _tenant_writable(model, attempt)
            expected = nullcontext() if filtered else pytest.raises((TenancyError, InvalidRequestError))
            with expected, tenant(world.a):
                if attempt == "unit of work":
                    setattr(ghost(model, foreign), column, changed)
                    db.session.flush()
                elif attempt == "delete object":
                    db.session.delete(ghost(model, foreign))
                    db.session.flush()
                elif attempt == "merge as new":  # the load finds nothing in A, so the ORM would insert it
                    db.session.merge(model(id=foreign, **{column: changed}))
                    db.session.flush()
                elif attempt == "orm update":
                    db.session.execute(
                        update(model).where(model.id == foreign).values({column: changed}),
                        execution_options={"synchronize_session": False},
                    )
                elif attempt == "orm delete":
                    db.session.execute(
                        delete(model).where(model.id == foreign), execution_options={"synchronize_session": False}
                    )
                elif attempt == "update by primary key":
                    db.session.execute(update(model), [{"id": foreign, column: changed}])
                else:
                    db.session.bulk_update_mappings(model, [{"id": foreign, column: changed}])
            db.session.rollback()
        assert foreign in all_ids(model), f"{model.__name__} {foreign} was deleted from org A"
        with platform_bypass("check"):
            assert getattr(db.session.get(model, foreign), column) != changed


def _tenant_writable(model, attempt: str) -> bool:
    """Org-owned rows (but number periods and the append-only audit log), and the org row (edited, never
    deleted): a tenant's bulk writes of these are narrowed, not refused."""
    if model is Organization:
        return attempt == "orm update"
    return issubclass(model, OrgOwned) and not issubclass(model, NumberPeriods) and not model.__append_only__


def _python_type(column):
    try:
        return column.type.python_type
    except NotImplementedError:
        return datetime if isinstance(column.type, UtcDateTime) else None


def test_a_tenant_scope_never_writes_number_periods_provider_rows_or_numbers(app, world):
    with app.app_context():
        with pytest.raises(CrossTenantWrite), tenant(world.a):
            db.session.add(NumberAssignment(org_id=world.a, phone_number_id=world.numbers[SHARED], assigned_at=_t()))
            db.session.flush()
        db.session.rollback()
        for statement in (
            update(NumberAssignment).values(unassigned_at=None),
            delete(Call).where(Call.phone_number_id == world.numbers[SHARED]),
            update(PhoneNumber).values(label="mine"),
            delete(SmsMessage),
        ):
            with pytest.raises(CrossTenantWrite), tenant(world.a):
                db.session.execute(statement)
            db.session.rollback()


def _t():
    from tests.world import T

    return T


def test_orm_insert_in_a_tenant_scope_must_name_this_org_and_may_not_upsert(app, world):
    from sqlalchemy import insert
    from sqlalchemy.dialects.postgresql import insert as pg_insert

    from vsync.models import SyncRun

    with app.app_context():
        for statement, params in (
            (insert(SyncRun).values(org_id=world.b, integration_id=world.integrations["b"], kind="sms"), None),
            (
                insert(SyncRun),
                [
                    {"org_id": world.a, "integration_id": world.integrations["a"], "kind": "sms"},
                    {"org_id": world.b, "integration_id": world.integrations["b"], "kind": "sms"},
                ],
            ),
            (insert(SyncRun).values(integration_id=world.integrations["a"], kind="sms"), None),
            (insert(SyncRun).values(org_id=world.a, integration_id=world.integrations["b"], kind="sms"), None),
            (
                pg_insert(Membership)
                .values(org_id=world.a, user_id=world.users["admin_b"], role="org_admin")
                .on_conflict_do_update(index_elements=["org_id", "user_id"], set_={"role": "org_admin"}),
                None,
            ),
            (
                insert(SyncRun).from_select(
                    ["org_id", "integration_id", "kind"], select(SyncRun.org_id, SyncRun.integration_id, literal("sms"))
                ),
                None,
            ),
        ):
            with pytest.raises(TenancyError), tenant(world.a):
                db.session.execute(statement, params)
            db.session.rollback()
        with tenant(world.a):
            db.session.execute(
                insert(SyncRun).values(org_id=world.a, integration_id=world.integrations["a"], kind="sms")
            )
        db.session.commit()


def test_update_may_not_move_a_row_out_of_its_org_by_value_or_relationship(app, world):
    from vsync.models import ApiKey, SyncRun

    with app.app_context():
        with pytest.raises(CrossTenantWrite), tenant(world.a):
            db.session.execute(update(ApiKey).values(org_id=None))
        db.session.rollback()
        with pytest.raises(CrossTenantWrite), tenant(world.a):
            run = db.session.scalars(select(SyncRun)).one()
            db.session.commit()
            run.org_id = world.b  # after a commit: the loaded value is expired, the database decides
            db.session.flush()
        db.session.rollback()
        with pytest.raises(CrossTenantWrite), tenant(world.a):
            membership = db.session.scalars(select(Membership)).first()
            membership.org = ghost(Organization, world.b)
            db.session.flush()
        db.session.rollback()
        with pytest.raises(CrossTenantWrite), tenant(world.a):
            db.session.add(SyncRun(integration_id=world.integrations["b"], kind="sms"))
            db.session.flush()
        db.session.rollback()


def test_users_are_visible_to_an_org_as_its_members_only_and_never_with_a_password_hash(app, world):
    from sqlalchemy.orm import undefer

    with app.app_context():
        with tenant(world.a):
            emails = set(db.session.scalars(select(User.email)))
            assert emails == {"admin@a.test", "manager@a.test", "agent@a.test", "both@ab.test"}
            for statement in (
                select(User.password_hash),
                select(User).options(undefer(User.password_hash)),
                select(func.count()).select_from(select(User.password_hash).subquery()),
            ):
                with pytest.raises(RefusedStatement):
                    db.session.execute(statement)
            user = db.session.scalars(select(User)).first()
            with pytest.raises(RefusedStatement):
                user.password_hash  # noqa: B018
        db.session.rollback()


def test_agent_scope_sees_only_its_own_calls_events_and_recordings_and_no_sms(app, world):
    with app.app_context():
        expected = truth(world.a, extension="101", agent=True)
        with platform_bypass("test"):
            accounts = set(db.session.scalars(select(Integration.account_id).where(Integration.org_id == world.a)))
        with tenant(world.a, role="agent", extension="101", accounts=accounts):
            for model in (Agent, Call, CallEvent, Recording, SmsMessage):
                got = set(db.session.scalars(select(model.id)))
                assert got == expected[model], model.__name__
            assert not expected[SmsMessage]
            assert expected[Call]
        with tenant(world.a, role="agent"):
            assert db.session.scalar(select(func.count(Call.id))) == 0


def test_scopes_nest_when_the_same_refuse_a_different_one_and_always_leave(app, world):
    with app.app_context():
        with tenant(world.a):
            with tenant(world.a):
                pass
            assert db.session.scalar(select(func.count(Organization.id))) == 1  # still in A
            with pytest.raises(TenancyError), tenant(world.b):
                pass
            with pytest.raises(TenancyError), platform_bypass("sneaking in"):
                pass
        with pytest.raises(TenantContextRequired):
            db.session.execute(select(Organization))
        db.session.rollback()
        with pytest.raises(CrossTenantWrite), tenant(world.a):
            db.session.add(NumberAssignment(org_id=world.a, phone_number_id=world.numbers[SHARED], assigned_at=_t()))
        db.session.rollback()
        with tenant(world.b):  # leaving after the failed flush left; B can be entered
            assert db.session.scalar(select(func.count(Organization.id))) == 1


def test_entering_a_scope_forgets_objects_loaded_before_it(app, world):
    from vsync.models import Integration

    with app.app_context():
        with platform_bypass("load b"):
            assert db.session.get(Integration, world.integrations["b"]) is not None
        with tenant(world.a):
            assert db.session.get(Integration, world.integrations["b"]) is None


@pytest.mark.parametrize("model", MODELS, ids=_ids)
def test_a_bulk_orm_insert_of_any_scoped_model_cannot_land_outside_org_a(app, world, model):
    from sqlalchemy import insert
    from sqlalchemy.dialects.postgresql import insert as pg_insert

    row = {"org_id": world.b} if issubclass(model, OrgOwned) else {"id": 10_000}
    with app.app_context():
        before = all_ids(model)
        for statement, params in (
            (insert(model).values(**row), None),
            (insert(model), [row, row]),
            (pg_insert(model).values(**row).on_conflict_do_nothing(), None),
        ):
            with pytest.raises(TenancyError), tenant(world.a):
                db.session.execute(statement, params)
            db.session.rollback()
        assert all_ids(model) == before
