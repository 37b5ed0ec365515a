"""Scope lifecycle: which organisation (or which platform bypass) a session acts for, how it is entered
and left, the fence of one request, and the guard on statements that run past the session.

A session is in one of three states, kept in `session.info`: a tenant `Scope` (one organisation, the
principal's role there and, for agents, their extension), an explicit platform bypass with a reason,
or nothing (then any ORM statement or flush that touches a scoped model raises `TenantContextRequired`).

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

Not filtered, by design: text SQL, Core writes on tables and statements run on a `Connection`
directly. They live only in reviewed modules (the sync's ingest and discovery, the audit log,
authentication, the members' accounts, the MightyCall token store, the webhook receiver's store, a
recording's fresh link, and this package's own checks), which scope what they do themselves
(`tenant_criterion_sql`, or the org named in every row they write) and mark each such statement
with `reviewed_sql`; a test fails when one appears anywhere else. In a tenant scope everything else
of that kind is refused when it runs (`RefusedStatement`): through the session by the statement
rewriter (`vsync.tenancy.rewriter`), and past the session (`session.connection().execute(...)`,
`db.engine.connect()`, Core, ORM, text or a driver-level string) by the execution guard here: an
engine hook checks every statement as it runs, and refuses one on a scoped table unless it is marked.
What the session hook has narrowed carries its mark; the unit of work's own statements run inside a
flush, checked by the flush guards (`vsync.tenancy.guards`). A raw connection has no session to ask,
so "in a tenant scope" means: the innermost scope entered in this context (thread or task), on any
session, is a tenant scope. Leaving a scope, or closing its session, ends it.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Iterable
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import TypeVar

from sqlalchemy.orm import Session
from sqlalchemy.sql import Executable, visitors
from sqlalchemy.sql.elements import TextClause
from sqlalchemy.sql.selectable import Alias, TableClause

from vsync.tenancy import sqla
from vsync.tenancy.errors import RefusedStatement, ScopeRefused, TenancyError
from vsync.tenancy.kinds import kind_of, scoped_names, scoped_names_in_text

log = logging.getLogger(__name__)

SCOPE_KEY = "vsync.tenancy.scope"
_DEPTH_KEY = "vsync.tenancy.depth"
_FENCE_KEY = "vsync.tenancy.fence"  # in the WSGI environ of a request
# The execution option of a reviewed statement (`reviewed_sql`), and the mark of one the session hook
# has narrowed, whose value only this package holds.
REVIEWED_SQL = "vsync_reviewed_sql"
NARROWED = "vsync_tenant_narrowed"
NARROWED_MARK = object()
AGENT = "agent"

_Statement = TypeVar("_Statement", bound=Executable)


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
    def tenant_org_id(self) -> int:
        """The org of a tenant scope: `enter_scope` enters no scope without one but a bypass."""
        assert self.org_id is not None, f"{self} has no organisation"
        return self.org_id

    @property
    def own_traffic_only(self) -> bool:
        """Agents see the traffic of their own extension only."""
        return self.role == AGENT

    def __str__(self) -> str:
        if self.is_bypass:
            return f"platform bypass ({self.bypass_reason})"
        return f"org {self.org_id}" + (f" as {self.role}" if self.role else "")


# --- scope lifecycle -----------------------------------------------------------------------------


def _session(session: Session | None) -> Session:
    if session is not None:
        return session
    from vsync.extensions import db

    return db.session()


def current_scope(session: Session | None = None) -> Scope | None:
    return _session(session).info.get(SCOPE_KEY)


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
FLUSHING: ContextVar[bool] = ContextVar("vsync_tenancy_flushing", default=False)


def _entered_except(session: Session) -> tuple[weakref.ref, ...]:
    return tuple(ref for ref in _ENTERED.get() if ref() is not None and ref() is not session)


def end_scope(session: Session) -> None:
    session.info.pop(SCOPE_KEY, None)
    session.info.pop(_DEPTH_KEY, None)
    _ENTERED.set(_entered_except(session))


def _innermost_tenant_scope() -> Scope | None:
    """The scope entered last in this context that is still active, if it is a tenant scope."""
    for ref in reversed(_ENTERED.get()):
        session = ref()
        scope = None if session is None else session.info.get(SCOPE_KEY)
        if scope is not None:
            return None if scope.is_bypass else scope
    return None


def _enter(session: Session, scope: Scope) -> None:
    current = session.info.get(SCOPE_KEY)
    if current is not None:
        if current != scope:
            raise TenancyError(f"This session is already in {current}; it cannot also enter {scope}.")
        session.info[_DEPTH_KEY] += 1
        return
    _check_fence(scope)
    # Whatever was loaded or left pending with no scope must not be served or written inside this one.
    _forget_everything(session, flush=True)
    session.info[SCOPE_KEY] = scope
    session.info[_DEPTH_KEY] = 1
    _ENTERED.set((*_entered_except(session), weakref.ref(session)))


def _leave(session: Session, *, flush: bool) -> None:
    if session.info.get(SCOPE_KEY) is None:
        return
    session.info[_DEPTH_KEY] -= 1
    if session.info[_DEPTH_KEY] > 0:
        return
    try:
        _forget_everything(session, flush=flush)
    finally:
        end_scope(session)


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


def tenant(
    org_id: int | Scope,
    session: Session | None = None,
    *,
    role: str | None = None,
    extension: str | None = None,
    accounts: Iterable[int] = (),
):
    """`with tenant(org_id):` (or `tenant(scope)`) a block scoped to one organisation."""
    scope = (
        org_id
        if isinstance(org_id, Scope)
        else Scope(org_id=org_id, role=role, extension=extension, accounts=tuple(sorted(accounts)))
    )
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
    environ, fence = _request_environ(), request_fence()
    if environ is None or fence is None or fence.principal is not None:
        raise TenancyError("Only a request without a principal fixes its own org.")
    if fence.org_id not in (None, org_id):
        raise ScopeRefused(f"{fence} cannot act in org {org_id} as well.")
    environ[_FENCE_KEY] = replace(fence, org_id=org_id)


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


# --- statements past the session -----------------------------------------------------------------


def reviewed_sql(statement: _Statement) -> _Statement:
    """`statement`, marked as a reviewed module's: it scopes itself (see the module docstring)."""
    return statement.execution_options(**{REVIEWED_SQL: True})


def _scoped_names_in(statement) -> set[str]:
    """The scoped tables a statement (or a SQL string) reads or writes, by table, alias, lightweight
    table or name in its text."""
    if isinstance(statement, str):
        return scoped_names_in_text(statement)
    statement = sqla.resolved(statement)
    found = set()
    for element in visitors.iterate(statement):
        if isinstance(element, TextClause):
            found |= scoped_names_in_text(element.text)
        elif isinstance(element, TableClause | Alias):
            kind = kind_of(element)
            if kind is not None:
                found.add(kind.__table__.name)
            elif isinstance(element, TableClause) and element.name in scoped_names():
                found.add(element.name)
    return found


def _refuse_unnarrowed(statement, options) -> None:
    if not _ENTERED.get() or FLUSHING.get() or options.get(REVIEWED_SQL) or options.get(NARROWED) is NARROWED_MARK:
        return
    scope = _innermost_tenant_scope()
    if scope is None:
        return
    names = _scoped_names_in(statement)
    if names:
        raise RefusedStatement(
            f"A statement on {', '.join(sorted(names))} ran past the tenant filter in {scope}: "
            "run it through the session, or from a reviewed module (reviewed_sql)."
        )


def check_execute(conn, clauseelement, multiparams, params, execution_options) -> None:
    _refuse_unnarrowed(clauseelement, execution_options)


def check_driver_sql(conn, cursor, statement, parameters, context, executemany) -> None:
    """SQL strings (`exec_driver_sql`) skip `before_execute`: they are checked here, as they run."""
    if context is not None and context.compiled is None and not context.isddl:
        _refuse_unnarrowed(statement, context.execution_options)
