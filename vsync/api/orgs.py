"""GET /api/v1/orgs, GET and PATCH /api/v1/orgs/{org}: the organisations a principal may act in.

`{org}` is a slug or an id. Every route with `<org>` in its URL acts in that org's tenant scope,
entered by `vsync.auth` from the resolver's answer before the view runs (`g.org_access`).
"""

from __future__ import annotations

import marshmallow as ma
from flask import g
from flask_login import current_user
from marshmallow import fields, validate

from vsync.api import bp
from vsync.api.access import requires
from vsync.api.me import OrgAccessSchema, org_access_json
from vsync.api.paging import decode_cursor, page
from vsync.api.schemas import Body, Query, page_of, page_params
from vsync.auth.permissions import request_org
from vsync.auth.principals import reachable_orgs
from vsync.extensions import db
from vsync.models.orgs import ORG_ADMIN
from vsync.services.orgs import update_org_settings

OrgsQuery = Query.from_dict(page_params(), name="OrgsQuery")


class OrgSchema(ma.Schema):
    id = fields.Integer(required=True)
    slug = fields.String(required=True)
    name = fields.String(required=True)
    timezone = fields.String(required=True, metadata={"description": "IANA time zone of every local figure."})
    service_level_target = fields.Float(required=True, metadata={"description": "0..1, e.g. 0.8."})
    service_level_threshold_seconds = fields.Integer(required=True)
    short_abandon_seconds = fields.Integer(required=True)
    require_two_factor = fields.Boolean(
        required=True, metadata={"description": "Everyone acting in the org must have two-factor sign-in on."}
    )
    role = fields.String(required=True, metadata={"description": "The caller's role in this org."})
    extension = fields.String(allow_none=True, required=True)


class OrgSettingsBody(Body):
    name = fields.String(validate=validate.Length(1, 200))
    timezone = fields.String(
        metadata={"description": "An IANA time zone, e.g. Europe/Berlin.", "example": "Europe/Berlin"}
    )
    service_level_target = fields.Float(validate=validate.Range(0, 1), metadata={"example": 0.8})
    service_level_threshold_seconds = fields.Integer(validate=validate.Range(1, 3600), metadata={"example": 20})
    short_abandon_seconds = fields.Integer(validate=validate.Range(0, 600), metadata={"example": 5})
    require_two_factor = fields.Boolean(
        metadata={"description": "Require two-factor sign-in of everyone acting in the org.", "example": True}
    )


def _org_json() -> dict:
    record = request_org()
    return {
        "id": record.id,
        "slug": record.slug,
        "name": record.name,
        "timezone": record.timezone,
        "service_level_target": record.service_level_target,
        "service_level_threshold_seconds": record.service_level_threshold_seconds,
        "short_abandon_seconds": record.short_abandon_seconds,
        "require_two_factor": record.require_two_factor,
        "role": g.org_access.role,
        "extension": g.org_access.extension,
    }


@bp.get("/orgs")
@bp.arguments(OrgsQuery, location="query")
@bp.response(200, page_of(OrgAccessSchema, "OrgsPage"))
def list_orgs(args):
    """The orgs the caller may act in

    By id; a platform principal sees every org.
    """
    after = decode_cursor(args["cursor"], args)
    rows = reachable_orgs(
        current_user._get_current_object(), after_id=after[0] if after else None, limit=args["limit"] + 1
    )
    result = page(rows, args["limit"], lambda access: [access.org_id], args)
    return {**result, "data": [org_access_json(access) for access in result["data"]]}


@bp.get("/orgs/<org>")
@requires(scope="read")
@bp.response(200, OrgSchema)
def get_org(org: str):
    """One org, with the caller's role in it"""
    return _org_json()


@bp.patch("/orgs/<org>")
@requires(scope="write", role=ORG_ADMIN)
@bp.arguments(OrgSettingsBody)
@bp.response(200, OrgSchema)
def patch_org(changes, org: str):
    """Change the org's name and settings

    Any of: name, time zone, service-level target and threshold, short-abandon seconds, whether
    two-factor sign-in is required. Audited.
    """
    update_org_settings(request_org(), **changes)
    db.session.commit()
    return _org_json()
