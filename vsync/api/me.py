"""GET /api/v1/me: who the caller is, its scopes, and every organisation it can reach with its role."""
from __future__ import annotations

from flask import jsonify
from flask_login import current_user

from vsync.api import bp
from vsync.auth.principals import OrgAccess, reachable_orgs


def org_access_json(access: OrgAccess) -> dict:
    return {"id": access.org_id, "slug": access.slug, "name": access.name, "timezone": access.timezone,
            "role": access.role, "extension": access.extension}


@bp.get("/me")
def me():
    principal = current_user._get_current_object()
    if principal.is_api_key:
        who = {"type": "api_key", "id": principal.key_id, "prefix": f"vsk_{principal.public_id}",
               "name": principal.name}
    else:
        who = {"type": "user", "id": principal.id, "email": principal.email}
    return jsonify(principal=who, scopes=list(principal.scopes), platform=principal.is_platform,
                   orgs=[org_access_json(access) for access in reachable_orgs(principal)])
