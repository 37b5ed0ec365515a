"""GET and POST /api/v1/orgs/{org}/api-keys, DELETE /api/v1/orgs/{org}/api-keys/{id}: the org's API keys.

Org admins and platform principals only: an org key acts as a manager, so a leaked key can neither
list keys nor mint more. The key itself is in the answer to POST and nowhere else: vsync keeps only
its hash (`vsync.services.keys`, the same functions as the CLI's `create-api-key` and `revoke-api-key`).
"""

from __future__ import annotations

import marshmallow as ma
from flask import g
from marshmallow import fields, validate
from sqlalchemy import select

from vsync.api import bp
from vsync.api.access import requires
from vsync.api.paging import newest_by_id
from vsync.api.schemas import Body, Instant, Query, UtcDateTimeField, page_of, page_params
from vsync.auth.principals import current_principal, user_id_of
from vsync.extensions import db
from vsync.models import ApiKey
from vsync.models.keys import SCOPES
from vsync.models.orgs import ORG_ADMIN
from vsync.models.types import utcnow
from vsync.services.keys import create_api_key, revoke_api_key

KeysQuery = Query.from_dict(page_params(), name="ApiKeysQuery")


class ApiKeySchema(ma.Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    prefix = fields.String(
        required=True,
        metadata={"description": "The key's public part, `vsk_…`; it identifies the key in the audit log."},
    )
    scopes = fields.List(fields.String(), required=True, metadata={"description": "read, write."})
    status = fields.String(required=True, metadata={"description": "active, expired or revoked."})
    created_at = UtcDateTimeField(required=True)
    expires_at = UtcDateTimeField(allow_none=True, required=True)
    revoked_at = UtcDateTimeField(allow_none=True, required=True)
    last_used_at = UtcDateTimeField(
        allow_none=True, required=True, metadata={"description": "Written at most once a minute."}
    )


class NewApiKeySchema(ApiKeySchema):
    key = fields.String(
        required=True,
        metadata={"description": "The key, for `Authorization: Bearer …`. Shown in this answer only: store it now."},
    )


class NewApiKeyBody(Body):
    name = fields.String(required=True, validate=validate.Length(1, 200), metadata={"example": "Wallboard"})
    scopes = fields.List(
        fields.String(validate=validate.OneOf(SCOPES)),
        load_default=["read"],
        validate=validate.Length(1, len(SCOPES)),
        metadata={"description": "`write` implies `read`. Default: read only.", "example": ["read"]},
    )
    expires_at = Instant(
        load_default=None,
        metadata={"description": "Optional expiry, in the future.", "example": "2027-01-01T00:00:00Z"},
    )


def _key_json(key: ApiKey) -> dict:
    status = "revoked" if key.revoked_at is not None else "active" if key.usable_at(utcnow()) else "expired"
    return {
        "id": key.id,
        "name": key.name,
        "prefix": key.prefix,
        "scopes": list(key.scope_list),
        "status": status,
        "created_at": key.created_at,
        "expires_at": key.expires_at,
        "revoked_at": key.revoked_at,
        "last_used_at": key.last_used_at,
    }


@bp.get("/orgs/<org>/api-keys")
@requires(scope="read", role=ORG_ADMIN)
@bp.arguments(KeysQuery, location="query")
@bp.response(200, page_of(ApiKeySchema, "ApiKeysPage"))
def list_api_keys(args, org: str):
    """The org's API keys

    Newest first, revoked and expired ones included; never a key's secret.
    """
    return newest_by_id(select(ApiKey), ApiKey.id, args, _key_json)


@bp.post("/orgs/<org>/api-keys")
@requires(scope="write", role=ORG_ADMIN)
@bp.arguments(NewApiKeyBody)
@bp.response(201, NewApiKeySchema)
def create_key(args, org: str):
    """Create an API key for the org

    The answer holds the key (`key`) once; vsync keeps only its hash. An org key acts as a manager:
    it reads everything in the org and, with `write`, may start syncs. Audited.
    """
    key, plaintext = create_api_key(
        org_id=g.org_access.org_id,
        name=args["name"],
        scopes=args["scopes"],
        expires_at=args["expires_at"],
        created_by_user_id=user_id_of(current_principal()),
    )
    db.session.commit()
    return {**_key_json(key), "key": plaintext}


@bp.delete("/orgs/<org>/api-keys/<int:key_id>")
@requires(scope="write", role=ORG_ADMIN)
@bp.response(200, ApiKeySchema)
def revoke_key(org: str, key_id: int):
    """Revoke an API key

    The key is refused from the next request on. Revoking a revoked key changes nothing. Another
    org's key is a 404. Audited.
    """
    key = revoke_api_key(key_id)
    db.session.commit()
    return _key_json(key)
