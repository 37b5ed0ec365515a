"""Organisations and users (members of an organisation: `vsync.services.members`)."""

from __future__ import annotations

import re
from functools import cache
from zoneinfo import available_timezones

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from vsync.errors import Conflict, NotFound, ValidationError
from vsync.extensions import db
from vsync.models import Organization, User
from vsync.models.orgs import GLOBAL_ROLES, PLATFORM_ADMIN
from vsync.models.sessions import DEACTIVATED
from vsync.services import audit, sessions

SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_PASSWORD_LENGTH = 1024


@cache
def _time_zones() -> frozenset[str]:
    return frozenset(available_timezones()) | {"UTC"}


@cache
def time_zones() -> tuple[str, ...]:
    """Every zone name an org may have, sorted (for pickers)."""
    return tuple(sorted(_time_zones()))


def validate_timezone(name: str, field: str = "timezone") -> str:
    """An IANA zone name, looked up in the zone list: arbitrary text never reaches the file system."""
    if not isinstance(name, str) or name not in _time_zones():
        shown = repr(name[:64] + "…" if isinstance(name, str) and len(name) > 64 else name)
        raise ValidationError(f"{shown} is not an IANA time zone (for example Europe/Berlin).", field=field)
    return name


def normalize_email(email: str) -> str:
    email = (email or "").strip().lower()
    if not EMAIL_RE.match(email) or len(email) > 254:
        raise ValidationError(f"{email!r} is not an email address.", field="email")
    return email


@cache
def _breached_passwords() -> frozenset[str]:
    """The 30,000 most common passwords of public breaches, as zxcvbn ships them (lowercase); read at
    the first password set in a process, as zxcvbn's lists take about 12 MB."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(FREQUENCY_LISTS["passwords"])


def validate_password(password: str, field: str = "password") -> str:
    """The one check of a new password, wherever one is set (set-password and reset links, the own
    page, the CLI): at least `VSYNC_PASSWORD_MIN_LENGTH` characters, and not one of the commonly
    breached passwords, whatever its case. The message names the rule that refused it."""
    least = current_app.config["VSYNC_PASSWORD_MIN_LENGTH"]
    password = password or ""
    if len(password) < least:
        raise ValidationError(f"Too short: a password needs at least {least} characters.", field=field)
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValidationError(f"Too long: a password has at most {MAX_PASSWORD_LENGTH} characters.", field=field)
    if password.lower() in _breached_passwords():
        raise ValidationError(
            "Commonly breached: this password is on a public list of leaked passwords; choose another.", field=field
        )
    return password


def get_org_by_slug(slug: str) -> Organization:
    org = db.session.scalar(select(Organization).where(Organization.slug == slug))
    if org is None:
        raise NotFound(f"No organisation with slug {slug!r}.", field="slug")
    return org


def create_org(name: str, slug: str, timezone: str = "UTC") -> Organization:
    name = _name(name)
    if not SLUG_RE.match(slug or ""):
        raise ValidationError("A slug is 1-63 lowercase letters, digits and inner hyphens.", field="slug")
    validate_timezone(timezone)
    if db.session.scalar(select(Organization.id).where(Organization.slug == slug)) is not None:
        raise Conflict(f"An organisation with slug {slug!r} exists already.", field="slug")
    org = Organization(name=name, slug=slug, timezone=timezone)
    _flush_unique_name(name, add=org)
    audit.record("org.created", org_id=org.id, target=org, summary=f"{name} ({slug}, {timezone})")
    return org


def _name(name) -> str:
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise ValidationError("An organisation needs a name of up to 200 characters.", field="name")
    return name


def _flush_unique_name(name: str, add: Organization | None = None) -> None:
    """Write a new (`add`) or changed org name. Names tell orgs apart in the console's switcher and
    lists, so no two are the same ignoring case: the database's unique index on `lower(name)` decides,
    as it sees every org (an org admin renaming their org sees only their own) and holds against a
    race. Refused, a new org leaves the session; a changed name stays for the caller's rollback."""
    try:
        with db.session.begin_nested():
            if add is not None:
                db.session.add(add)
            db.session.flush()
    except IntegrityError as exc:
        if "uq_organizations_name_lower" not in str(exc.orig):
            raise
        raise Conflict(f"An organisation named {name!r} exists already; choose another name.", field="name") from None


def _service_level_target(value) -> float:
    """A fraction in (0, 1]; a percentage (80) is a common slip, refused rather than guessed at."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValidationError(
            "The service-level target is a fraction, e.g. 0.8 for 80 %.", field="service_level_target"
        ) from None
    if not 0 < value <= 1:
        raise ValidationError(
            "The service-level target is a fraction above 0 and at most 1 (0.8 is 80 %).", field="service_level_target"
        )
    return value


# The settings in words, for messages that a person reads next to the field (and an API client with its name).
_SECONDS_SETTINGS = {
    "service_level_threshold_seconds": "The service-level threshold",
    "short_abandon_seconds": "The short-abandon limit",
}


def _whole_seconds(value, field: str, *, least: int) -> int:
    setting = _SECONDS_SETTINGS[field]
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).strip().lstrip("-").isdigit():
        raise ValidationError(f"{setting} is a whole number of seconds.", field=field)
    value = int(value)
    if not least <= value <= 3600:
        raise ValidationError(f"{setting} is between {least} and 3600 seconds.", field=field)
    return value


def update_org_settings(
    org: Organization,
    *,
    name=None,
    timezone=None,
    service_level_target=None,
    service_level_threshold_seconds=None,
    short_abandon_seconds=None,
    require_two_factor: bool | None = None,
) -> Organization:
    """Change an organisation's settings; `None` leaves a setting as it is. Each value is validated
    before any is applied, and one `org.updated` audit row names what changed (nothing changed: none).
    `require_two_factor` sends everyone acting in the org without two-factor sign-in to turn it on
    (`vsync.auth`); it ends no session."""
    wanted = {
        "name": None if name is None else _name(name),
        "timezone": None if timezone is None else validate_timezone(timezone),
        "service_level_target": None if service_level_target is None else _service_level_target(service_level_target),
        "service_level_threshold_seconds": None
        if service_level_threshold_seconds is None
        else _whole_seconds(service_level_threshold_seconds, "service_level_threshold_seconds", least=1),
        "short_abandon_seconds": None
        if short_abandon_seconds is None
        else _whole_seconds(short_abandon_seconds, "short_abandon_seconds", least=0),
        "require_two_factor": None if require_two_factor is None else bool(require_two_factor),
    }
    changes = []
    for setting, value in wanted.items():
        if value is not None and value != getattr(org, setting):
            changes.append(f"{setting}: {getattr(org, setting)} → {value}")
            setattr(org, setting, value)
    if changes:
        _flush_unique_name(org.name)
        audit.record("org.updated", org_id=org.id, target=org, summary="; ".join(changes))
    return org


def find_user(email: str) -> User | None:
    return db.session.scalar(select(User).where(func.lower(User.email) == email.strip().lower()))


def create_user(email: str, password: str | None, *, role: str = "user", audited: bool = True) -> User:
    """A new account. `audited=False` is for `vsync.services.members.add_member` in an org's tenant scope,
    whose `member.added` records it: a `user.created` row in the org's log would tell its admin that
    the email was new to vsync."""
    email = normalize_email(email)
    if role not in GLOBAL_ROLES:
        raise ValidationError(f"role must be one of {', '.join(GLOBAL_ROLES)}.", field="role")
    if find_user(email) is not None:
        raise Conflict(f"A user with email {email} exists already.", field="email")
    user = User(email=email, role=role)
    if password is not None:
        user.set_password(validate_password(password))
    db.session.add(user)
    db.session.flush()
    if audited:
        audit.record("user.created", target=user, summary=f"{email} ({role})")
    return user


def create_platform_admin(email: str, password: str) -> User:
    """A new platform admin, or an existing user promoted (their password is then left as it is)."""
    user = find_user(email)
    if user is None:
        return create_user(email, password, role=PLATFORM_ADMIN)
    if user.role != PLATFORM_ADMIN:
        user.role = PLATFORM_ADMIN
        audit.record("user.promoted", target=user, summary=f"{user.email} → platform_admin")
    return user


def set_user_active(user: User, active: bool) -> User:
    """Deactivate (no sign-in, and every session ends) or reactivate a user (sessions ended stay ended)."""
    if bool(active) != user.active:
        user.active = bool(active)
        db.session.flush()
        if not active:
            sessions.end_all_sessions(user.id, DEACTIVATED)
        audit.record("user.activated" if active else "user.deactivated", target=user, summary=user.email)
    return user


def set_global_role(user: User, role: str) -> User:
    """Make a user a platform admin or a plain user; a former platform admin with no organisation left to
    reach is signed out everywhere."""
    if role not in GLOBAL_ROLES:
        raise ValidationError(f"role must be one of {', '.join(GLOBAL_ROLES)}.", field="role")
    if role != user.role:
        audit.record("user.role_changed", target=user, summary=f"{user.email}: {user.role} → {role}")
        user.role = role
        db.session.flush()
        sessions.end_sessions_out_of_reach(user.id)
    return user
