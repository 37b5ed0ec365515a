"""Tenant isolation: the only package that knows how rows are scoped to an organisation.

Every ORM statement and flush that touches a scoped model passes hooks installed here (`init_app`);
forgetting the scope fails closed instead of showing every tenant's data. One module per concern:

- `scope`: who a session acts for (`Scope`, `tenant()`, `platform_bypass()`, `current_scope`), the
  fence of one request, `reviewed_sql` and the execution guard on statements past the session;
- `kinds`: the model mixins (`OrgOwned`, `NumberTraffic`, `AccountScoped`, ...), each with its criterion;
- `rewriter`: the session hook that narrows every read (`do_orm_execute` + `with_loader_criteria`);
- `guards`: the flush guards and bulk-statement checks on writes (`CrossTenantWrite`);
- `sqla`: the only module that relies on SQLAlchemy internals, each fenced by a test
  (`tests/test_tenancy_internals.py`) that names what an upgrade changed;
- `errors`: what the filter raises.

The design is `../shared/ARCHITECTURE.md`, "Tenancy"; the README's "Tenancy" section says how to use it.
"""

from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Mapper, Session

from vsync.tenancy.errors import (
    CrossTenantWrite,
    RefusedStatement,
    ScopeRefused,
    TenancyError,
    TenantContextRequired,
)
from vsync.tenancy.guards import TenantSession, check_flush, check_row
from vsync.tenancy.kinds import (
    AccountScoped,
    MemberScoped,
    NumberPeriods,
    NumberTraffic,
    OrgOwned,
    SelfScoped,
    SharedNumber,
    TenantScoped,
    named_alias,
    scoped_models,
    tenant_criterion_sql,
    traffic_visible_sql,
)
from vsync.tenancy.rewriter import apply_tenant_criteria, narrowed_select
from vsync.tenancy.scope import (
    AGENT,
    Scope,
    check_driver_sql,
    check_execute,
    current_org_id,
    current_scope,
    enter_platform_bypass,
    enter_scope,
    fence_request,
    fix_request_org,
    platform_bypass,
    reviewed_sql,
    tenant,
)
from vsync.tenancy.sqla import bind_processors

__all__ = [
    "AGENT",
    "AccountScoped",
    "CrossTenantWrite",
    "MemberScoped",
    "NumberPeriods",
    "NumberTraffic",
    "OrgOwned",
    "RefusedStatement",
    "Scope",
    "ScopeRefused",
    "SelfScoped",
    "SharedNumber",
    "TenancyError",
    "TenantContextRequired",
    "TenantScoped",
    "TenantSession",
    "current_org_id",
    "current_scope",
    "enter_platform_bypass",
    "enter_scope",
    "fence_request",
    "fix_request_org",
    "init_app",
    "named_alias",
    "bind_processors",
    "narrowed_select",
    "platform_bypass",
    "reviewed_sql",
    "scoped_models",
    "tenant",
    "tenant_criterion_sql",
    "traffic_visible_sql",
]

_LISTENERS = (
    (Session, "do_orm_execute", apply_tenant_criteria),
    (Session, "before_flush", check_flush),
    (Mapper, "before_insert", check_row),
    (Mapper, "before_update", check_row),
    (Engine, "before_execute", check_execute),
    (Engine, "before_cursor_execute", check_driver_sql),
)


def init_app(app=None) -> None:
    """Install the tenant filter on every session and mapper (once per process; the app factory calls
    it, before any session exists)."""
    for target, name, listener in _LISTENERS:
        if not event.contains(target, name, listener):
            event.listen(target, name, listener)
