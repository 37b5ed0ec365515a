"""What the tenant filter raises: every refusal is a `TenancyError`, which the web layer answers as a
refusal of the request, never as another organisation's data."""

from __future__ import annotations


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
