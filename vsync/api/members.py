"""GET and POST /api/v1/orgs/{org}/members, PATCH and DELETE /api/v1/orgs/{org}/members/{id}: who is
in the org, with which role and extension.

Everyone in the org may read the list, but an agent sees only their own membership (agents see no
other members' data). Org admins (and platform principals) add people by email, change a member's
role or extension, and remove members, through `vsync.services.members`, the functions the CLI and
the console call. Every org keeps an org admin: removing or demoting the last one is a 409
(`last_org_admin`). The API never takes a password: the answer to POST holds a one-time
set-password URL (valid 72 hours) for the admin to pass on, whoever the email belongs to, so that
the answer never tells whether the person has an account, or in which org (`vsync.services.members`).
For the same reason a member is shown without their account's id, whose age would tell it.
"""

from __future__ import annotations

import marshmallow as ma
from flask import g, url_for
from flask_login import current_user
from marshmallow import fields, validate
from sqlalchemy import select

from vsync.api import bp
from vsync.api.access import requires
from vsync.api.paging import decode_cursor, page
from vsync.api.schemas import Body, Query, UtcDateTimeField, page_of, page_params
from vsync.auth.permissions import request_org
from vsync.extensions import db
from vsync.models import Membership, User
from vsync.models.orgs import ORG_ADMIN, ORG_ROLES
from vsync.services import members
from vsync.tenancy import AGENT

MembersQuery = Query.from_dict(page_params(), name="MembersQuery")
_EXTENSION = {
    "description": "The member's MightyCall extension (an agent sees the calls it handled).",
    "example": "101",
}


class MemberSchema(ma.Schema):
    id = fields.Integer(required=True, metadata={"description": "The membership's id, for PATCH and DELETE."})
    email = fields.String(required=True)
    role = fields.String(required=True, metadata={"description": "org_admin, manager or agent."})
    extension = fields.String(allow_none=True, required=True)
    created_at = UtcDateTimeField(required=True)


class NewMemberSchema(MemberSchema):
    set_password_url = fields.String(
        required=True,
        metadata={
            "description": "A one-time link to pass on, shown once: a person with no vsync password yet chooses "
            "one with it (once, within 72 hours); a person with a password signs in with theirs, "
            "and the link says it is not valid. Given alike for everyone."
        },
    )


class NewMemberBody(Body):
    email = fields.String(required=True, validate=validate.Length(1, 254), metadata={"example": "ana@acme.example"})
    role = fields.String(required=True, validate=validate.OneOf(ORG_ROLES), metadata={"example": "agent"})
    extension = fields.String(load_default=None, allow_none=True, validate=validate.Length(1, 20), metadata=_EXTENSION)


class MemberChangesBody(Body):
    role = fields.String(validate=validate.OneOf(ORG_ROLES), metadata={"example": "manager"})
    extension = fields.String(
        allow_none=True,
        validate=validate.Length(1, 20),
        metadata={**_EXTENSION, "description": _EXTENSION["description"] + " null clears it."},
    )


def _member_json(membership: Membership) -> dict:
    return {
        "id": membership.id,
        "email": membership.user.email,
        "role": membership.role,
        "extension": membership.extension,
        "created_at": membership.created_at,
    }


@bp.get("/orgs/<org>/members")
@requires(scope="read")
@bp.arguments(MembersQuery, location="query")
@bp.response(200, page_of(MemberSchema, "MembersPage"))
def list_members(args, org: str):
    """The org's members

    By email, with role and extension. An agent sees only their own membership.
    """
    after = decode_cursor(args["cursor"], args)
    query = (
        select(Membership, User.email)
        .join(User, User.id == Membership.user_id)
        .order_by(User.email)
        .limit(args["limit"] + 1)
    )
    if g.org_access.role == AGENT:
        query = query.where(Membership.user_id == current_user.id)
    if after is not None:
        query = query.where(User.email > after[0])
    result = page(db.session.execute(query).all(), args["limit"], lambda row: [row.email], args)
    return {**result, "data": [_member_json(row.Membership) for row in result["data"]]}


@bp.post("/orgs/<org>/members")
@requires(scope="write", role=ORG_ADMIN)
@bp.arguments(NewMemberBody)
@bp.response(201, NewMemberSchema)
def add_member(args, org: str):
    """Add a person to the org

    By email, with a role and (for agents) an extension; someone with a vsync account keeps it, and a
    person new to vsync gets one without a password. The answer is the same for both: the member and
    `set_password_url`, shown once. No password is taken. 409 when they are a member already. Audited.
    """
    added = members.add_member(request_org(), args["email"], args["role"], extension=args["extension"])
    db.session.commit()
    return {
        **_member_json(added.membership),
        "set_password_url": url_for("auth.set_password", token=added.password_token, _external=True),
    }


@bp.patch("/orgs/<org>/members/<int:membership_id>")
@requires(scope="write", role=ORG_ADMIN)
@bp.arguments(MemberChangesBody)
@bp.response(200, MemberSchema)
def change_member(changes, org: str, membership_id: int):
    """Change a member's role or extension

    Either or both; `extension: null` clears it. Demoting the org's last org admin is a 409
    (`last_org_admin`). Audited with what changed.
    """
    record = request_org()
    membership = members.change_member(record, members.get_membership(record, membership_id), **changes)
    db.session.commit()
    return _member_json(membership)


# Flask types a view as returning a response; flask-smorest answers this one's None with its declared 204.
@bp.delete("/orgs/<org>/members/<int:membership_id>")  # pyright: ignore[reportArgumentType]
@requires(scope="write", role=ORG_ADMIN)
@bp.response(204)
def remove_member(org: str, membership_id: int):
    """Remove a member from the org

    Their account and other orgs' memberships stay. Removing the org's last org admin is a 409
    (`last_org_admin`). Audited.
    """
    record = request_org()
    members.remove_member(record, members.get_membership(record, membership_id))
    db.session.commit()
