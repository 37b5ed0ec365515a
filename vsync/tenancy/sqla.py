"""The SQLAlchemy internals the tenant filter relies on, each behind one small function.

The rest of `vsync.tenancy` uses public SQLAlchemy API only. What is here has no public equivalent:
the parts of a SELECT the rewriter narrows, annotations that say which table or entity an element
stands for, the values of a DML statement, the columns the ORM will load. Each function's docstring
names the private attributes it reads. They were checked against SQLAlchemy 2.0.58 (requirements.txt
pins it); `tests/test_tenancy_internals.py` runs each function on real statements and fails naming
the attribute and the installed version when an upgrade changes one, so an upgrade is its own change:
run those tests first, fix this module, and nothing else in the package moves.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm.util import LoaderCriteriaOption
from sqlalchemy.sql.lambdas import StatementLambdaElement
from sqlalchemy.sql.selectable import Alias, TableClause

_NARROWED_FOR = "_vsync_narrowed_for"  # set on a SELECT clone by `mark_narrowed`


def plain_table(from_obj):
    """The table `from_obj` stands for: an alias's table, the plain Table of an ORM-annotated copy (what
    `select(Model)` and `Model.__table__` put in a statement). Relies on `Alias.element`, `_annotations`
    (empty on a plain Table) and `_deannotate()`."""
    if isinstance(from_obj, Alias):
        from_obj = from_obj.element
    return from_obj._deannotate() if getattr(from_obj, "_annotations", None) else from_obj


def is_annotated(table) -> bool:
    """Whether a DML statement's table came from an ORM entity (`update(Model)`) rather than a Core table
    (`update(Model.__table__)`). Relies on `_annotations`, empty on a plain Table."""
    return bool(table._annotations)


def resolved(statement: Any) -> Any:
    """The statement a lambda statement (`lambda_stmt`, the ORM's lazy loads) stands for; any other as it is.
    Relies on `StatementLambdaElement._resolved` (typed for SQLAlchemy's traversal, not as a statement)."""
    return statement._resolved if isinstance(statement, StatementLambdaElement) else statement


def with_mark(criterion, key: str, value):
    """`criterion` carrying `value` under `key`, kept by every copy the ORM makes of it (adapted to an
    alias, carried into relationship loads). Relies on `_annotate()`."""
    return criterion._annotate({key: value})


def loader_criteria_mark(option, key: str):
    """The mark `with_mark` put on the criterion of a `with_loader_criteria` option, or None (any other
    option). Relies on `LoaderCriteriaOption.where_criteria` and `_annotations`."""
    if not isinstance(option, LoaderCriteriaOption):
        return None
    return getattr(option.where_criteria, "_annotations", {}).get(key)


def statement_options(element) -> tuple:
    """The ORM options (loader options, loader criteria) given to a statement. Relies on `_with_options`."""
    return tuple(getattr(element, "_with_options", ()))


def orm_entity(element) -> type | None:
    """The mapped class an element of a statement was taken from (`User.email`, `select(User)`'s table),
    or None for a Core element. Relies on the `parententity` key of `_annotations`."""
    entity = getattr(element, "_annotations", {}).get("parententity")
    return None if entity is None else entity.mapper.class_


def of_type_entity(target):
    """The entity of a relationship join target narrowed with `.of_type(X)`, or None. Relies on
    `QueryableAttribute._of_type`."""
    return getattr(target, "_of_type", None)


def froms_of_columns_and_criteria(sel) -> list:
    """The FROMs a SELECT's columns, WHERE and HAVING read (not its explicit FROM or joins). Relies on
    `Select._raw_columns`, `_where_criteria`, `_having_criteria` and `ClauseElement._from_objects`."""
    return [
        from_obj
        for element in (*sel._raw_columns, *sel._where_criteria, *sel._having_criteria)
        for from_obj in element._from_objects
    ]


def clause_parts(sel) -> tuple:
    """A SELECT's columns, WHERE, HAVING, GROUP BY and ORDER BY terms. Relies on `Select._raw_columns`,
    `_where_criteria`, `_having_criteria`, `_group_by_clauses` and `_order_by_clauses`."""
    return (
        *sel._raw_columns,
        *sel._where_criteria,
        *sel._having_criteria,
        *sel._group_by_clauses,
        *sel._order_by_clauses,
    )


def reads_tables_only(element) -> bool:
    """Whether every FROM an expression reads is a table (never an alias, a join or a subquery).
    Relies on `ClauseElement._from_objects` and on tables being immutable (a copy of a statement
    shares them)."""
    return all(isinstance(from_obj, TableClause) for from_obj in element._from_objects)


def explicit_froms(sel) -> tuple:
    """A SELECT's `select_from()` FROMs. Relies on `Select._from_obj`."""
    return tuple(sel._from_obj)


def join_steps(sel) -> list[tuple[object, object, bool]]:
    """A SELECT's `.join()` calls as (target, left or None, outer?). Relies on `Select._setup_joins`,
    tuples of (target, onclause, left, flags) whose flags hold `isouter` and `full`."""
    return [
        (target, left, bool(flags.get("isouter") or flags.get("full")))
        for target, _onclause, left, flags in sel._setup_joins
    ]


def add_where(sel, criteria: tuple) -> None:
    """AND `criteria` into the WHERE of `sel`, a fresh clone (inside `cloned_traverse`), in place. Relies
    on `Select._where_criteria`, a tuple."""
    sel._where_criteria += tuple(criteria)


def mark_narrowed(sel, scope) -> None:
    """Remember on `sel` (a fresh clone) the scope it was narrowed for. Relies on clones copying the
    instance `__dict__` (`ClauseElement._clone`), so statements the ORM builds from it keep the mark."""
    setattr(sel, _NARROWED_FOR, scope)


def narrowed_for(sel):
    """The scope `mark_narrowed` remembered on `sel` or on what it was cloned from, or None."""
    return getattr(sel, _NARROWED_FOR, None)


def dml_values(statement) -> list[dict]:
    """The rows an INSERT or UPDATE was given with `.values()`, as dicts by column key. Relies on
    `ValuesBase._values` (a dict keyed by column or name) and `_multi_values` (tuples of lists of dicts)."""
    rows = []
    if statement._values:
        rows.append({getattr(k, "key", k): v for k, v in statement._values.items()})
    for values in statement._multi_values or ():
        rows.extend(
            {getattr(k, "key", k): v for k, v in row.items()} if isinstance(row, dict) else {} for row in values
        )
    return rows


def is_upsert(statement) -> bool:
    """Whether an INSERT has an ON CONFLICT clause. Relies on `Insert._post_values_clause`."""
    return statement._post_values_clause is not None


def loaded_select(sel, dialect, *, nested: bool):
    """The SELECT the ORM renders for `sel`: entities expanded to the columns they load (at the top,
    deferred ones only when undeferred, an attribute load's own columns, joined eager loads added;
    `nested` in another statement, every column of an entity). A Core SELECT is its own. Relies on
    `Select._compile_state_factory`, `dialect.statement_compiler` built with no statement (nothing is
    rendered), its `stack` (non-empty while compiling a nested SELECT) and the compile state's `statement`."""
    compiler = dialect.statement_compiler(dialect, None)
    if nested:
        compiler.stack.append({})
    return sel._compile_state_factory(sel, compiler).statement


def bind_processors(compiled) -> dict[str, Any]:
    """A compiled statement's bind processors by parameter name (what its column types do to a value
    before the driver sees it), for a COPY whose values the driver quotes itself. Relies on
    `SQLCompiler._bind_processors`."""
    return dict(compiled._bind_processors)
