"""Role checks used by every edge. Roles inside an org rank agent < manager < org_admin; the role a
principal has in the org of a request is the resolver's (`g.org_access`, see `vsync.auth.principals`)."""

from __future__ import annotations

from flask import g

from vsync.errors import NotFound
from vsync.extensions import db
from vsync.models.orgs import AGENT, MANAGER, ORG_ADMIN, Organization

ROLE_RANK = {AGENT: 1, MANAGER: 2, ORG_ADMIN: 3}


def request_role() -> str | None:
    """The principal's role in the org of this request, or None outside an org route."""
    access = g.get("org_access")
    return access.role if access is not None else None


def request_org() -> Organization:
    """The org of this org route's URL, as the resolver found it for the principal (in its tenant scope)."""
    access = g.get("org_access")
    org = db.session.get(Organization, access.org_id) if access is not None else None
    if org is None:
        raise NotFound("This route has no organisation.", field="org")
    return org


def has_role(minimum: str) -> bool:
    role = request_role()
    return role is not None and ROLE_RANK[role] >= ROLE_RANK[minimum]


def has_scope(principal, scope: str) -> bool:
    """Keys carry scopes; a signed-in user has every scope and is governed by role alone."""
    return principal.is_authenticated and scope in principal.scopes
