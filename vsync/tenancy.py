"""Tenant isolation: the only module that knows how rows are scoped to an organisation.

A session is in one of three states, kept in `session.info`: a tenant `Scope` (one organisation, the
principal's role there and, for agents, their extension), an explicit platform bypass with a reason,
or nothing. With nothing, any ORM statement or flush that touches a scoped model raises
`TenantContextRequired`: forgetting the scope fails closed instead of showing every tenant's data.

The scoped kinds are the mixins below; each model declares its criterion (`tenant_criterion`), a SQL
expression over the row's table (or an alias of it) for a scope:

- `OrgOwned`: rows with an `org_id` (memberships, integrations, keys, sync runs, audit events,
  webhook events). `NumberPeriods` (number assignments) are org-owned rows that also decide which
  organisation sees which traffic, so a tenant scope never writes them.
- `NumberTraffic`: provider rows (calls, call events, recordings, SMS). They belong to the number they
  happened on: an organisation sees a row while one of its assignment periods of that number covers
  the row's time. An agent sees only the traffic of their own (account, extension) (no SMS).
- `AccountScoped`: agents (a MightyCall account's extensions and their names), seen by the
  organisations with an integration on that account; an agent sees their own row only.
- `SharedNumber`: phone numbers, seen by the organisations that have (or had) a period on them.
- `SelfScoped`: the organisation row, seen by itself only. `MemberScoped`: users, seen by an
  organisation as its members only, and never with their password hash.

How a tenant scope holds, for every statement that passes through the session:

- Reads. `_restrict` walks the whole statement (subqueries, CTEs, unions, EXISTS, scalar subqueries,
  resolved lambda statements) and adds the criterion to every SELECT that reads a scoped table, ORM or
  Core: in its WHERE, or, for the nullable side of an outer join, as "criterion or no row". ORM loader
  options (`with_loader_criteria`) add it as well to what the ORM builds while compiling (joined eager
  loads, relationship joins), so lazy, selectin and joined loads, `Session.get`, `refresh` and expired
  or deferred attribute loads all see one organisation only.
- Bulk writes. ORM `insert()` on org-owned rows must name this org in every row, with no upsert and
  no INSERT…SELECT; `update()`/`delete()` of org-owned rows get the criterion and may not set
  `org_id`; update-by-primary-key executemany, and any bulk write of provider rows, numbers, number
  periods, users or organisations, are refused. The legacy `bulk_*` session methods are refused on
  scoped models outside a bypass (`TenantSession`).
- Unit of work. New org-owned rows are stamped with the scope's org; changed and deleted rows must
  belong to it in the database, not merely in memory (`_check_flush`); the values written are checked
  again right before each INSERT/UPDATE, after relationship assignments have set foreign keys
  (`_check_row`); and a row may not reference another organisation's rows (integrations, keys).

Not filtered, by design: text SQL, Core writes on tables and statements run on a `Connection`
directly. They live only in reviewed modules (the sync's ingest and discovery, the audit log,
authentication, the members' accounts, the MightyCall token store, the webhook receiver's store, a
recording's fresh link, and this module's own checks), which scope what they do themselves
(`tenant_criterion_sql`, or the org named in every row they write) and mark each such statement
with `reviewed_sql`; a test fails when one appears anywhere else. In a tenant scope everything else
of that kind is refused when it runs (`RefusedStatement`):

- through the session: a Core INSERT, UPDATE or DELETE on a scoped table, and text naming one
  (a table name anywhere in a `text()`), unless marked;
- past the session (`session.connection().execute(...)`, `db.engine.connect()`, Core, ORM, text or a
  driver-level string): any statement on a scoped table, unless marked. An engine hook checks every
  statement as it runs. What the session hook above has narrowed carries its mark; the unit of work's
  own statements run inside a flush, checked by the flush guards below. A raw connection has no
  session to ask, so "in a tenant scope" means: the innermost scope entered in this context (thread
  or task), on any session, is a tenant scope. Leaving a scope, or closing its session, ends it.

Scopes do not mix: entering a different scope while one is active raises; entering the same scope
again nests (only the outermost exit leaves). Entering and leaving both empty the identity map, so an
object loaded under one scope is never served under another; leaving always leaves, even when the
final flush fails.

Scopes are entered once per request. `vsync.auth` fences every request as it starts
(`fence_request`): who acts (a principal, or nobody: sign-in, set-password links, the webhook
receiver), whether they are platform staff, and the request's org, fixed once for the whole request.
The org resolver fixes it for a route with an org in its URL (for every principal, platform staff
included); a request without a principal may fix it from what authenticated it (the webhook
receiver: the token's integration's org, `fix_request_org`); any other request has no org. From
then on every scope entered in the request, on any session (its handlers', and those of the jobs it
runs inline, in the embedded default without Redis), is checked against the fence (`ScopeRefused`):

- a tenant scope must be the request's org; a request with no org enters none, unless its principal
  is platform staff (the platform console's per-org pages, which act in each org's own scope);
- the platform bypass is for platform staff only, on any route. Requests without a principal take no
  bypass: what they read before a tenant is known they read with reviewed Core statements.

Outside a request (the CLI, RQ workers) nothing is fenced: a job opens the scope its ids name.
"""
from __future__ import annotations

import logging
import re
import weakref
from collections.abc import Iterable
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from datetime import datetime
from functools import cache

from sqlalchemy import ForeignKey, Table, and_, event, exists, false, inspect, or_, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import (
    Mapped,
    Mapper,
    ORMExecuteState,
    Session,
    declared_attr,
    mapped_column,
    synonym,
)
from sqlalchemy.orm.util import LoaderCriteriaOption
from sqlalchemy.sql import Delete, Insert, Select, Update, visitors
from sqlalchemy.sql.elements import TextClause
from sqlalchemy.sql.lambdas import StatementLambdaElement
from sqlalchemy.sql.selectable import Alias, Join, TableClause

log = logging.getLogger(__name__)

_SCOPE_KEY = "vsync.tenancy.scope"
_SCOPE_ANNOTATION = "vsync_tenant_scope"  # on the loader criteria this module makes
_DEPTH_KEY = "vsync.tenancy.depth"
_FENCE_KEY = "vsync.tenancy.fence"  # in the WSGI environ of a request
# The execution option of a reviewed statement (`reviewed_sql`), and the mark of one the session hook
# has narrowed, whose value only this module holds.
REVIEWED_SQL = "vsync_reviewed_sql"
_NARROWED = "vsync_tenant_narrowed"
_NARROWED_MARK = object()
AGENT = "agent"


class TenancyError(RuntimeError):
    pass


class TenantContextRequired(TenancyError):
    """A tenant-scoped statement ran with neither an organisation nor a platform bypass."""


class CrossTenantWrite(TenancyError):
    """A write would create, change or delete a row outside the current organisation."""


class RefusedStatement(TenancyError):
    """A statement the tenant filter cannot scope, refused rather than run unscoped."""


class ScopeRefused(TenancyError):
    """A request tried to enter a scope its fence does not allow (another org, or a bypass)."""


@dataclass(frozen=True)
class Scope:
    """Who a session acts for: an organisation with a role, or a bypass.

    An agent is an extension of a MightyCall account: `extension` and `accounts`, the accounts of the
    organisation's integrations, which the extension belongs to. An agent's narrowing compares the
    pair, so extension 101 of another account, on a number the organisations share, is someone else.
    """

    org_id: int | None = None
    role: str | None = None
    extension: str | None = None
    accounts: tuple[int, ...] = ()
    bypass_reason: str | None = None

    @property
    def is_bypass(self) -> bool:
        return self.bypass_reason is not None

    @property
    def own_traffic_only(self) -> bool:
        """Agents see the traffic of their own extension only."""
        return self.role == AGENT

    def __str__(self) -> str:
        if self.is_bypass:
            return f"platform bypass ({self.bypass_reason})"
        return f"org {self.org_id}" + (f" as {self.role}" if self.role else "")


# --- the scoped kinds ----------------------------------------------------------------------------


@cache
def named_alias(table: Table, name: str) -> Alias:
    """One alias per table and name, built once: a criterion's subquery reads its own copy of a table
    (so it never correlates with the statement it narrows), and building it anew costs more than the
    rest of the criterion."""
    alias = table.alias(name)
    _CRITERION_ALIASES.add(alias)
    return alias


_CRITERION_ALIASES: set[Alias] = set()


class TenantScoped:
    """Every scoped model. A subclass's `tenant_criterion(table, scope)` says which rows a scope sees."""

    @classmethod
    def tenant_criterion(cls, table, scope: Scope):
        return false()  # a kind that says nothing shows nothing


class OrgOwned(TenantScoped):
    """`__append_only__` rows (the audit log) are never changed or deleted from a tenant scope."""

    __append_only__ = False

    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)

    @classmethod
    def tenant_criterion(cls, table, scope: Scope):
        return table.c.org_id == scope.org_id


class NumberPeriods(OrgOwned):
    """The periods in which an organisation has a number. Written only by platform operations."""

    @classmethod
    def covering(cls, number_id, time, org_id: int):
        """An EXISTS: `org_id` has a period of the number `number_id` that covers `time`."""
        periods = named_alias(cls.__table__, "visible_period")
        return exists().where(
            periods.c.phone_number_id == number_id, periods.c.org_id == org_id, periods.c.assigned_at <= time,
            or_(periods.c.unassigned_at.is_(None), periods.c.unassigned_at > time),
        ).correlate_except(periods)

    @classmethod
    def any_period(cls, number_id, org_id: int):
        periods = named_alias(cls.__table__, "visible_period")
        return exists().where(periods.c.phone_number_id == number_id, periods.c.org_id == org_id
                              ).correlate_except(periods)


class NumberTraffic(TenantScoped):
    """Provider rows: scoped through number periods and the row's time (`__tenant_time__`).

    `__agent_extension__` names the column with the extension that handled the row; a kind without
    one is invisible to agents unless it overrides `agent_criterion`.
    """

    __tenant_time__ = "started_at"
    __agent_extension__: str | None = None

    phone_number_id: Mapped[int] = mapped_column(ForeignKey("phone_numbers.id", ondelete="RESTRICT"))

    @declared_attr
    def tenant_time(cls) -> Mapped[datetime]:
        return synonym(cls.__tenant_time__)

    @classmethod
    def tenant_criterion(cls, table, scope: Scope):
        visible = _periods().covering(table.c.phone_number_id, table.c[cls.__tenant_time__], scope.org_id)
        if scope.own_traffic_only:
            return and_(visible, cls.agent_criterion(table, scope))
        return visible

    @classmethod
    def agent_criterion(cls, table, scope: Scope):
        """The rows of the scope's agent: their extension, in one of the scope's accounts."""
        if scope.extension is None or not scope.accounts or cls.__agent_extension__ is None:
            return false()
        return and_(table.c.account_id.in_(scope.accounts), table.c[cls.__agent_extension__] == scope.extension)


class AccountScoped(TenantScoped):
    """Rows of a MightyCall account (`account_id`): seen by the organisations with an integration on
    the account. An agent sees only their own extension's row."""

    @classmethod
    def tenant_criterion(cls, table, scope: Scope):
        integrations = named_alias(_integrations().__table__, "account_integration")
        visible = exists().where(integrations.c.account_id == table.c.account_id,
                                 integrations.c.org_id == scope.org_id).correlate_except(integrations)
        if scope.own_traffic_only:
            if scope.extension is None or not scope.accounts:
                return false()
            return and_(visible, table.c.account_id.in_(scope.accounts), table.c.extension == scope.extension)
        return visible


class SharedNumber(TenantScoped):
    """Phone numbers: platform rows, seen by the organisations they are (or were) assigned to."""

    id: Mapped[int] = mapped_column(primary_key=True)

    @classmethod
    def tenant_criterion(cls, table, scope: Scope):
        return _periods().any_period(table.c.id, scope.org_id)


class SelfScoped(TenantScoped):
    """The organisation row: an organisation sees itself only."""

    id: Mapped[int] = mapped_column(primary_key=True)

    @classmethod
    def tenant_criterion(cls, table, scope: Scope):
        return table.c.id == scope.org_id


class MemberScoped(TenantScoped):
    """Users: an organisation sees its members. `__secret_columns__` are never read in a tenant scope."""

    __secret_columns__: tuple[str, ...] = ()


def _mapped_subclasses(base) -> list[type]:
    found, todo = [], [base]
    while todo:
        for sub in todo.pop().__subclasses__():
            todo.append(sub)
            if "__table__" in sub.__dict__:
                found.append(sub)
    return found


@cache
def _periods() -> type[NumberPeriods]:
    (model,) = _mapped_subclasses(NumberPeriods)
    return model


@cache
def _integrations() -> type[OrgOwned]:
    """The integrations model: what connects an organisation to a MightyCall account."""
    (model,) = [kind for kind in _mapped_subclasses(OrgOwned) if kind.__tablename__ == "integrations"]
    return model


def scoped_models() -> list[type]:
    """Every mapped scoped model: the catalogue tests walk this, so a new model joins by being scoped."""
    return _mapped_subclasses(TenantScoped)


_SCOPED_TABLES: dict[Table, type] = {}


def _kind_of(table) -> type | None:
    """The scoped model mapped to `table` (a Table, an annotated copy of one, or an alias of one)."""
    if isinstance(table, Alias):
        table = table.element
    if not isinstance(table, Table):
        return None
    if not _SCOPED_TABLES:
        _SCOPED_TABLES.update({model.__table__: model for model in scoped_models()})
    return _SCOPED_TABLES.get(table._deannotate() if table._annotations else table)


@cache
def _scoped_names() -> frozenset[str]:
    return frozenset(model.__table__.name for model in scoped_models())


def tenant_criterion_sql(table, scope: Scope):
    """The criterion of `table`'s kind for `scope`: for reviewed Core statements, which add it themselves."""
    kind = _kind_of(table)
    if kind is None:
        raise TenancyError(f"{table} is not a tenant-scoped table.")
    return kind.tenant_criterion(table, scope)


def traffic_visible_sql(table, scope: Scope):
    """The provider-row criterion for a Core statement on `table` (calls, events, recordings, SMS)."""
    if not issubclass(_kind_of(table) or object, NumberTraffic):
        raise TenancyError(f"{table} holds no provider rows.")
    return tenant_criterion_sql(table, scope)


# --- scope lifecycle -----------------------------------------------------------------------------


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


def _forget_everything(session: Session, *, flush: bool) -> None:
    """Write what the session holds (unless told not to) and empty its identity map, always."""
    try:
        if flush:
            session.flush()
    finally:
        session.expunge_all()


# The sessions that entered a scope in this context (thread or task), in the order they entered it:
# a statement on a raw connection belongs to no session, so the engine hook asks the innermost.
_ENTERED: ContextVar[tuple[weakref.ref, ...]] = ContextVar("vsync_tenancy_entered", default=())
_FLUSHING: ContextVar[bool] = ContextVar("vsync_tenancy_flushing", default=False)


def _entered_except(session: Session) -> tuple[weakref.ref, ...]:
    return tuple(ref for ref in _ENTERED.get() if ref() is not None and ref() is not session)


def _end(session: Session) -> None:
    session.info.pop(_SCOPE_KEY, None)
    session.info.pop(_DEPTH_KEY, None)
    _ENTERED.set(_entered_except(session))


def _innermost_tenant_scope() -> Scope | None:
    """The scope entered last in this context that is still active, if it is a tenant scope."""
    for ref in reversed(_ENTERED.get()):
        session = ref()
        scope = None if session is None else session.info.get(_SCOPE_KEY)
        if scope is not None:
            return None if scope.is_bypass else scope
    return None


def _enter(session: Session, scope: Scope) -> None:
    current = session.info.get(_SCOPE_KEY)
    if current is not None:
        if current != scope:
            raise TenancyError(f"This session is already in {current}; it cannot also enter {scope}.")
        session.info[_DEPTH_KEY] += 1
        return
    _check_fence(scope)
    # Whatever was loaded or left pending with no scope must not be served or written inside this one.
    _forget_everything(session, flush=True)
    session.info[_SCOPE_KEY] = scope
    session.info[_DEPTH_KEY] = 1
    _ENTERED.set((*_entered_except(session), weakref.ref(session)))


def _leave(session: Session, *, flush: bool) -> None:
    if session.info.get(_SCOPE_KEY) is None:
        return
    session.info[_DEPTH_KEY] -= 1
    if session.info[_DEPTH_KEY] > 0:
        return
    try:
        _forget_everything(session, flush=flush)
    finally:
        _end(session)


def enter_scope(scope: Scope, session: Session | None = None) -> None:
    """Scope the rest of this session (one request) to `scope`. Use `tenant()` where a block fits."""
    if scope.is_bypass == (scope.org_id is not None):
        raise TenancyError("A scope is either an organisation or a platform bypass with a reason.")
    _enter(_session(session), scope)


def enter_platform_bypass(reason: str, session: Session | None = None) -> None:
    """See every organisation for the rest of this session. Only after the platform-admin check."""
    if not reason:
        raise TenancyError("A platform bypass needs a reason.")
    log.debug("platform bypass: %s", reason)
    enter_scope(Scope(bypass_reason=reason), session)


@contextmanager
def _scoped(session: Session, scope: Scope):
    enter_scope(scope, session)
    try:
        yield
    except BaseException:
        _leave(session, flush=False)
        raise
    _leave(session, flush=True)


def tenant(org_id: int | Scope, session: Session | None = None, *, role: str | None = None,
           extension: str | None = None, accounts: Iterable[int] = ()):
    """`with tenant(org_id):` (or `tenant(scope)`) a block scoped to one organisation."""
    scope = org_id if isinstance(org_id, Scope) else Scope(org_id=org_id, role=role, extension=extension,
                                                           accounts=tuple(sorted(accounts)))
    if scope.org_id is None or scope.is_bypass:
        raise TenancyError("A tenant scope needs an organisation id.")
    return _scoped(_session(session), scope)


def platform_bypass(reason: str, session: Session | None = None):
    """`with platform_bypass(reason):` a block that sees every organisation."""
    if not reason:
        raise TenancyError("A platform bypass needs a reason.")
    return _scoped(_session(session), Scope(bypass_reason=reason))


# --- one request, one org -----------------------------------------------------------------------


@dataclass(frozen=True)
class RequestFence:
    """The scopes one request may enter (see the module docstring); kept in the request's environ, so
    it holds for the whole request: its handlers, a streamed answer, and the jobs it runs inline."""

    principal: str | None  # who acts; None for a request without a principal
    platform: bool = False  # platform staff
    org_id: int | None = None  # the request's org

    def __str__(self) -> str:
        who = f"A request of {self.principal}" if self.principal else "A request without a principal"
        return who + (f" in org {self.org_id}" if self.org_id is not None else "")


def _request_environ() -> dict | None:
    from flask import has_request_context, request
    return request.environ if has_request_context() else None


def request_fence() -> RequestFence | None:
    environ = _request_environ()
    return None if environ is None else environ.get(_FENCE_KEY)


def fence_request(principal: str | None, *, platform: bool = False, org_id: int | None = None) -> None:
    """Fence this request as it starts, once (`vsync.auth`): who acts, and the org the resolver found."""
    environ = _request_environ()
    if environ is None:
        raise TenancyError("Only a request is fenced.")
    if _FENCE_KEY in environ:
        raise TenancyError(f"{environ[_FENCE_KEY]} is fenced already.")
    environ[_FENCE_KEY] = RequestFence(principal, platform, org_id)


def fix_request_org(org_id: int) -> None:
    """Fix the org of a request without a principal from what authenticated it (the webhook
    receiver's token). A principal's request has its org from the resolver, or none."""
    fence = request_fence()
    if fence is None or fence.principal is not None:
        raise TenancyError("Only a request without a principal fixes its own org.")
    if fence.org_id not in (None, org_id):
        raise ScopeRefused(f"{fence} cannot act in org {org_id} as well.")
    _request_environ()[_FENCE_KEY] = replace(fence, org_id=org_id)


def _check_fence(scope: Scope) -> None:
    fence = request_fence()
    if fence is None:
        return
    if scope.is_bypass:
        if not fence.platform:
            raise ScopeRefused(f"{fence} may not enter the {scope}: it is for platform staff only.")
    elif fence.org_id is not None and scope.org_id != fence.org_id:
        raise ScopeRefused(f"{fence} cannot enter org {scope.org_id}.")
    elif fence.org_id is None and not fence.platform:
        raise ScopeRefused(f"{fence} acts in no organisation; it cannot enter org {scope.org_id}.")


# --- reads and bulk statements -------------------------------------------------------------------


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
    return [LoaderCriteriaOption(kind, kind.tenant_criterion(_MappedColumns(kind), scope)
                                 ._annotate({_SCOPE_ANNOTATION: scope}), include_aliases=True)
            for kind in sorted(related, key=lambda k: k.__name__)]


def _made_for(option, scope: Scope) -> bool:
    """Whether `option` is loader criteria this module made for `scope` (see `_loader_criteria`)."""
    criterion = getattr(option, "where_criteria", None)
    return isinstance(option, LoaderCriteriaOption) and getattr(criterion, "_annotations", {}).get(
        _SCOPE_ANNOTATION) == scope


def _scoped_from_objects(from_obj, nullable: bool = False) -> Iterable[tuple[object, bool]]:
    """(table or alias, on the nullable side of an outer join?) for the scoped tables of a FROM."""
    if isinstance(from_obj, Join):
        yield from _scoped_from_objects(from_obj.left, nullable or from_obj.full)
        yield from _scoped_from_objects(from_obj.right, nullable or from_obj.isouter or from_obj.full)
    elif _kind_of(from_obj) is not None:
        yield from_obj, nullable


def _refuse_secrets(statement, session: Session) -> None:
    """No statement in a tenant scope reads a secret column (a password hash), however it asks:
    a column, a subquery, `undefer`, a wildcard. Checked on the SQL itself, for statements on users."""
    secrets = {column for kind in scoped_models() if issubclass(kind, MemberScoped)
               for column in kind.__secret_columns__}
    sql = str(statement.compile(dialect=session.get_bind().dialect))
    found = [column for column in secrets if re.search(rf"\.{column}\b", sql)]
    if found:
        raise RefusedStatement(f"{', '.join(found)} is never read in a tenant scope.")


def _join_target(target):
    """The FROM a `.join(target)` adds: a table, an alias, an entity's selectable or a relationship's."""
    if isinstance(target, Table | Alias):
        return target
    of_type = getattr(target, "_of_type", None)
    if of_type is not None:
        return inspect(of_type).selectable
    prop = getattr(target, "property", None)
    if prop is not None and hasattr(prop, "mapper"):
        return prop.mapper.local_table
    info = inspect(target, raiseerr=False)
    return getattr(info, "selectable", None)


def _select_froms(sel: Select) -> Iterable[tuple[object, bool]]:
    """Every scoped table or alias this SELECT itself reads, from its own structure (columns, FROM,
    joins, WHERE, HAVING), and whether it is on the nullable side of an outer join. Subqueries are
    SELECTs of their own; what the ORM adds while compiling is the loader criteria's."""
    plain = [*sel._raw_columns, *sel._where_criteria, *sel._having_criteria]
    for element in plain:
        for from_obj in element._from_objects:
            yield from _scoped_from_objects(from_obj)
    for from_obj in sel._from_obj:
        yield from _scoped_from_objects(from_obj)
    for target, _onclause, left, flags in sel._setup_joins:
        if left is not None:
            yield from _scoped_from_objects(_join_target(left) if not isinstance(left, Join) else left)
        joined = _join_target(target)
        if joined is not None:
            yield from _scoped_from_objects(joined, bool(flags.get("isouter") or flags.get("full")))


def _restrict_select(sel: Select, scope: Scope) -> None:
    """Add the criterion for every scoped table this SELECT reads (it is a fresh clone: mutate it).

    A SELECT narrowed already for this scope (the ORM builds loader statements around the statement
    it was given) and the criteria's own tables (`named_alias`) are left as they are."""
    if getattr(sel, "_tenant_scope", None) == scope:
        return
    sel._tenant_scope = scope
    criteria, seen = [], set()
    for table, nullable in _select_froms(sel):
        if (table, nullable) in seen or table in _CRITERION_ALIASES:
            continue
        seen.add((table, nullable))
        criterion = _kind_of(table).tenant_criterion(table, scope)
        if nullable:
            criterion = or_(criterion, *(column.is_(None) for column in table.primary_key))
        criteria.append(criterion)
    if criteria:
        sel._where_criteria += tuple(criteria)


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
        if isinstance(element, Table | Alias) and (kind := _kind_of(element)) is not None:
            table_kinds.add(kind)
        elif isinstance(element, TextClause):
            named_in_text |= _scoped_names_in_text(element.text)
        elif isinstance(element, TableClause) and not isinstance(element, Table) and element.name in _scoped_names():
            raise RefusedStatement(f"A lightweight table() named {element.name!r} cannot be scoped: "
                                   "use the model, or its __table__ in a reviewed module.")
        entity = element._annotations.get("parententity") if hasattr(element, "_annotations") else None
        if entity is not None:
            orm_classes.add(entity.mapper.class_)
        options.extend(getattr(element, "_with_options", ()))
    return _Survey(table_kinds, {c for c in orm_classes if issubclass(c, TenantScoped)}, options, named_in_text)


@cache
def _joins_eagerly(kind: type) -> bool:
    """Whether loading `kind` can make the ORM join a scoped relationship while compiling."""
    return any(rel.lazy == "joined" for related in _related_kinds(kind) for rel in inspect(related).relationships)


def _dml_rows(statement, parameters) -> list[dict]:
    rows = []
    if statement._values:
        rows.append({getattr(k, "key", k): v for k, v in statement._values.items()})
    for values in statement._multi_values or ():
        rows.extend({getattr(k, "key", k): v for k, v in row.items()} if isinstance(row, dict) else {}
                    for row in values)
    if isinstance(parameters, dict):
        rows.append(parameters)
    elif isinstance(parameters, list | tuple):
        rows.extend(p for p in parameters if isinstance(p, dict))
    return rows


def _value(value):
    """A literal from a bound parameter, or the value itself; None for an expression we cannot read."""
    if hasattr(value, "effective_value"):
        return value.effective_value
    return None if hasattr(value, "__clause_element__") or hasattr(value, "_compiler_dispatch") else value


def _check_orm_insert(statement: Insert, state: ORMExecuteState, kind: type, scope: Scope) -> None:
    if not issubclass(kind, OrgOwned) or issubclass(kind, NumberPeriods):
        raise CrossTenantWrite(f"{kind.__name__} rows are written by platform operations only.")
    if statement._post_values_clause is not None or statement.select is not None:
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


def _check_orm_dml(statement, state: ORMExecuteState, kind: type, scope: Scope) -> None:
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


def _restrict(statement, scope: Scope, options: list):
    """A copy of `statement` with every SELECT inside it narrowed to `scope`."""
    restricted = visitors.cloned_traverse(statement, {"stop_on": options},  # loader options are not clauses
                                          {"select": lambda sel: _restrict_select(sel, scope)})
    if isinstance(restricted, Update | Delete) and (kind := _kind_of(restricted.table)) is not None:
        restricted = restricted.where(kind.tenant_criterion(restricted.table, scope))
    return restricted


def _apply_tenant_criteria(state: ORMExecuteState) -> None:
    scope = state.session.info.get(_SCOPE_KEY)
    if scope is None or not scope.is_bypass:
        _check_statement(state, scope)
    if scope is not None:
        # Narrowed (or a bypass's): the engine hook lets what reaches the connection from here run.
        state.update_execution_options(**{_NARROWED: _NARROWED_MARK})


def _check_statement(state: ORMExecuteState, scope: Scope | None) -> None:
    """Refuse what the session may not run in `scope` (or with no scope); in a tenant scope, put its
    narrowed copy in place of the statement."""
    statement = state.statement
    if isinstance(statement, StatementLambdaElement):
        statement = statement._resolved
    reviewed = bool(state.execution_options.get(REVIEWED_SQL))
    core_write = isinstance(statement, Insert | Update | Delete) and not statement.table._annotations
    if core_write and scope is not None and not reviewed and (kind := _kind_of(statement.table)) is not None:
        raise RefusedStatement(f"A Core {type(statement).__name__.upper()} of {kind.__name__} in {scope} "
                               "comes from a reviewed module only (reviewed_sql).")
    if core_write and isinstance(statement, Insert) and statement.select is None:
        return  # a reviewed Core write of values (ingest, audit): it reads no table, names no entity
    survey = _survey(state, statement)
    if scope is None:
        if survey.orm_kinds:
            names = ", ".join(sorted(kind.__name__ for kind in survey.orm_kinds))
            raise TenantContextRequired(
                f"Tenant-scoped statement ({names}) without a tenant: enter tenant(org_id) or platform_bypass(reason).")
        return
    if survey.named_in_text and not reviewed:
        raise RefusedStatement(f"Text naming {', '.join(sorted(survey.named_in_text))} cannot be scoped in {scope}: "
                               "build the statement instead.")
    if state.is_from_statement and survey.orm_kinds:
        raise RefusedStatement("from_statement() over tenant-scoped models cannot be scoped: build the SELECT instead.")
    if isinstance(statement, Insert | Update | Delete):
        kind = _kind_of(statement.table)
        orm_target = kind is not None and bool(statement.table._annotations)
        if orm_target and isinstance(statement, Insert):
            _check_orm_insert(statement, state, kind, scope)
            return
        if orm_target:
            _check_orm_dml(statement, state, kind, scope)
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


# --- the unit of work ----------------------------------------------------------------------------


def _tenant_scope_of(session: Session, what: str) -> Scope | None:
    """The tenant scope a write happens in; None for a bypass; raises with no scope at all."""
    scope = session.info.get(_SCOPE_KEY)
    if scope is None:
        raise TenantContextRequired(
            f"Writing {what} without a tenant: enter tenant(org_id) or platform_bypass(reason).")
    return None if scope.is_bypass else scope


def _visible_ids(session: Session, kind: type, ids: set, scope: Scope) -> set:
    """Which of `ids` are `kind` rows of `scope`, read from the database (this connection, unfiltered)."""
    table = kind.__table__
    (pk,) = table.primary_key.columns
    rows = session.connection().execute(reviewed_sql(
        select(pk).where(pk.in_(ids), kind.tenant_criterion(table, scope))))
    return {row[0] for row in rows}


def _check_references(kind: type, values: dict, scope: Scope, session: Session) -> None:
    """A row of this org may not point at another org's rows (their integrations, keys, ...)."""
    for column in kind.__table__.columns:
        value = _value(values.get(column.key))
        if value is None:
            continue
        for fk in column.foreign_keys:
            target = _kind_of(fk.column.table)
            if target is None or not issubclass(target, OrgOwned):
                continue
            if not _visible_ids(session, target, {value}, scope):
                raise CrossTenantWrite(f"{kind.__name__}.{column.key}={value} is not a {target.__name__} of {scope}.")


def _refuse_write(obj, verb: str) -> CrossTenantWrite:
    return CrossTenantWrite(f"{type(obj).__name__} rows are {verb} by platform operations only.")


def _check_flush(session: Session, flush_context, instances) -> None:
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
            continue  # a new user is nobody's yet; `_check_row` refuses a new platform admin
        if not isinstance(obj, OrgOwned) or isinstance(obj, NumberPeriods):
            raise _refuse_write(obj, "created")
        if obj.org_id is None and getattr(obj, "org", None) is None:
            obj.org_id = scope.org_id
    for obj in changed + deleted:
        verb = "deleted" if obj in deleted else "changed"
        if not _tenant_may(type(obj), verb):
            raise _refuse_write(obj, verb)
    _refuse_taken_keys(session, new, scope)
    # What a changed or deleted row is in the database decides, not what happens to be in memory.
    by_kind: dict[type, set] = {}
    for obj in changed + deleted:
        identity = inspect(obj).identity
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


def _check_row(mapper: Mapper, connection, target) -> None:
    """Right before its INSERT or UPDATE, after relationships have set its foreign keys."""
    if not isinstance(target, TenantScoped):
        return
    session = inspect(target).session
    scope = _tenant_scope_of(session, type(target).__name__)
    if scope is None:
        return
    if isinstance(target, MemberScoped):
        if getattr(target, "role", None) not in (None, "user"):
            raise CrossTenantWrite("A platform-wide role is given by platform operations only.")
        if inspect(target).has_identity:
            raise _refuse_write(target, "changed")
        return
    if isinstance(target, SelfScoped):
        if target.id != scope.org_id:
            raise CrossTenantWrite(f"Organisation {target.id} is not {scope}.")
        return
    if target.org_id != scope.org_id:
        raise CrossTenantWrite(f"{type(target).__name__} belongs to org {target.org_id}, not to {scope}.")
    _check_references(type(target), {c.key: getattr(target, c.key, None) for c in mapper.columns
                                     if c.foreign_keys}, scope, session)


# --- statements past the session -----------------------------------------------------------------


def reviewed_sql(statement):
    """`statement`, marked as a reviewed module's: it scopes itself (see the module docstring)."""
    return statement.execution_options(**{REVIEWED_SQL: True})


@cache
def _scoped_name_pattern() -> re.Pattern:
    return re.compile(r"\b(" + "|".join(sorted(_scoped_names())) + r")\b", re.IGNORECASE)


def _scoped_names_in_text(sql: str) -> set[str]:
    return {name.lower() for name in _scoped_name_pattern().findall(sql)}


def _scoped_names_in(statement) -> set[str]:
    """The scoped tables a statement (or a SQL string) reads or writes, by table, alias, lightweight
    table or name in its text."""
    if isinstance(statement, str):
        return _scoped_names_in_text(statement)
    if isinstance(statement, StatementLambdaElement):
        statement = statement._resolved
    found = set()
    for element in visitors.iterate(statement):
        if isinstance(element, TextClause):
            found |= _scoped_names_in_text(element.text)
        elif isinstance(element, TableClause | Alias):
            kind = _kind_of(element)
            if kind is not None:
                found.add(kind.__table__.name)
            elif isinstance(element, TableClause) and element.name in _scoped_names():
                found.add(element.name)
    return found


def _refuse_unnarrowed(statement, options) -> None:
    if (not _ENTERED.get() or _FLUSHING.get() or options.get(REVIEWED_SQL)
            or options.get(_NARROWED) is _NARROWED_MARK):
        return
    scope = _innermost_tenant_scope()
    if scope is None:
        return
    names = _scoped_names_in(statement)
    if names:
        raise RefusedStatement(f"A statement on {', '.join(sorted(names))} ran past the tenant filter in {scope}: "
                               "run it through the session, or from a reviewed module (reviewed_sql).")


def _check_execute(conn, clauseelement, multiparams, params, execution_options) -> None:
    _refuse_unnarrowed(clauseelement, execution_options)


def _check_driver_sql(conn, cursor, statement, parameters, context, executemany) -> None:
    """SQL strings (`exec_driver_sql`) skip `before_execute`: they are checked here, as they run."""
    if context is not None and context.compiled is None and not context.isddl:
        _refuse_unnarrowed(statement, context.execution_options)


_LISTENERS = ((Session, "do_orm_execute", _apply_tenant_criteria), (Session, "before_flush", _check_flush),
              (Mapper, "before_insert", _check_row), (Mapper, "before_update", _check_row),
              (Engine, "before_execute", _check_execute), (Engine, "before_cursor_execute", _check_driver_sql))


def init_app(app=None) -> None:
    """Install the tenant filter on every session and mapper (once per process; the app factory calls
    it, before any session exists)."""
    for target, name, listener in _LISTENERS:
        if not event.contains(target, name, listener):
            event.listen(target, name, listener)


class TenantSession:
    """Session mixin: the legacy bulk methods skip every hook above, so they are refused on scoped models;
    a flush's statements are the unit of work's (checked by the flush guards, not by the engine hook);
    closing the session (as a request or a job ends) ends its scope."""

    def flush(self, objects=None) -> None:
        flushing = _FLUSHING.set(True)
        try:
            super().flush(objects)
        finally:
            _FLUSHING.reset(flushing)

    def close(self) -> None:
        try:
            super().close()
        finally:
            if self.info.get(_SCOPE_KEY) is not None:
                _end(self)

    def _refuse_bulk(self, mappers) -> None:
        scope = self.info.get(_SCOPE_KEY)
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
