"""A person's own account: their name, email and password, a forgotten password, the devices they
sign in from, and their notification preferences in each org they belong to (`/account`).

What a person changes here is theirs alone, and they act in no organisation while doing it (their
page has no org in its URL, and a forgotten password is asked for before anyone signs in), so this
module reads and writes the users, memberships and preferences tables with reviewed Core statements
conditioned on the person's own user id, in the caller's transaction; the caller commits.

- **Forgot password.** `request_password_reset` answers alike whether or not the address has an
  account: the same audit row (which throttling counts, per requested address and per client
  address), the same token drawn and hashed; only an existing, active account gets the link, by email.
  The link is the set-password link (`vsync.services.members`): one-time, bound to the account's
  state, lasting `VSYNC_RESET_LINK_MINUTES`; using it sets the password and ends every session.
- **Email change.** The new address gets a signed link (`VSYNC_EMAIL_CHANGE_HOURS`) naming the
  account, the address and the account's state when it was asked for; the email changes only when it
  is followed, once (the change alters the state, so the link is spent), and the old address is told.
  An address that belongs to another account is refused, when asked and again when confirmed.
- **Password change** needs the current password; a wrong one changes nothing and is audited, which
  throttles guessing. A change ends every other session of the person.
- **Account-security emails** (`vsync.services.notifications.mail.send_account_notice`) tell of a
  password set or changed and an email changed, always: a person must learn of a change they did not
  make. A sign-in from a new device is told unless the person turned `account_security` off in every
  org they belong to (a platform admin of no org always hears of it).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import exists, func, select, update
from werkzeug.security import check_password_hash, generate_password_hash

from vsync.crypto import secret_digest
from vsync.errors import Conflict, ValidationError
from vsync.extensions import db
from vsync.models import Membership, NotificationPreference, Organization, User
from vsync.models.sessions import PASSWORD_SET
from vsync.models.types import utcnow
from vsync.services import audit, members, sessions
from vsync.services.notifications import mail, preferences
from vsync.services.orgs import normalize_email, validate_password
from vsync.tenancy import reviewed_sql

RESET_REQUESTED = "password.reset_requested"
PASSWORD_CHANGE_FAILED = "account.password_change_failed"
EMAIL_CHANGE_REQUESTED = "account.email_change_requested"
_EMAIL_CHANGE_SALT = "vsync.email-change"
_users = User.__table__
_members = Membership.__table__
_orgs = Organization.__table__
_preferences = NotificationPreference.__table__


def _core(statement):
    """Run a reviewed statement on the person's own rows (see the module docstring)."""
    return db.session.connection().execute(reviewed_sql(statement))


@dataclass(frozen=True)
class Person:
    id: int
    email: str
    name: str | None


def person(user_id: int) -> Person:
    row = _core(select(_users.c.id, _users.c.email, _users.c.name).where(_users.c.id == user_id)).one()
    return Person(row.id, row.email, row.name)


def _user_id_by_email(email: str) -> int | None:
    return _core(select(_users.c.id).where(func.lower(_users.c.email) == email, _users.c.active.is_(True))).scalar()


# --- forgot password --------------------------------------------------------------------------------


def request_password_reset(email: str, *, now: datetime | None = None) -> None:
    """Email a one-time reset link to `email` if it is an active account's; the same work and the
    same audit row otherwise (see the module docstring). A malformed address is a `ValidationError`."""
    now = now or utcnow()
    email = normalize_email(email)
    user_id = _user_id_by_email(email)
    audit.record(RESET_REQUESTED, actor=email, summary="password reset asked for")
    if user_id is None:
        secret_digest(secrets.token_urlsafe(32))  # the token a known address gets, drawn and hashed
        return
    token, expires = members.issue_reset_link(user_id, now=now)
    mail.queue_account_email(
        user_id,
        key=f"account:password-reset:{secret_digest(token)}",
        to=email,
        template="password_reset",
        context={"reset_url": f"{mail.public_url()}/set-password/{token}", "expires": f"{expires:%Y-%m-%d %H:%M} UTC"},
    )


# --- name, email, password --------------------------------------------------------------------------


def change_name(user_id: int, name: str) -> str | None:
    """Set what the person calls themselves (empty: none); up to 200 characters."""
    name = " ".join((name or "").split())
    if len(name) > 200:
        raise ValidationError("A name has at most 200 characters.", field="name")
    _core(update(_users).where(_users.c.id == user_id).values(name=name or None))
    audit.record("account.name_changed", target=("User", user_id), summary=name or "(no name)")
    return name or None


def _email_taken(email: str, user_id: int) -> bool:
    taken = select(_users.c.id).where(func.lower(_users.c.email) == email, _users.c.id != user_id)
    return _core(taken).first() is not None


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=_EMAIL_CHANGE_SALT)


def request_email_change(user_id: int, new_email: str, *, now: datetime | None = None) -> str:
    """Email a confirmation link to `new_email`; nothing changes until it is followed. Refused: a
    malformed address, the current one, one that belongs to another account. Returns the address."""
    now = now or utcnow()
    new_email = normalize_email(new_email)
    me = person(user_id)
    if new_email == me.email.lower():
        raise ValidationError(f"{new_email} is your email address already.", field="email")
    audit.record(EMAIL_CHANGE_REQUESTED, target=("User", user_id), summary=f"{me.email} → {new_email}")
    if _email_taken(new_email, user_id):
        raise Conflict(f"{new_email} belongs to another vsync account; choose another address.", field="email")
    expires = now + timedelta(hours=current_app.config["VSYNC_EMAIL_CHANGE_HOURS"])
    token = _serializer().dumps([user_id, new_email, members.account_state(user_id), int(expires.timestamp())])
    mail.queue_account_email(
        user_id,
        key=f"account:email-change:{secret_digest(token)}",
        to=new_email,
        template="email_change",
        context={
            "old_email": me.email,
            "new_email": new_email,
            "confirm_url": f"{mail.public_url()}/account/email/{token}",
            "expires": f"{expires:%Y-%m-%d %H:%M} UTC",
        },
    )
    return new_email


@dataclass(frozen=True)
class EmailChange:
    user_id: int
    new_email: str


def read_email_change(token: str, *, now: datetime | None = None) -> EmailChange:
    """What an email-change link asks for, if it can still be used; else `ValidationError` saying why."""
    try:
        user_id, new_email, state, expires = _serializer().loads(token)
        user_id, expires = int(user_id), int(expires)
    except (BadSignature, ValueError, TypeError):
        raise ValidationError("This email-change link is not valid.", field="token") from None
    if (now or utcnow()).timestamp() >= expires:
        raise ValidationError(
            "This email-change link has expired. Ask for the change again on your own page.", field="token"
        )
    if _core(select(_users.c.id).where(_users.c.id == user_id)).first() is None or state != members.account_state(
        user_id
    ):
        raise ValidationError(
            "This email-change link has been used already, or your account has changed since it was sent. "
            "Ask for the change again on your own page.",
            field="token",
        )
    return EmailChange(user_id, str(new_email))


def confirm_email_change(token: str, *, now: datetime | None = None) -> EmailChange:
    """Follow an email-change link: the account's email becomes the new address, and the old address
    is told. Refused (nothing changes) when the link cannot be used or the address was taken since."""
    now = now or utcnow()
    change = read_email_change(token, now=now)
    members.account_state(change.user_id, lock=True)  # no second use between the check and the write
    change = read_email_change(token, now=now)
    if _email_taken(change.new_email, change.user_id):
        raise Conflict(f"{change.new_email} belongs to another vsync account now; nothing was changed.", field="email")
    old = person(change.user_id).email
    _core(update(_users).where(_users.c.id == change.user_id).values(email=change.new_email))
    audit.record(
        "account.email_changed", target=("User", change.user_id), actor=old, summary=f"{old} → {change.new_email}"
    )
    mail.send_account_notice(
        change.user_id, old, "email_changed", key=secret_digest(token), when=now, new_email=change.new_email
    )
    return change


def change_password(
    user_id: int, session_id: int | None, current: str, new: str, *, now: datetime | None = None
) -> int:
    """Change the person's password, given the current one; every other session ends, and they are
    told by email. A wrong current password changes nothing and is audited (throttling counts it).
    Returns how many other sessions ended."""
    now = now or utcnow()
    row = _core(select(_users.c.email, _users.c.password_hash).where(_users.c.id == user_id)).one()
    if not (row.password_hash and check_password_hash(row.password_hash, current or "")):
        audit.record(PASSWORD_CHANGE_FAILED, target=("User", user_id), summary="current password wrong")
        raise ValidationError("The current password is not right; nothing was changed.", field="current_password")
    validate_password(new, field="new_password")
    hashed = generate_password_hash(new, method=current_app.config["VSYNC_PASSWORD_HASH"])
    _core(update(_users).where(_users.c.id == user_id).values(password_hash=hashed))
    ended = sessions.end_other_sessions(user_id, session_id, PASSWORD_SET, now=now)
    audit.record("account.password_changed", target=("User", user_id), summary=f"{ended} other session(s) ended")
    mail.send_account_notice(user_id, row.email, "password_changed", key=f"{user_id}:{hashed[-24:]}", when=now)
    return ended


# --- new devices ------------------------------------------------------------------------------------


def wants_account_security(user_id: int) -> bool:
    """Whether the person hears of sign-ins from new devices: unless `account_security` is off in every
    org they belong to."""
    turned_off = exists().where(
        _preferences.c.org_id == _members.c.org_id,
        _preferences.c.user_id == user_id,
        _preferences.c.key == preferences.ACCOUNT_SECURITY,
        _preferences.c.value == preferences.OFF,
    )
    orgs, off = _core(
        select(func.count(), func.count().filter(turned_off)).select_from(_members).where(_members.c.user_id == user_id)
    ).one()
    return orgs == 0 or off < orgs


def signed_in_from(
    user_id: int, email: str, session_token: str, device_hash: str, *, device: str, ip: str | None, now: datetime
) -> bool:
    """After a sign-in: note the session's device, and tell the person of a new one (once per device,
    by preference). Whether a message was decided."""
    if sessions.note_device(user_id, session_token, device_hash) != "new" or not wants_account_security(user_id):
        return False
    key = f"{user_id}:{device_hash}"
    return (
        mail.send_account_notice(
            user_id, email, "new_device", key=key, when=now, device=device, ip=ip or "an unknown address"
        )
        is not None
    )


# --- notification preferences -----------------------------------------------------------------------


@dataclass(frozen=True)
class OrgPreferences:
    org_id: int
    slug: str
    name: str
    role: str
    values: dict[str, str]


def own_preferences(user_id: int) -> list[OrgPreferences]:
    """The person's notification preferences in each org they belong to (their changes over their
    role's defaults), by org name. Changed in each org's own scope (`preferences.set_preferences`)."""
    held = _core(
        select(_orgs.c.id, _orgs.c.slug, _orgs.c.name, _members.c.role)
        .join_from(_members, _orgs, _orgs.c.id == _members.c.org_id)
        .where(_members.c.user_id == user_id)
        .order_by(_orgs.c.name, _orgs.c.id)
    ).all()
    stored: dict[int, dict[str, str]] = {}
    for org_id, key, value in _core(
        select(_preferences.c.org_id, _preferences.c.key, _preferences.c.value).where(_preferences.c.user_id == user_id)
    ):
        stored.setdefault(org_id, {})[key] = value
    return [
        OrgPreferences(
            row.id,
            row.slug,
            row.name,
            row.role,
            {key: stored.get(row.id, {}).get(key, default) for key, default in preferences.DEFAULTS[row.role].items()},
        )
        for row in held
    ]
