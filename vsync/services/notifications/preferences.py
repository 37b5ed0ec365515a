"""Each person's notification preferences in each org they belong to, and the one-click unsubscribe.

A preference is a key with a few allowed values. A person who never changed one has their role's
default (`DEFAULTS`); only changed keys are stored (`NotificationPreference`), so a change of role
moves every untouched preference to the new role's default.

A digest or a support ticket message carries a signed one-click unsubscribe link (RFC 8058) naming
its outbox message and one preference key; using it turns that preference off for that person in
that org, nothing else, and spends the link (the message's `unsubscribed_at`): a tampered link and a
used one are refused with a clear message, and nothing changes.

Platform admins have no membership, hence no org preferences; they have their own about every org
(`PLATFORM_CHOICES`, stored as `PlatformNotificationPreference`): sync failures anywhere, on by default.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import select

from vsync.errors import NotFound, ValidationError
from vsync.extensions import db
from vsync.models import Membership, NotificationPreference, OutboundEmail, PlatformNotificationPreference
from vsync.models.orgs import AGENT, MANAGER, ORG_ADMIN
from vsync.models.types import utcnow
from vsync.services import audit, members

DIGEST, DIGEST_HOUR = "digest", "digest_hour"
ALERT_SERVICE_LEVEL, ALERT_SILENCE = "alert_service_level", "alert_silence"
ALERT_ABANDON_RATE, ALERT_MISSED_CALLS = "alert_abandon_rate", "alert_missed_calls"
ALERT_SYNC_FAILING, ALERT_WEBHOOK_SILENCE = "alert_sync_failing", "alert_webhook_silence"
SYNC_FAILURES, ACCOUNT_SECURITY = "sync_failures", "account_security"
SUPPORT = "support_tickets"
OFF, DAILY, WEEKLY, ON = "off", "daily", "weekly", "on"

CHOICES: dict[str, tuple[str, ...]] = {
    DIGEST: (OFF, DAILY, WEEKLY),
    DIGEST_HOUR: tuple(str(hour) for hour in range(24)),
    ALERT_SERVICE_LEVEL: (ON, OFF),
    ALERT_SILENCE: (ON, OFF),
    ALERT_ABANDON_RATE: (ON, OFF),
    ALERT_MISSED_CALLS: (ON, OFF),
    ALERT_SYNC_FAILING: (ON, OFF),
    ALERT_WEBHOOK_SILENCE: (ON, OFF),
    SYNC_FAILURES: (ON, OFF),
    ACCOUNT_SECURITY: (ON, OFF),
    SUPPORT: (ON, OFF),
}
LABELS = {
    DIGEST: "Digest email",
    DIGEST_HOUR: "Digest at (local hour)",
    ALERT_SERVICE_LEVEL: "Alert: service level below target",
    ALERT_SILENCE: "Alert: no calls during business hours",
    ALERT_ABANDON_RATE: "Alert: abandon rate above its limit",
    ALERT_MISSED_CALLS: "Alert: too many missed calls",
    ALERT_SYNC_FAILING: "Alert: sync failing",
    ALERT_WEBHOOK_SILENCE: "Alert: no webhook events while calls come in",
    SYNC_FAILURES: "Sync failures",
    ACCOUNT_SECURITY: "Account security",
    SUPPORT: "Support tickets",
}
_EVERYONE = {DIGEST_HOUR: "8", ACCOUNT_SECURITY: ON, SUPPORT: ON}
# Admins run the org: a daily digest and every alert. Managers watch the floor: the same but sync
# failures and the integration's alerts (a failing sync, silent webhooks), which admins fix. Agents get
# a weekly digest of their own calls and no alerts.
_FLOOR_ALERTS = (ALERT_SERVICE_LEVEL, ALERT_SILENCE, ALERT_ABANDON_RATE, ALERT_MISSED_CALLS)
_INTEGRATION_ALERTS = (ALERT_SYNC_FAILING, ALERT_WEBHOOK_SILENCE, SYNC_FAILURES)
DEFAULTS: dict[str, dict[str, str]] = {
    ORG_ADMIN: {**_EVERYONE, DIGEST: DAILY, **dict.fromkeys(_FLOOR_ALERTS + _INTEGRATION_ALERTS, ON)},
    MANAGER: {
        **_EVERYONE,
        DIGEST: DAILY,
        **dict.fromkeys(_FLOOR_ALERTS, ON),
        **dict.fromkeys(_INTEGRATION_ALERTS, OFF),
    },
    AGENT: {**_EVERYONE, DIGEST: WEEKLY, **dict.fromkeys(_FLOOR_ALERTS + _INTEGRATION_ALERTS, OFF)},
}
# Platform admins hear of every org's sync failures (they fix integrations for the orgs) unless they turn it off.
PLATFORM_CHOICES: dict[str, tuple[str, ...]] = {SYNC_FAILURES: (ON, OFF)}
PLATFORM_DEFAULTS: dict[str, str] = {SYNC_FAILURES: ON}
_UNSUBSCRIBE_SALT = "vsync.unsubscribe"


def preferences_of(membership: Membership) -> dict[str, str]:
    """Every preference of the member: their changes over their role's defaults."""
    stored = dict(
        db.session.execute(
            select(NotificationPreference.key, NotificationPreference.value).where(
                NotificationPreference.org_id == membership.org_id, NotificationPreference.user_id == membership.user_id
            )
        )
        .tuples()
        .all()
    )
    return {key: stored.get(key, default) for key, default in DEFAULTS[membership.role].items()}


def _valid(key: str, value: str, choices: dict[str, tuple[str, ...]] = CHOICES) -> str:
    if key not in choices:
        raise ValidationError(f"Unknown preference {key!r}.", field=key)
    value = str(value).strip().lower()
    if value not in choices[key]:
        raise ValidationError(f"{LABELS[key]} is one of {', '.join(choices[key])}.", field=key)
    return value


def set_preferences(membership: Membership, changes: dict[str, str], *, actor: str | None = None) -> dict[str, str]:
    """Change some of the member's preferences (all validated before any is written); audited with
    what changed (as `actor`, when not the request's principal). Returns every preference after it."""
    changes = {key: _valid(key, value) for key, value in changes.items()}
    current = preferences_of(membership)
    changed = {key: value for key, value in changes.items() if current[key] != value}
    for key, value in changed.items():
        row = db.session.scalar(
            select(NotificationPreference).where(
                NotificationPreference.org_id == membership.org_id,
                NotificationPreference.user_id == membership.user_id,
                NotificationPreference.key == key,
            )
        )
        if row is None:
            db.session.add(
                NotificationPreference(org_id=membership.org_id, user_id=membership.user_id, key=key, value=value)
            )
        else:
            row.value = value
    if changed:
        db.session.flush()
        audit.record(
            "notifications.preferences_changed",
            org_id=membership.org_id,
            target=membership,
            actor=actor,
            summary=", ".join(f"{key} {current[key]} → {value}" for key, value in changed.items()),
        )
    return {**current, **changed}


# --- platform admins' own ------------------------------------------------------------------------


def platform_preferences_of(user_id: int) -> dict[str, str]:
    """Every platform preference of a platform admin: their changes over `PLATFORM_DEFAULTS`."""
    stored = dict(
        db.session.execute(
            select(PlatformNotificationPreference.key, PlatformNotificationPreference.value).where(
                PlatformNotificationPreference.user_id == user_id
            )
        )
        .tuples()
        .all()
    )
    return {key: stored.get(key, default) for key, default in PLATFORM_DEFAULTS.items()}


def set_platform_preferences(user_id: int, changes: dict[str, str]) -> dict[str, str]:
    """Change some of a platform admin's own preferences (all validated first); audited. Returns them all."""
    changes = {key: _valid(key, value, PLATFORM_CHOICES) for key, value in changes.items()}
    current = platform_preferences_of(user_id)
    changed = {key: value for key, value in changes.items() if current[key] != value}
    for key, value in changed.items():
        row = db.session.scalar(
            select(PlatformNotificationPreference).where(
                PlatformNotificationPreference.user_id == user_id, PlatformNotificationPreference.key == key
            )
        )
        if row is None:
            db.session.add(PlatformNotificationPreference(user_id=user_id, key=key, value=value))
        else:
            row.value = value
    if changed:
        db.session.flush()
        audit.record(
            "notifications.platform_preferences_changed",
            target=("User", user_id),
            summary=", ".join(f"{key} {current[key]} → {value}" for key, value in changed.items()),
        )
    return {**current, **changed}


def platform_recipients(key: str) -> list[tuple[int, str]]:
    """(id, email) of the active platform admins whose platform preference `key` is on, from any scope."""
    return [
        (user_id, email)
        for user_id, email in members.platform_staff_contacts()
        if platform_preferences_of(user_id)[key] == ON
    ]


# --- one-click unsubscribe ------------------------------------------------------------------------


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=_UNSUBSCRIBE_SALT)


def unsubscribe_token(org_id: int, email_id: int, key: str) -> str:
    """The signed token of a message's unsubscribe link, which turns `key` (an on/off or digest
    preference) off."""
    if OFF not in CHOICES.get(key, ()):
        raise ValidationError(f"{key!r} cannot be turned off by a link.", field="key")
    return _serializer().dumps([org_id, email_id, key])


@dataclass(frozen=True)
class Unsubscribe:
    org_id: int
    email_id: int
    key: str


def read_unsubscribe_token(token: str) -> Unsubscribe:
    """What a token says, if its signature holds; else `ValidationError`. Reads nothing: the edge enters
    the org's scope the token names, then calls `unsubscribe`."""
    try:
        org_id, email_id, key = _serializer().loads(token)
    except (BadSignature, ValueError, TypeError):
        raise ValidationError("This unsubscribe link is not valid.", field="token") from None
    if OFF not in CHOICES.get(key, ()):
        raise ValidationError("This unsubscribe link is not valid.", field="token")
    return Unsubscribe(int(org_id), int(email_id), key)


def unsubscribe(link: Unsubscribe) -> str:
    """Turn off the one preference the link names, for the person its message went to; spend the link.
    In the link's org's tenant scope. Returns the preference's label."""
    row = db.session.get(OutboundEmail, link.email_id)
    if row is None or row.user_id is None:
        raise NotFound("This unsubscribe link is not valid.", field="token")
    if row.unsubscribed_at is not None:
        raise ValidationError(
            "This unsubscribe link has been used already; your preference is unchanged since.", field="token"
        )
    membership = db.session.scalar(
        select(Membership).where(Membership.org_id == row.org_id, Membership.user_id == row.user_id)
    )
    if membership is None:
        raise NotFound("You are no longer a member of this organisation.", field="token")
    set_preferences(membership, {link.key: OFF}, actor=f"unsubscribe link of {row.to_address}")
    row.unsubscribed_at = utcnow()
    db.session.flush()
    return LABELS[link.key]
