"""Tenant isolation: the only module that knows how rows are scoped to an organisation.

Every ORM statement that touches a tenant-scoped model passes through `_apply_tenant_criteria`
(a `do_orm_execute` hook) and gets the current organisation's criterion added with
`with_loader_criteria`, for SELECT, UPDATE and DELETE, including relationship loads and `Session.get`.
Writes pass through `_check_writes` (`before_flush`), which stamps `org_id` on new org-owned rows and
rejects writes that would land in another organisation.

Four kinds of scoped model, each a mixin below:

- `OrgOwned`: rows with an `org_id` (memberships, integrations, keys, assignments, sync runs, ...).
- `NumberTraffic`: provider rows (calls, call events, recordings, SMS). They belong to the phone
  number they happened on, and a number can be assigned to several organisations over time, so an
  organisation sees a row when one of its assignments of that number covers the row's time.
- `SharedNumber`: phone numbers themselves; visible to an organisation that has (or had) an assignment.
- `SelfScoped`: the organisation row itself; an organisation sees only its own.

The scope lives in `session.info` and is one of: an organisation (`tenant`), an explicit platform
bypass with a reason (`platform_bypass`), or nothing, in which case a scoped statement raises
(`TenantContextRequired`): forgetting the scope fails closed rather than showing every tenant's data.
A session never mixes scopes: leaving a scope flushes and empties the identity map, so an object
loaded under one scope cannot be returned from the identity map under another.

Not filtered, by design: Core statements built on tables (`select(Call.__table__)`, `insert(...)`
on a table) and text SQL. Those live only in reviewed helpers (metrics, bulk upserts) that add the
criterion themselves (`traffic_visible_sql`), each with a cross-tenant test.
"""
from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ForeignKey, and_, event, exists, or_
from sqlalchemy.orm import (Mapped, ORMExecuteState, Session, declared_attr, mapped_column, synonym,
                            with_loader_criteria)
from sqlalchemy.orm.attributes import get_history
from sqlalchemy.sql.util import find_tables

log = logging.getLogger(__name__)

_SCOPE_KEY = "vsync.tenancy.scope"


class TenancyError(RuntimeError):
    pass


class TenantContextRequired(TenancyError):
    """A tenant-scoped statement ran with neither an organisation nor a platform bypass."""


class CrossTenantWrite(TenancyError):
    """A write would create or move a row outside the current organisation."""


class TenantScoped:
    """Marker for every scoped model; `_apply_tenant_criteria` looks for it."""


class OrgOwned(TenantScoped):
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)


class NumberTraffic(TenantScoped):
    """Provider rows: scoped through `number_assignments` and the row's time (`__tenant_time__`)."""

    __tenant_time__ = "started_at"

    phone_number_id: Mapped[int] = mapped_column(ForeignKey("phone_numbers.id", ondelete="RESTRICT"))

    @declared_attr
    def tenant_time(cls) -> Mapped[datetime]:
        return synonym(cls.__tenant_time__)


class SharedNumber(TenantScoped):
    """Phone numbers: platform rows, seen by the organisations they are (or were) assigned to."""

    id: Mapped[int] = mapped_column(primary_key=True)


class SelfScoped(TenantScoped):
    """The organisation row: an organisation sees itself only."""

    id: Mapped[int] = mapped_column(primary_key=True)


@dataclass(frozen=True)
class Scope:
    org_id: int | None = None
    bypass_reason: str | None = None

    def __str__(self) -> str:
        return f"org {self.org_id}" if self.org_id is not None else f"platform bypass ({self.bypass_reason})"


def _session(session: Session | None) -> Session:
    if session is not None:
        return session
    from vsync.extensions import db
    return db.session()


def current_scope(session: Session | None = None) -> Scope | None:
    return _session(session).info.get(_SCOPE_KEY)


def current_org_id(session: Session | None = None) -> int | None:
    scope = current_scope(session)
    return scope.org_id if scope else None


def _set(session: Session, scope: Scope | None, *, flush: bool = True) -> None:
    previous = session.info.get(_SCOPE_KEY)
    if previous == scope:
        return
    if previous is not None and scope is not None:
        raise TenancyError(f"This session is already in {previous}; it cannot also enter {scope}.")
    if previous is not None:
        # Leaving a scope: write what it made (unless it failed), then forget every object it loaded.
        if flush:
            session.flush()
        session.expunge_all()
    if scope is None:
        session.info.pop(_SCOPE_KEY, None)
    else:
        session.info[_SCOPE_KEY] = scope


def enter_tenant(org_id: int, session: Session | None = None) -> None:
    """Scope the rest of this session (one request) to `org_id`. Use `tenant()` where a block fits."""
    if org_id is None:
        raise TenancyError("A tenant scope needs an organisation id.")
    _set(_session(session), Scope(org_id=int(org_id)))


def enter_platform_bypass(reason: str, session: Session | None = None) -> None:
    """See every organisation for the rest of this session. Only after the platform-admin check."""
    if not reason:
        raise TenancyError("A platform bypass needs a reason.")
    log.debug("platform bypass: %s", reason)
    _set(_session(session), Scope(bypass_reason=reason))


def leave_scope(session: Session | None = None, *, flush: bool = True) -> None:
    """End the session's scope. `flush=False` drops what the scope left unflushed (after an error;
    the caller rolls the transaction back)."""
    _set(_session(session), None, flush=flush)


@contextmanager
def _scoped(session: Session, enter):
    enter()
    try:
        yield
    except BaseException:
        leave_scope(session, flush=False)
        raise
    leave_scope(session)


def tenant(org_id: int, session: Session | None = None):
    """`with tenant(org_id):` a block scoped to one organisation."""
    session = _session(session)
    return _scoped(session, lambda: enter_tenant(org_id, session))


def platform_bypass(reason: str, session: Session | None = None):
    """`with platform_bypass(reason):` a block that sees every organisation."""
    session = _session(session)
    return _scoped(session, lambda: enter_platform_bypass(reason, session))


def _assignment_covers(assignment, number_id_col, time_col, org_id):
    return and_(
        assignment.phone_number_id == number_id_col,
        assignment.org_id == org_id,
        assignment.assigned_at <= time_col,
        or_(assignment.unassigned_at.is_(None), assignment.unassigned_at > time_col),
    )


def _criteria(org_id: int) -> list:
    from vsync.models.numbers import NumberAssignment

    return [
        with_loader_criteria(OrgOwned, lambda cls: cls.org_id == org_id, include_aliases=True),
        with_loader_criteria(SelfScoped, lambda cls: cls.id == org_id, include_aliases=True),
        with_loader_criteria(
            SharedNumber,
            lambda cls: exists().where(NumberAssignment.phone_number_id == cls.id,
                                       NumberAssignment.org_id == org_id),
            include_aliases=True),
        with_loader_criteria(
            NumberTraffic,
            lambda cls: exists().where(
                _assignment_covers(NumberAssignment, cls.phone_number_id, cls.tenant_time, org_id)),
            include_aliases=True),
    ]


def traffic_visible_sql(table, org_id: int, *, time_column: str = "started_at"):
    """The provider-row criterion for Core statements on `table` (metrics, exports): add it yourself."""
    from vsync.models.numbers import NumberAssignment

    assignments = NumberAssignment.__table__.c
    return exists().where(
        _assignment_covers(assignments, table.c.phone_number_id, table.c[time_column], org_id))


def _is_scoped(state: ORMExecuteState) -> bool:
    classes = [mapper.class_ for mapper in state.all_mappers]
    # `all_mappers` misses entities named only in FROM, as in `select(func.count()).select_from(Call)`
    # (the count Flask-Admin runs); ORM entities leave a `parententity` annotation on their table there.
    for table in find_tables(state.statement, include_aliases=True, include_crud=True):
        entity = table._annotations.get("parententity")
        if entity is not None:
            classes.append(entity.class_)
    return any(issubclass(cls, TenantScoped) for cls in classes)


@event.listens_for(Session, "do_orm_execute")
def _apply_tenant_criteria(state: ORMExecuteState) -> None:
    if not (state.is_select or state.is_update or state.is_delete):
        return
    if state.is_column_load or not _is_scoped(state):
        # A column load refreshes a row this scope already loaded (the identity map is emptied on
        # every scope change), so it needs no criterion of its own.
        return
    scope = state.session.info.get(_SCOPE_KEY)
    if scope is None:
        raise TenantContextRequired(
            "Tenant-scoped query without a tenant: enter tenant(org_id) or platform_bypass(reason).")
    if scope.bypass_reason:
        return
    # Also on relationship loads: objects created in this session were never loaded by a query, so
    # their lazy loads carry no propagated criteria.
    state.statement = state.statement.options(*_criteria(scope.org_id))


def _org_id_of(obj) -> int | None:
    if obj.org_id is not None:
        return obj.org_id
    org = getattr(obj, "org", None)
    return org.id if org is not None else None


@event.listens_for(Session, "before_flush")
def _check_writes(session: Session, flush_context, instances) -> None:
    scoped = [o for o in (*session.new, *session.dirty, *session.deleted) if isinstance(o, TenantScoped)]
    if not scoped:
        return
    scope = session.info.get(_SCOPE_KEY)
    if scope is None:
        raise TenantContextRequired(
            f"Writing {type(scoped[0]).__name__} without a tenant: enter tenant(org_id) or platform_bypass(reason).")
    if scope.bypass_reason:
        return
    for obj in session.new:
        if isinstance(obj, OrgOwned):
            org_id = _org_id_of(obj)
            if org_id is None:
                obj.org_id = scope.org_id
            elif org_id != scope.org_id:
                raise CrossTenantWrite(f"{type(obj).__name__} belongs to org {org_id}, not to {scope}.")
        elif isinstance(obj, TenantScoped):
            raise CrossTenantWrite(f"{type(obj).__name__} rows are written by platform operations only.")
    for obj in session.dirty:
        if isinstance(obj, OrgOwned) and get_history(obj, "org_id").deleted:
            raise CrossTenantWrite(f"{type(obj).__name__} cannot move to another organisation.")
        if isinstance(obj, (NumberTraffic, SharedNumber)) and session.is_modified(obj):
            raise CrossTenantWrite(f"{type(obj).__name__} rows are written by platform operations only.")
    for obj in session.deleted:
        if isinstance(obj, (NumberTraffic, SharedNumber, SelfScoped)):
            raise CrossTenantWrite(f"{type(obj).__name__} rows are deleted by platform operations only.")
