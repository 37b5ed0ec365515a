"""The statement rewriter: every ORM statement a session runs passes `apply_tenant_criteria`
(`do_orm_execute`), which refuses what cannot be scoped and, in a tenant scope, runs a narrowed copy.

`_restrict` walks the whole statement (subqueries, CTEs, unions, EXISTS, scalar subqueries, resolved
lambda statements) and adds the criterion of each scoped kind (`vsync.tenancy.kinds`; for provider rows,
an assignment period of the row's number covering its time) to every SELECT that reads a scoped table,
ORM or Core: in its WHERE, or, for the nullable side of an outer join, as "criterion or no row". ORM
loader options (`with_loader_criteria`) add it as well to what the ORM builds while compiling (joined
eager loads, relationship joins), so lazy, selectin and joined loads, `Session.get`, `refresh` and
expired or deferred attribute loads all see one organisation only. No statement in a tenant scope
reads a user's secret columns, however it asks; bulk INSERT, UPDATE and DELETE are checked by the
flush guards' statement checks (`vsync.tenancy.guards`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

from sqlalchemy import Table, inspect, or_
from sqlalchemy.orm import ORMExecuteState, Session, with_loader_criteria
from sqlalchemy.sql import CompoundSelect, Delete, Executable, Insert, Select, Update, visitors
from sqlalchemy.sql.elements import ClauseElement, ColumnClause, TextClause
from sqlalchemy.sql.selectable import Alias, FromClause, Join, TableClause

from vsync.tenancy import sqla
from vsync.tenancy.errors import RefusedStatement, TenantContextRequired
from vsync.tenancy.guards import check_orm_dml, check_orm_insert
from vsync.tenancy.kinds import (
    CRITERION_ALIASES,
    MemberScoped,
    TenantScoped,
    kind_of,
    scoped_models,
    scoped_names,
    scoped_names_in_text,
)
from vsync.tenancy.scope import NARROWED, NARROWED_MARK, REVIEWED_SQL, SCOPE_KEY, Scope

_SCOPE_ANNOTATION = "vsync_tenant_scope"  # on the loader criteria this module makes


@cache
def _related_kinds(kind: type) -> frozenset[type]:
    """Scoped models the ORM may load along `kind`'s relationships, at any depth."""
    seen, todo = {kind}, [kind]
    while todo:
        for relationship in inspect(todo.pop()).relationships:
            target = relationship.mapper.class_
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return frozenset(k for k in seen if issubclass(k, TenantScoped))


class _MappedColumns:
    """A model seen as a table whose columns are its ORM attributes, so that the ORM can adapt a
    criterion written over it to every alias it makes (joined eager loads)."""

    def __init__(self, model: type):
        self.c = _AttributeGetter(model)


class _AttributeGetter:
    def __init__(self, model: type):
        self._model = model

    def __getattr__(self, name: str):
        return getattr(self._model, name)

    __getitem__ = __getattr__


def _loader_criteria(kinds: set[type], scope: Scope) -> list:
    """The criteria as ORM loader options, for what the ORM adds while compiling (joined eager loads,
    relationship joins): plain expressions over each model's attributes, adapted by the ORM to its
    aliases, whose values are bound parameters of each execution."""
    related = set().union(*(_related_kinds(kind) for kind in kinds))
    return [
        with_loader_criteria(
            kind,
            sqla.with_mark(kind.tenant_criterion(_MappedColumns(kind), scope), _SCOPE_ANNOTATION, scope),
            include_aliases=True,
        )
        for kind in sorted(related, key=lambda k: k.__name__)
    ]


def _made_for(option, scope: Scope) -> bool:
    """Whether `option` is loader criteria this module made for `scope` (see `_loader_criteria`)."""
    return sqla.loader_criteria_mark(option, _SCOPE_ANNOTATION) == scope


def _scoped_from_objects(from_obj, nullable: bool = False) -> Iterable[tuple[FromClause, type[TenantScoped], bool]]:
    """(table or alias, its kind, on the nullable side of an outer join?) for the scoped tables of a FROM."""
    if isinstance(from_obj, Join):
        yield from _scoped_from_objects(from_obj.left, nullable or from_obj.full)
        yield from _scoped_from_objects(from_obj.right, nullable or from_obj.isouter or from_obj.full)
    elif (kind := kind_of(from_obj)) is not None:
        yield from_obj, kind, nullable


def _refuse_secrets(statement, session: Session) -> None:
    """No statement in a tenant scope reads a secret column (a password hash), however it asks: a column
    anywhere in it (selected, compared, in a subquery), a whole table, `undefer`, a deferred attribute
    load. Checked on the statement's structure and on the SELECT the ORM loads for each of its SELECTs
    (entities expanded to the columns their loader options load), for statements on users."""
    dialect = session.get_bind().dialect
    found = set()
    for element in visitors.iterate(statement):
        found |= _secrets_named(element)
        if isinstance(element, Select):
            loaded = sqla.loaded_select(element, dialect, nested=element is not statement)
            for named in (*visitors.iterate(loaded), *loaded.selected_columns):
                found |= _secrets_named(named)
    if found:
        raise RefusedStatement(f"{', '.join(sorted(found))} is never read in a tenant scope.")


@cache
def _secret_pattern() -> re.Pattern:
    """A qualified secret column (`users.password_hash`) in a text fragment of a statement."""
    secrets = {
        column for kind in scoped_models() if issubclass(kind, MemberScoped) for column in kind.__secret_columns__
    }
    return re.compile(r"\.(" + "|".join(sorted(secrets)) + r")\b")


def _secrets_named(element) -> set[str]:
    """The secret columns `element` is: a column of a users table (or an alias of it), or text naming one."""
    if isinstance(element, TextClause):
        return set(_secret_pattern().findall(element.text))
    if not isinstance(element, ColumnClause):
        return set()
    if element.is_literal:
        return set(_secret_pattern().findall(element.name))
    kind = kind_of(element.table) if element.table is not None else None
    if kind is not None and issubclass(kind, MemberScoped) and element.name in kind.__secret_columns__:
        return {element.name}
    return set()


def _join_target(target):
    """The FROM a `.join(target)` adds: a table, an alias, an entity's selectable or a relationship's."""
    if isinstance(target, Table | Alias):
        return target
    of_type = sqla.of_type_entity(target)
    if of_type is not None:
        return inspect(of_type).selectable
    prop = getattr(target, "property", None)
    if prop is not None and hasattr(prop, "mapper"):
        return prop.mapper.local_table
    info = inspect(target, raiseerr=False)
    return getattr(info, "selectable", None)


def _select_froms(sel: Select) -> Iterable[tuple[FromClause, type[TenantScoped], bool]]:
    """Every scoped table or alias this SELECT itself reads, from its own structure (columns, FROM,
    joins, WHERE, HAVING), its kind, and whether it is on the nullable side of an outer join. Subqueries are
    SELECTs of their own; what the ORM adds while compiling is the loader criteria's."""
    for from_obj in (*sqla.froms_of_columns_and_criteria(sel), *sqla.explicit_froms(sel)):
        yield from _scoped_from_objects(from_obj)
    for target, left, outer in sqla.join_steps(sel):
        if left is not None:
            yield from _scoped_from_objects(_join_target(left) if not isinstance(left, Join) else left)
        joined = _join_target(target)
        if joined is not None:
            yield from _scoped_from_objects(joined, outer)


def _restrict_select(sel: Select, scope: Scope) -> None:
    """Add the criterion for every scoped table this SELECT reads (it is a fresh clone: mutate it).

    A SELECT narrowed already for this scope (the ORM builds loader statements around the statement
    it was given) and the criteria's own tables (`named_alias`) are left as they are."""
    if sqla.narrowed_for(sel) == scope:
        return
    sqla.mark_narrowed(sel, scope)
    criteria, seen = [], set()
    for table, kind, nullable in _select_froms(sel):
        if (table, nullable) in seen or table in CRITERION_ALIASES:
            continue
        seen.add((table, nullable))
        criterion = kind.tenant_criterion(table, scope)
        if nullable:
            criterion = or_(criterion, *(column.is_(None) for column in table.primary_key))
        criteria.append(criterion)
    if criteria:
        sqla.add_where(sel, tuple(criteria))


@dataclass
class _Survey:
    """What one walk over a statement found: the scoped kinds of the tables it reads, those it names
    through the ORM (entities, their columns), and its loader options."""

    table_kinds: set[type]
    orm_kinds: set[type]
    options: list
    named_in_text: set[str]  # scoped tables named in its text fragments


def _survey(state: ORMExecuteState, statement) -> _Survey:
    table_kinds, orm_classes, options, named_in_text = set(), {mapper.class_ for mapper in state.all_mappers}, [], set()
    for element in visitors.iterate(statement):
        if isinstance(element, Table | Alias) and (kind := kind_of(element)) is not None:
            table_kinds.add(kind)
        elif isinstance(element, TextClause):
            named_in_text |= scoped_names_in_text(element.text)
        elif isinstance(element, TableClause) and not isinstance(element, Table) and element.name in scoped_names():
            raise RefusedStatement(
                f"A lightweight table() named {element.name!r} cannot be scoped: "
                "use the model, or its __table__ in a reviewed module."
            )
        entity = sqla.orm_entity(element)
        if entity is not None:
            orm_classes.add(entity)
        options.extend(sqla.statement_options(element))
    return _Survey(table_kinds, {c for c in orm_classes if issubclass(c, TenantScoped)}, options, named_in_text)


@cache
def _joins_eagerly(kind: type) -> bool:
    """Whether loading `kind` can make the ORM join a scoped relationship while compiling."""
    return any(rel.lazy == "joined" for related in _related_kinds(kind) for rel in inspect(related).relationships)


_SELECTS = (Select, CompoundSelect)


def _shared_parts(statement: ClauseElement) -> list:
    """The columns, criteria and orderings of the statement's SELECTs that the copy may share instead
    of copying: those that hold no SELECT and read tables only (a table is never copied; an alias or
    a subquery is, and a part naming the original would read it beside its narrowed copy). The
    criteria are added to the SELECTs themselves, so a statement of many aggregates costs a walk, not
    a copy, of them."""
    parts = []
    for element in visitors.iterate(statement):
        if isinstance(element, Select):
            parts += [
                part
                for part in sqla.clause_parts(element)
                if sqla.reads_tables_only(part)
                and not any(isinstance(inner, _SELECTS) for inner in visitors.iterate(part))
            ]
    return parts


def _restrict(statement: ClauseElement, scope: Scope, options: list) -> Executable:
    """A copy of `statement` with every SELECT inside it narrowed to `scope`."""
    restricted = visitors.cloned_traverse(
        statement,
        {"stop_on": [*options, *_shared_parts(statement)]},  # loader options are not clauses
        {"select": lambda sel: _restrict_select(sel, scope)},
    )
    if isinstance(restricted, Update | Delete) and (kind := kind_of(restricted.table)) is not None:
        restricted = restricted.where(kind.tenant_criterion(restricted.table, scope))
    assert isinstance(restricted, Executable), "a copy of a statement is a statement"
    return restricted


def apply_tenant_criteria(state: ORMExecuteState) -> None:
    scope = state.session.info.get(SCOPE_KEY)
    if scope is None or not scope.is_bypass:
        _check_statement(state, scope)
    if scope is not None:
        # Narrowed (or a bypass's): the engine hook lets what reaches the connection from here run.
        state.update_execution_options(**{NARROWED: NARROWED_MARK})


def _check_statement(state: ORMExecuteState, scope: Scope | None) -> None:
    """Refuse what the session may not run in `scope` (or with no scope); in a tenant scope, put its
    narrowed copy in place of the statement."""
    statement = state.statement
    statement = sqla.resolved(statement)
    reviewed = bool(state.execution_options.get(REVIEWED_SQL))
    core_write = isinstance(statement, Insert | Update | Delete) and not sqla.is_annotated(statement.table)
    if core_write and scope is not None and not reviewed and (kind := kind_of(statement.table)) is not None:
        raise RefusedStatement(
            f"A Core {type(statement).__name__.upper()} of {kind.__name__} in {scope} "
            "comes from a reviewed module only (reviewed_sql)."
        )
    if core_write and isinstance(statement, Insert) and statement.select is None:
        return  # a reviewed Core write of values (ingest, audit): it reads no table, names no entity
    survey = _survey(state, statement)
    if scope is None:
        if survey.orm_kinds:
            names = ", ".join(sorted(kind.__name__ for kind in survey.orm_kinds))
            raise TenantContextRequired(
                f"Tenant-scoped statement ({names}) without a tenant: enter tenant(org_id) or platform_bypass(reason)."
            )
        return
    if survey.named_in_text and not reviewed:
        raise RefusedStatement(
            f"Text naming {', '.join(sorted(survey.named_in_text))} cannot be scoped in {scope}: "
            "build the statement instead."
        )
    if state.is_from_statement and survey.orm_kinds:
        raise RefusedStatement("from_statement() over tenant-scoped models cannot be scoped: build the SELECT instead.")
    if isinstance(statement, Insert | Update | Delete):
        kind = kind_of(statement.table)
        if kind is not None and sqla.is_annotated(statement.table):  # the ORM's write of an entity
            if isinstance(statement, Insert):
                check_orm_insert(statement, state, kind, scope)
                return
            check_orm_dml(statement, state, kind, scope)
    elif not state.is_select:
        return
    kinds = survey.table_kinds | survey.orm_kinds
    if not kinds:
        return
    if state.is_relationship_load and any(_made_for(option, scope) for option in survey.options):
        # An eager load of a statement narrowed already: it carries that statement's loader criteria
        # (adapted by the ORM to the aliases it builds), which narrow every entity it loads.
        restricted = statement
    else:
        restricted = _restrict(statement, scope, survey.options)
    if state.is_orm_statement and (survey.options or any(_joins_eagerly(kind) for kind in survey.orm_kinds)):
        restricted = restricted.options(*_loader_criteria(survey.orm_kinds, scope))
    if any(issubclass(kind, MemberScoped) for kind in kinds):
        _refuse_secrets(restricted, state.session)
    state.statement = restricted


def narrowed_select(statement: Select, scope: Scope) -> Select:
    """The copy of a SELECT that the session hook runs in `scope`: for a reviewed module that hands the
    statement to the driver itself (the calls export's COPY), narrowed exactly like the session's."""
    if scope.is_bypass:
        return statement
    restricted = _restrict(sqla.resolved(statement), scope, [])
    assert isinstance(restricted, Select), "a copy of a SELECT is a SELECT"
    return restricted
