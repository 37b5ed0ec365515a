"""GET /api/v1/me: who the caller is and which organisation its requests act in."""
from __future__ import annotations

from flask import jsonify
from flask_login import current_user

from vsync.api import bp
from vsync.auth.permissions import org_role
from vsync.extensions import db
from vsync.models import Organization
from vsync.tenancy import current_org_id


def _org_json(org_id: int | None):
    if org_id is None:
        return None
    org = db.session.get(Organization, org_id)
    return {"id": org.id, "slug": org.slug, "name": org.name, "timezone": org.timezone}


@bp.get("/me")
def me():
    principal = current_user._get_current_object()
    org_id = current_org_id()
    if getattr(principal, "is_api_key", False):
        who = {"type": "api_key", "id": principal.key_id, "prefix": f"vsk_{principal.public_id}",
               "name": principal.name, "scopes": list(principal.scopes)}
    else:
        who = {"type": "user", "id": principal.id, "email": principal.email, "scopes": ["read", "write"]}
    role = org_role(principal, org_id) if org_id is not None else None
    return jsonify(principal=who, platform=principal.is_platform_admin, org=_org_json(org_id), role=role)
