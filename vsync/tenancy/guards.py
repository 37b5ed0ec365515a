"""Flush guards: the writes a tenant scope may make, checked in the unit of work and on bulk statements.

- Bulk writes. ORM `insert()` on org-owned rows must name this org in every row, with no upsert and
  no INSERT…SELECT; `update()`/`delete()` of org-owned rows get the criterion (the rewriter adds it) and
  may not set `org_id`; update-by-primary-key executemany, and any bulk write of provider rows, numbers,
  number periods, users or organisations, are refused (`CrossTenantWrite`, `RefusedStatement`). The
  legacy `bulk_*` session methods are refused on scoped models outside a bypass (`TenantSession`).
- Unit of work. New org-owned rows are stamped with the scope's org; changed and deleted rows must
  belong to it in the database, not merely in memory (`check_flush`); the values written are checked
  again right before each INSERT/UPDATE, after relationship assignments have set foreign keys
  (`check_row`); and a row may not reference another organisation's rows (integrations, keys).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import inspect, select
from sqlalchemy.orm import Mapper, ORMExecuteState, Session
from sqlalchemy.orm.attributes import instance_state
from sqlalchemy.sql import ClauseElement, Insert, Update

from vsync.tenancy import sqla
from vsync.tenancy.errors import CrossTenantWrite, RefusedStatement, TenantContextRequired
from vsync.tenancy.kinds import MemberScoped, NumberPeriods, OrgOwned, SelfScoped, TenantScoped, kind_of
from vsync.tenancy.scope import FLUSHING, SCOPE_KEY, Scope, end_scope, reviewed_sql


def _dml_rows(statement, parameters) -> list[dict]:
    rows = sqla.dml_values(statement)
    if isinstance(parameters, dict):
        rows.append(parameters)
    elif isinstance(parameters, list | tuple):
        rows.extend(p for p in parameters if isinstance(p, dict))
    return rows


def _value(value):
    """A literal from a bound parameter, or the value itself; None for an expression we cannot read."""
    if hasattr(value, "effective_value"):
        return value.effective_value
    return None if hasattr(value, "__clause_element__") or isinstance(value, ClauseElement) else value


def check_orm_insert(statement: Insert, state: ORMExecuteState, kind: type, scope: Scope) -> None:
    if not issubclass(kind, OrgOwned) or issubclass(kind, NumberPeriods):
        raise CrossTenantWrite(f"{kind.__name__} rows are written by platform operations only.")
    if sqla.is_upsert(statement) or statement.select is not None:
        raise RefusedStatement(f"An upsert or INSERT…SELECT of {kind.__name__} cannot be checked in a tenant scope.")
    rows = _dml_rows(statement, state.parameters)
    if not rows:
        raise RefusedStatement(f"An INSERT of {kind.__name__} in a tenant scope must give its rows' values.")
    for row in rows:
        if _value(row.get("org_id")) != scope.org_id:
            raise CrossTenantWrite(f"Every {kind.__name__} row inserted in {scope} must have org_id={scope.org_id}.")
        _check_references(kind, row, scope, state.session)


def _tenant_may(kind: type, verb: str) -> bool:
    """Whether a tenant scope may change (`changed`) or delete (`deleted`) rows of `kind` of its own org:
    org-owned rows but number periods and append-only ones (the audit log), and its organisation row,
    which it may edit but never delete."""
    if issubclass(kind, SelfScoped):
        return verb == "changed"
    return issubclass(kind, OrgOwned) and not issubclass(kind, NumberPeriods) and not kind.__append_only__


def check_orm_dml(statement, state: ORMExecuteState, kind: type, scope: Scope) -> None:
    verb = "updated" if isinstance(statement, Update) else "deleted"
    if not _tenant_may(kind, "changed" if verb == "updated" else "deleted"):
        raise CrossTenantWrite(f"{kind.__name__} rows are {verb} by platform operations only.")
    if isinstance(state.parameters, list | tuple) and len(state.parameters) > 0:
        raise RefusedStatement(f"A bulk {verb[:-1]} of {kind.__name__} by primary key cannot be scoped.")
    if isinstance(statement, Update):
        for row in _dml_rows(statement, state.parameters):
            if "org_id" in row or (issubclass(kind, SelfScoped) and "id" in row):
                raise CrossTenantWrite(f"{kind.__name__} cannot move to another organisation.")
            for column in row:
                _check_references(kind, {column: row[column]}, scope, state.session)


# --- the unit of work ----------------------------------------------------------------------------


def _tenant_scope_of(session: Session, what: str) -> Scope | None:
    """The tenant scope a write happens in; None for a bypass; raises with no scope at all."""
    scope = session.info.get(SCOPE_KEY)
    if scope is None:
        raise TenantContextRequired(
            f"Writing {what} without a tenant: enter tenant(org_id) or platform_bypass(reason)."
        )
    return None if scope.is_bypass else scope


def _visible_ids(session: Session, kind: type, ids: set, scope: Scope) -> set:
    """Which of `ids` are `kind` rows of `scope`, read from the database (this connection, unfiltered)."""
    table = kind.__table__
    (pk,) = table.primary_key.columns
    rows = session.connection().execute(
        reviewed_sql(select(pk).where(pk.in_(ids), kind.tenant_criterion(table, scope)))
    )
    return {row[0] for row in rows}


def _check_references(kind: type, values: dict, scope: Scope, session: Session) -> None:
    """A row of this org may not point at another org's rows (their integrations, keys, ...).

    Only a reference to a row's primary key names that row: in a composite key such as
    (org_id, integration_id) → integrations (org_id, id), the org id half names the row's org."""
    for column in kind.__table__.columns:
        value = _value(values.get(column.key))
        if value is None:
            continue
        for fk in column.foreign_keys:
            target = kind_of(fk.column.table)
            if target is None or not issubclass(target, OrgOwned) or not fk.column.primary_key:
                continue
            if not _visible_ids(session, target, {value}, scope):
                raise CrossTenantWrite(f"{kind.__name__}.{column.key}={value} is not a {target.__name__} of {scope}.")


def _refuse_write(obj, verb: str) -> CrossTenantWrite:
    return CrossTenantWrite(f"{type(obj).__name__} rows are {verb} by platform operations only.")


def check_flush(session: Session, flush_context, instances) -> None:
    new = [o for o in session.new if isinstance(o, TenantScoped)]
    changed = [o for o in session.dirty if isinstance(o, TenantScoped) and session.is_modified(o)]
    deleted = [o for o in session.deleted if isinstance(o, TenantScoped)]
    if not (new or changed or deleted):
        return
    scope = _tenant_scope_of(session, type((new or changed or deleted)[0]).__name__)
    if scope is None:
        return
    for obj in new:
        if isinstance(obj, MemberScoped):
            continue  # a new user is nobody's yet; `check_row` refuses a new platform admin
        if not isinstance(obj, OrgOwned) or isinstance(obj, NumberPeriods):
            raise _refuse_write(obj, "created")
        if obj.org_id is None and getattr(obj, "org", None) is None:
            obj.org_id = scope.tenant_org_id
    for obj in changed + deleted:
        verb = "deleted" if obj in deleted else "changed"
        if not _tenant_may(type(obj), verb):
            raise _refuse_write(obj, verb)
    _refuse_taken_keys(session, new, scope)
    # What a changed or deleted row is in the database decides, not what happens to be in memory.
    by_kind: dict[type, set] = {}
    for obj in changed + deleted:
        identity = instance_state(obj).identity
        if identity is None:
            raise CrossTenantWrite(f"{type(obj).__name__} without a primary key cannot be changed.")
        by_kind.setdefault(type(obj), set()).add(identity[0])
    for kind, ids in by_kind.items():
        missing = ids - _visible_ids(session, kind, ids, scope)
        if missing:
            raise CrossTenantWrite(f"{kind.__name__} {sorted(missing)} is not in {scope}.")


def _refuse_taken_keys(session: Session, new: list, scope: Scope) -> None:
    """A new row given the primary key of a row this scope cannot see (a `merge()` of another org's
    id finds nothing, so the ORM inserts it) is refused by name, not left to a duplicate-key error."""
    by_kind: dict[type, set] = {}
    for obj in new:
        key = inspect(obj).mapper.primary_key_from_instance(obj)
        if len(key) == 1 and key[0] is not None:
            by_kind.setdefault(type(obj), set()).add(key[0])
    for kind, ids in by_kind.items():
        (pk,) = kind.__table__.primary_key.columns
        taken = {row[0] for row in session.connection().execute(reviewed_sql(select(pk).where(pk.in_(ids))))}
        hidden = taken - _visible_ids(session, kind, taken, scope) if taken else set()
        if hidden:
            raise CrossTenantWrite(f"{kind.__name__} {sorted(hidden)} belongs to another organisation.")


def check_row(mapper: Mapper, connection, target) -> None:
    """Right before its INSERT or UPDATE, after relationships have set its foreign keys."""
    if not isinstance(target, TenantScoped):
        return
    session = instance_state(target).session
    assert session is not None, "a row being flushed is in the flushing session"
    scope = _tenant_scope_of(session, type(target).__name__)
    if scope is None:
        return
    if isinstance(target, MemberScoped):
        if getattr(target, "role", None) not in (None, "user"):
            raise CrossTenantWrite("A platform-wide role is given by platform operations only.")
        if instance_state(target).has_identity:
            raise _refuse_write(target, "changed")
        return
    if isinstance(target, SelfScoped):
        if target.id != scope.org_id:
            raise CrossTenantWrite(f"Organisation {target.id} is not {scope}.")
        return
    assert isinstance(target, OrgOwned), "check_flush lets a tenant scope write no other row"
    if target.org_id != scope.org_id:
        raise CrossTenantWrite(f"{type(target).__name__} belongs to org {target.org_id}, not to {scope}.")
    _check_references(
        type(target), {c.key: getattr(target, c.key, None) for c in mapper.columns if c.foreign_keys}, scope, session
    )


if TYPE_CHECKING:
    _SessionBase = Session  # what the mixin is mixed into (`vsync.extensions.Session`)
else:
    _SessionBase = object


class TenantSession(_SessionBase):
    """Session mixin: the legacy bulk methods skip every hook above, so they are refused on scoped models;
    a flush's statements are the unit of work's (checked by the flush guards, not by the engine hook);
    closing the session (as a request or a job ends) ends its scope."""

    def flush(self, objects=None) -> None:
        flushing = FLUSHING.set(True)
        try:
            super().flush(objects)
        finally:
            FLUSHING.reset(flushing)

    def close(self) -> None:
        try:
            super().close()
        finally:
            if self.info.get(SCOPE_KEY) is not None:
                end_scope(self)

    def _refuse_bulk(self, mappers) -> None:
        scope = self.info.get(SCOPE_KEY)
        if scope is not None and scope.is_bypass:
            return
        for mapper in mappers:
            cls = mapper if isinstance(mapper, type) else inspect(mapper).class_
            if issubclass(cls, TenantScoped):
                raise RefusedStatement(f"Session bulk methods are refused on {cls.__name__} outside a platform bypass.")

    def bulk_save_objects(self, objects, *args, **kwargs):
        objects = list(objects)
        self._refuse_bulk({type(o) for o in objects})
        return super().bulk_save_objects(objects, *args, **kwargs)

    def bulk_insert_mappings(self, mapper, *args, **kwargs):
        self._refuse_bulk([mapper])
        return super().bulk_insert_mappings(mapper, *args, **kwargs)

    def bulk_update_mappings(self, mapper, *args, **kwargs):
        self._refuse_bulk([mapper])
        return super().bulk_update_mappings(mapper, *args, **kwargs)
