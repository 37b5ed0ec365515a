"""GET /api/v1/me: who the caller is, its scopes, every organisation it can reach with its role, and
for a person their two-factor sign-in (an API key has none: keys are unaffected by two-factor)."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields

from vsync.api import bp
from vsync.auth.principals import ApiKeyPrincipal, OrgAccess, UserPrincipal, current_principal, reachable_orgs
from vsync.services import twofactor


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


class TwoFactorSchema(ma.Schema):
    enabled = fields.Boolean(required=True, metadata={"description": "Two-factor sign-in is on."})
    required = fields.Boolean(
        required=True,
        metadata={
            "description": "The person must have it on: a platform admin where the platform requires it, or a "
            "member of an org that does. Until it is on, the API answers 403 two_factor_required (but here)."
        },
    )


class MeSchema(ma.Schema):
    principal = fields.Nested(PrincipalSchema, required=True)
    scopes = fields.List(fields.String(), required=True, metadata={"description": "read, write."})
    platform = fields.Boolean(required=True, metadata={"description": "May act in every org."})
    orgs = fields.List(fields.Nested(OrgAccessSchema), required=True)
    two_factor = fields.Nested(
        TwoFactorSchema, required=True, allow_none=True, metadata={"description": "Users only; null for API keys."}
    )


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

    Every org the caller can reach, with its role there; for a person, whether two-factor sign-in
    is on and whether they must have it.
    """
    principal = current_principal()
    if isinstance(principal, ApiKeyPrincipal):
        who = {
            "type": "api_key",
            "id": principal.key_id,
            "prefix": f"vsk_{principal.public_id}",
            "name": principal.name,
        }
        two_factor = None
    elif isinstance(principal, UserPrincipal):
        who = {"type": "user", "id": principal.id, "email": principal.email}
        two_factor = {
            "enabled": twofactor.state_of(principal.id).enabled,
            "required": twofactor.required_for(principal.id, principal.role),
        }
    else:
        raise RuntimeError("/me is not a public route.")
    return {
        "principal": who,
        "scopes": list(principal.scopes),
        "platform": principal.is_platform,
        "orgs": [org_access_json(access) for access in reachable_orgs(principal)],
        "two_factor": two_factor,
    }
