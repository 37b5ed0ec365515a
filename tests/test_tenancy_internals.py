"""One test per SQLAlchemy internal the tenant filter relies on (`vsync.tenancy.sqla`), each on real
statements. When an upgrade changes one, its test fails naming the attribute and the installed version:
fix `vsync/tenancy/sqla.py` before anything else (SQLAlchemy is pinned until then)."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import UTC, datetime

import pytest
import sqlalchemy
from sqlalchemy import func, insert, inspect, lambda_stmt, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import aliased, joinedload, undefer, with_loader_criteria
from sqlalchemy.sql import visitors

from vsync.models import Membership, User
from vsync.tenancy import sqla

DIALECT = postgresql.dialect()
USERS = User.__table__


@contextmanager
def relied_on(what: str):
    """Run a check of `what` (the private SQLAlchemy attribute), failing with its name and the version."""
    try:
        yield
        return
    except (AssertionError, AttributeError, KeyError, TypeError, ValueError) as error:
        failure = f"{type(error).__name__}: {error}"
    pytest.fail(
        f"SQLAlchemy {sqlalchemy.__version__} changed {what}, which vsync/tenancy/sqla.py relies on: {failure}",
        pytrace=False,
    )


def sql(statement) -> str:
    return str(statement.compile(dialect=DIALECT))


def column_names(statement) -> set[str]:
    return {column.name for column in statement.selected_columns}


def test_plain_table_sees_through_aliases_and_orm_annotations():
    with relied_on("Alias.element, ClauseElement._annotations and _deannotate()"):
        orm_table = update(User).table  # the annotated copy an ORM statement holds
        assert orm_table is not USERS and orm_table == USERS
        assert sqla.plain_table(orm_table) is USERS
        assert sqla.plain_table(USERS.alias("someone")) is USERS
        assert sqla.plain_table(inspect(aliased(User)).selectable) is USERS
        assert sqla.plain_table(USERS) is USERS


def test_is_annotated_tells_an_orm_write_from_a_core_one():
    with relied_on("ClauseElement._annotations on a DML statement's table"):
        assert sqla.is_annotated(update(User).table)
        assert not sqla.is_annotated(update(USERS).table)


def test_resolved_gives_the_statement_of_a_lambda():
    with relied_on("StatementLambdaElement._resolved"):
        resolved = sqla.resolved(lambda_stmt(lambda: select(User.id).where(User.id == 5)))
        assert isinstance(resolved, sqlalchemy.Select) and "users.id = " in sql(resolved)
        plain = select(User.id)
        assert sqla.resolved(plain) is plain


def test_a_mark_on_loader_criteria_survives_the_option_and_a_copy_of_the_statement():
    with relied_on("ClauseElement._annotate(), LoaderCriteriaOption.where_criteria and _annotations"):
        option = with_loader_criteria(
            User, sqla.with_mark(User.id == 1, "vsync_test_mark", "scope"), include_aliases=True
        )
        statement = select(Membership).options(option).where(Membership.id > 0)
        (carried,) = sqla.statement_options(statement)
        assert sqla.loader_criteria_mark(carried, "vsync_test_mark") == "scope"
        assert sqla.loader_criteria_mark(undefer(User.password_hash), "vsync_test_mark") is None
        assert sqla.loader_criteria_mark(with_loader_criteria(User, User.id == 1), "vsync_test_mark") is None


def test_statement_options_are_the_options_given():
    with relied_on("Executable._with_options"):
        option = joinedload(Membership.user)
        assert sqla.statement_options(select(Membership).options(option)) == (option,)
        assert sqla.statement_options(select(Membership)) == ()
        assert sqla.statement_options(USERS) == ()


def test_orm_entity_names_the_class_an_element_came_from():
    with relied_on("the 'parententity' key of ClauseElement._annotations"):
        found = {sqla.orm_entity(element) for element in visitors.iterate(select(User.email).where(Membership.id > 1))}
        assert {User, Membership} <= found
        assert {sqla.orm_entity(element) for element in visitors.iterate(select(USERS.c.email))} == {None}


def test_of_type_entity_is_the_target_of_a_narrowed_relationship():
    with relied_on("QueryableAttribute._of_type"):
        someone = aliased(User)
        assert sqla.of_type_entity(Membership.user.of_type(someone)) is inspect(someone)
        assert sqla.of_type_entity(Membership.user) is None


def test_froms_of_columns_and_criteria_and_explicit_froms():
    with relied_on("Select._raw_columns, _where_criteria, _having_criteria, _from_objects and _from_obj"):
        members = Membership.__table__
        statement = (
            select(USERS.c.email)
            .where(members.c.id > 1)
            .group_by(USERS.c.email)
            .having(func.count(members.c.org_id) > 0)
        )
        assert {sqla.plain_table(t) for t in sqla.froms_of_columns_and_criteria(statement)} == {USERS, members}
        assert sqla.explicit_froms(statement) == ()
        assert [sqla.plain_table(t) for t in sqla.explicit_froms(select(func.count()).select_from(USERS))] == [USERS]


def test_join_steps_give_each_join_its_target_left_and_outerness():
    with relied_on("Select._setup_joins, tuples of (target, onclause, left, flags)"):
        members = Membership.__table__
        steps = sqla.join_steps(select(Membership.id).join(Membership.user).outerjoin_from(members, USERS))
        assert [(left is not None, outer) for _target, left, outer in steps] == [(False, False), (True, True)]
        assert steps[0][0] is Membership.user
        assert sqla.join_steps(select(Membership.id).join(User, full=True))[0][2] is True


def test_add_where_narrows_a_clone_in_place():
    with relied_on("Select._where_criteria, a tuple"):
        statement = select(USERS.c.email).where(USERS.c.active.is_(True))

        def narrow(sel):
            sqla.add_where(sel, (USERS.c.id == 7,))

        narrowed = visitors.cloned_traverse(statement, {}, {"select": narrow})
        assert "users.active IS true AND users.id = " in sql(narrowed)
        assert "users.id" not in sql(statement).split("WHERE")[1]


def test_a_narrowed_mark_is_kept_by_copies_of_the_select():
    with relied_on("ClauseElement._clone copying the instance __dict__"):
        statement = visitors.cloned_traverse(
            select(USERS.c.id), {}, {"select": lambda sel: sqla.mark_narrowed(sel, "org 1")}
        )
        assert sqla.narrowed_for(statement) == "org 1"
        assert sqla.narrowed_for(statement.where(USERS.c.id > 1)) == "org 1"
        assert sqla.narrowed_for(visitors.cloned_traverse(statement, {}, {})) == "org 1"
        assert sqla.narrowed_for(select(USERS.c.id)) is None


def bound(rows: list[dict]) -> list[dict]:
    """The values of rows as the flush guards read them (a bound parameter's value)."""
    return [{key: getattr(value, "effective_value", value) for key, value in row.items()} for row in rows]


def test_dml_values_read_single_and_multi_row_values():
    with relied_on("ValuesBase._values and _multi_values"):
        single = sqla.dml_values(update(User).values(role="user", active=False))
        assert bound(single) == [{"role": "user", "active": False}]
        many = insert(Membership).values([{"org_id": 1, "user_id": 2}, {"org_id": 3, "user_id": 4}])
        assert bound(sqla.dml_values(many)) == [{"org_id": 1, "user_id": 2}, {"org_id": 3, "user_id": 4}]
        assert sqla.dml_values(insert(Membership)) == []


def test_is_upsert_sees_on_conflict():
    with relied_on("Insert._post_values_clause"):
        plain = pg_insert(Membership).values(org_id=1, user_id=2)
        assert not sqla.is_upsert(plain)
        assert sqla.is_upsert(plain.on_conflict_do_nothing())
        assert sqla.is_upsert(plain.on_conflict_do_update(index_elements=["id"], set_={"role": "agent"}))


def test_loaded_select_expands_entities_as_the_orm_loads_them():
    relied = (
        "Select._compile_state_factory, dialect.statement_compiler(dialect, None), SQLCompiler.stack "
        "and the compile state's statement"
    )
    with relied_on(relied):
        top = sqla.loaded_select(select(User), DIALECT, nested=False)
        assert "email" in column_names(top) and "password_hash" not in column_names(top)
        undeferred = sqla.loaded_select(select(User).options(undefer(User.password_hash)), DIALECT, nested=False)
        assert "password_hash" in column_names(undeferred)
        assert "password_hash" in column_names(sqla.loaded_select(select(User), DIALECT, nested=True))
        eager = sqla.loaded_select(select(Membership).options(joinedload(Membership.user)), DIALECT, nested=False)
        assert {"role", "email"} <= column_names(eager)
        core = select(USERS.c.id)
        assert sqla.loaded_select(core, DIALECT, nested=False) is core


def test_bind_processors_apply_the_column_types_to_a_value():
    with relied_on("SQLCompiler._bind_processors"):
        statement = select(User.id).where(User.created_at >= datetime(2026, 11, 1, 12, tzinfo=UTC))
        compiled = statement.compile(dialect=postgresql.dialect())
        processors = sqla.bind_processors(compiled)
        (name,) = compiled.params
        assert callable(processors[name])
        assert processors[name](compiled.params[name]) == datetime(2026, 11, 1, 12, tzinfo=UTC)
