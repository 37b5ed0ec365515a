"""Role checks used by every edge. Roles inside an org rank agent < manager < org_admin; a platform
admin (or a platform API key) outranks all of them in every org."""
from __future__ import annotations

from vsync.auth.principals import memberships_of
from vsync.models.orgs import AGENT, MANAGER, ORG_ADMIN

ROLE_RANK = {AGENT: 1, MANAGER: 2, ORG_ADMIN: 3}


def org_role(principal, org_id: int | None) -> str | None:
    """The principal's role in `org_id`: `org_admin` for platform principals and org keys."""
    if principal is None or not getattr(principal, "is_authenticated", False):
        return None
    if principal.is_platform_admin:
        return ORG_ADMIN
    if getattr(principal, "is_api_key", False):
        return ORG_ADMIN if principal.org_id == org_id else None
    for membership in memberships_of(principal.id):
        if membership.org_id == org_id:
            return membership.role
    return None


def has_role(principal, org_id: int | None, minimum: str) -> bool:
    role = org_role(principal, org_id)
    return role is not None and ROLE_RANK[role] >= ROLE_RANK[minimum]


def has_scope(principal, scope: str) -> bool:
    """Keys carry scopes; a signed-in user's writes are governed by role alone."""
    if getattr(principal, "is_api_key", False):
        return scope in principal.scopes
    return bool(getattr(principal, "is_authenticated", False))
