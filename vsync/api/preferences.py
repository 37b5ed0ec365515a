"""The caller's own notification preferences: GET and PATCH /api/v1/orgs/{org}/me/preferences (in one
org, for its members), GET and PATCH /api/v1/me/preferences (a platform admin's own, about every org).

Preferences belong to a person, so these routes answer a signed-in person (the console's session) only:
an API key acts for an org or the platform, never for a person, and is refused (403 `person_required`),
as is a platform admin acting in an org they are not a member of (403 `not_a_member`; their own are at
/api/v1/me/preferences). Changes go through `vsync.services.notifications.preferences`, as in the
console's *My notifications*: validated all before any is written, and audited. The keys and their
values are the service's `CHOICES` (and `PLATFORM_CHOICES`): a key added there is served here unchanged.
"""

from __future__ import annotations

import marshmallow as ma
from flask import g
from marshmallow import fields, validate
from sqlalchemy import select

from vsync.api import bp
from vsync.api.access import PLATFORM, requires
from vsync.api.schemas import Body
from vsync.auth.principals import UserPrincipal, current_principal
from vsync.errors import DomainError, ValidationError
from vsync.extensions import db
from vsync.models import Membership
from vsync.services.notifications import preferences


class PersonRequired(DomainError):
    status = 403
    code = "person_required"


def _values(choices: dict[str, tuple[str, ...]], *, loading: bool) -> dict[str, fields.Field]:
    return {
        key: fields.String(
            required=not loading,
            validate=validate.OneOf(allowed) if loading else None,
            metadata={"description": f"{preferences.LABELS[key]}: {', '.join(allowed)}.", "example": allowed[0]},
        )
        for key, allowed in choices.items()
    }


PreferencesSchema = ma.Schema.from_dict(
    {
        "role": fields.String(
            required=True, metadata={"description": "The caller's role in the org; defaults follow it."}
        ),
        "preferences": fields.Nested(
            ma.Schema.from_dict(_values(preferences.CHOICES, loading=False), name="Preferences"), required=True
        ),
        "defaults": fields.Nested(
            ma.Schema.from_dict(_values(preferences.CHOICES, loading=False), name="PreferenceDefaults"),
            required=True,
            metadata={"description": "The role's defaults, which an unchanged preference follows."},
        ),
    },
    name="MyPreferences",
)
PreferenceChanges = Body.from_dict(_values(preferences.CHOICES, loading=True), name="PreferenceChanges")
PlatformPreferencesSchema = ma.Schema.from_dict(
    {
        "preferences": fields.Nested(
            ma.Schema.from_dict(_values(preferences.PLATFORM_CHOICES, loading=False), name="PlatformPreferences"),
            required=True,
        )
    },
    name="MyPlatformPreferences",
)
PlatformPreferenceChanges = Body.from_dict(
    _values(preferences.PLATFORM_CHOICES, loading=True), name="PlatformPreferenceChanges"
)


def _person() -> UserPrincipal:
    principal = current_principal()
    if not isinstance(principal, UserPrincipal):
        raise PersonRequired(
            "Notification preferences belong to a person; an API key has none. Sign in to change yours.",
            field="principal",
        )
    return principal


def _membership() -> Membership:
    person = _person()
    membership = db.session.scalar(
        select(Membership).where(Membership.org_id == g.org_access.org_id, Membership.user_id == person.id)
    )
    if membership is None:
        raise PersonRequired(
            "You are not a member of this organisation, so you have no preferences in it; platform admins "
            "set their own at /api/v1/me/preferences.",
            field="principal",
            code="not_a_member",
        )
    return membership


def _changes(args: dict) -> dict:
    if not args:
        raise ValidationError("Name at least one preference to change.", field="body")
    return args


def _json(membership: Membership, current: dict[str, str]) -> dict:
    return {"role": membership.role, "preferences": current, "defaults": preferences.DEFAULTS[membership.role]}


@bp.get("/orgs/<org>/me/preferences")
@requires(scope="read")
@bp.response(200, PreferencesSchema)
def get_my_preferences(org: str):
    """Your notification preferences in the org

    Each key's value: your change, or your role's default. A signed-in person only.
    """
    membership = _membership()
    return _json(membership, preferences.preferences_of(membership))


@bp.patch("/orgs/<org>/me/preferences")
@requires(scope="write")
@bp.arguments(PreferenceChanges)
@bp.response(200, PreferencesSchema)
def change_my_preferences(args, org: str):
    """Change your notification preferences in the org

    Only the keys given; an unknown key or value is a 400 naming it, and nothing changes. Audited.
    """
    membership = _membership()
    current = preferences.set_preferences(membership, _changes(args))
    db.session.commit()
    return _json(membership, current)


@bp.get("/me/preferences")
@requires(scope="read", role=PLATFORM)
@bp.response(200, PlatformPreferencesSchema)
def get_my_platform_preferences():
    """Your own preferences as a platform admin

    About every org: `sync_failures` (on by default) emails you each org's failing syncs, once a streak.
    """
    return {"preferences": preferences.platform_preferences_of(_person().id)}


@bp.patch("/me/preferences")
@requires(scope="write", role=PLATFORM)
@bp.arguments(PlatformPreferenceChanges)
@bp.response(200, PlatformPreferencesSchema)
def change_my_platform_preferences(args):
    """Change your own preferences as a platform admin

    An unknown key or value is a 400 naming it, and nothing changes. Audited.
    """
    current = preferences.set_platform_preferences(_person().id, _changes(args))
    db.session.commit()
    return {"preferences": current}
