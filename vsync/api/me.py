"""GET /api/v1/me: who the caller is, its scopes, and every organisation it can reach with its role."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields

from vsync.api import bp
from vsync.auth.principals import ApiKeyPrincipal, OrgAccess, UserPrincipal, current_principal, reachable_orgs


class OrgAccessSchema(ma.Schema):
    id = fields.Integer(required=True)
    slug = fields.String(required=True)
    name = fields.String(required=True)
    timezone = fields.String(required=True)
    role = fields.String(
        required=True, metadata={"description": "agent, manager or org_admin; org_admin for platform principals."}
    )
    extension = fields.String(allow_none=True, required=True, metadata={"description": "An agent's extension."})


class PrincipalSchema(ma.Schema):
    type = fields.String(required=True, metadata={"description": "user or api_key"})
    id = fields.Integer(required=True)
    email = fields.String(metadata={"description": "Users only."})
    prefix = fields.String(metadata={"description": "API keys only: the key's public prefix."})
    name = fields.String(metadata={"description": "API keys only."})


class MeSchema(ma.Schema):
    principal = fields.Nested(PrincipalSchema, required=True)
    scopes = fields.List(fields.String(), required=True, metadata={"description": "read, write."})
    platform = fields.Boolean(required=True, metadata={"description": "May act in every org."})
    orgs = fields.List(fields.Nested(OrgAccessSchema), required=True)


def org_access_json(access: OrgAccess) -> dict:
    return {
        "id": access.org_id,
        "slug": access.slug,
        "name": access.name,
        "timezone": access.timezone,
        "role": access.role,
        "extension": access.extension,
    }


@bp.get("/me")
@bp.response(200, MeSchema)
def me():
    """The caller, its scopes and its orgs

    Every org the caller can reach, with its role there.
    """
    principal = current_principal()
    if isinstance(principal, ApiKeyPrincipal):
        who = {
            "type": "api_key",
            "id": principal.key_id,
            "prefix": f"vsk_{principal.public_id}",
            "name": principal.name,
        }
    elif isinstance(principal, UserPrincipal):
        who = {"type": "user", "id": principal.id, "email": principal.email}
    else:
        raise RuntimeError("/me is not a public route.")
    return {
        "principal": who,
        "scopes": list(principal.scopes),
        "platform": principal.is_platform,
        "orgs": [org_access_json(access) for access in reachable_orgs(principal)],
    }
