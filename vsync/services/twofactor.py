"""Two-factor sign-in: a TOTP code from an authenticator app (RFC 6238, `pyotp`) after the password,
or one of ten one-time recovery codes.

Enrolment. `begin_enrolment` makes the secret on the server and stores it encrypted (`vsync.crypto`);
the page shows it as a QR code (drawn by `segno` as inline SVG: no image service ever sees it) and as
text. Two-factor is on only once a code from the app is confirmed (`confirm_enrolment`), which also
makes the recovery codes, shown once. Regenerating them replaces the old ones; turning two-factor off
takes the current password and a code. A platform admin's `reset` (the person lost the device) turns
it off, ends every session of the person and emails them.

Codes. A code is accepted for the current 30-second time-step and one step either side (a phone's
clock a little off), and each is used once: the last accepted step is stored per person and a code
for that step or an earlier one is refused, by one conditional UPDATE, so two requests racing with
the same code cannot both win. A recovery code works once: its hash leaves the list when it is used.

Recovery codes are stored with the password hashing (Werkzeug, `VSYNC_PASSWORD_HASH`: scrypt, salted
per code), not a bare SHA-256: ten random characters from a 31-letter alphabet are 49 bits, more than
a password but far fewer than an API key's 256, so the slow salted hash keeps a copy of the table from
giving them up. Checking one costs up to ten hashes, only for input shaped like a recovery code, and
every failed try counts toward sign-in throttling.

Whether a person must have it on (`required_for`): a platform admin when `VSYNC_TWO_FACTOR_PLATFORM_ADMINS`
is on (production's default), and anyone acting in an org whose `require_two_factor` is set.

Users are read before any tenant scope exists (sign-in) and from any scope (a member's page), and the
secret columns are never read in a tenant scope by the ORM, so this module uses reviewed Core
statements on the session's connection, in the caller's transaction; the caller commits.
"""

from __future__ import annotations

import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

import pyotp
import segno
from flask import current_app
from markupsafe import Markup
from pyotp.totp import TOTP
from sqlalchemy import exists, select, update
from werkzeug.security import check_password_hash, generate_password_hash

from vsync import crypto
from vsync.errors import Conflict, ValidationError
from vsync.extensions import db
from vsync.models import Membership, Organization, User
from vsync.models.orgs import PLATFORM_ADMIN
from vsync.models.sessions import TWO_FACTOR_RESET
from vsync.models.types import utcnow
from vsync.services import audit, sessions
from vsync.services.notifications import mail
from vsync.tenancy import reviewed_sql

ISSUER = "vsync"
STEP_SECONDS = 30
DRIFT_STEPS = 1
RECOVERY_CODES = 10
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: read off paper and typed back
_TOTP_SHAPE = re.compile(r"\d{6}")
_RECOVERY_SHAPE = re.compile(rf"[{_RECOVERY_ALPHABET}]{{10}}")
MALFORMED = "A code is the 6 digits the app shows, or a recovery code of 10 letters and digits (xxxxx-xxxxx)."
WRONG = "That code is not right. Enter the code the app shows now (check the phone's clock if it keeps failing)."
REPLAYED = "That code has been used already. Wait for the app to show the next one."
WRONG_RECOVERY = "That recovery code is not right, or it has been used already."

_users = User.__table__
_orgs = Organization.__table__
_members = Membership.__table__


def _run(statement):
    """Run a reviewed statement on `users` (see the module docstring)."""
    return db.session.connection().execute(reviewed_sql(statement))


@dataclass(frozen=True)
class TwoFactorState:
    """A person's two-factor sign-in as their page shows it."""

    enabled: bool
    enabled_at: datetime | None
    pending: bool  # enrolment begun, its code not confirmed yet
    recovery_codes_left: int


def state_of(user_id: int) -> TwoFactorState:
    row = _run(
        select(_users.c.two_factor_enabled_at, _users.c.two_factor_secret, _users.c.two_factor_recovery_hashes).where(
            _users.c.id == user_id
        )
    ).one()
    return TwoFactorState(
        enabled=row.two_factor_enabled_at is not None,
        enabled_at=row.two_factor_enabled_at,
        pending=row.two_factor_enabled_at is None and row.two_factor_secret is not None,
        recovery_codes_left=len(row.two_factor_recovery_hashes or ()),
    )


def platform_admins_must() -> bool:
    return bool(current_app.config["VSYNC_TWO_FACTOR_PLATFORM_ADMINS"])


def required_for(user_id: int, role: str) -> bool:
    """Whether the person must have two-factor on somewhere they act: as a platform admin under
    `VSYNC_TWO_FACTOR_PLATFORM_ADMINS`, or in an org of theirs that requires it."""
    if role == PLATFORM_ADMIN and platform_admins_must():
        return True
    return bool(
        _run(
            select(
                exists().where(
                    _members.c.user_id == user_id,
                    _members.c.org_id == _orgs.c.id,
                    _orgs.c.require_two_factor.is_(True),
                )
            )
        ).scalar()
    )


# --- codes ----------------------------------------------------------------------------------------


def parse_code(code: str | None) -> tuple[str, str]:
    """("totp", six digits) or ("recovery", ten characters) from what a person typed (spaces and a
    dash ignored, any case); `ValidationError` on the field `code` for anything else."""
    typed = re.sub(r"[\s-]", "", code or "").lower()
    if not typed:
        raise ValidationError("Enter the code from the authenticator app, or a recovery code.", field="code")
    if _TOTP_SHAPE.fullmatch(typed):
        return "totp", typed
    if _RECOVERY_SHAPE.fullmatch(typed):
        return "recovery", typed
    raise ValidationError(MALFORMED, field="code")


def _step(now: datetime) -> int:
    return int(now.timestamp()) // STEP_SECONDS


def _matching_step(secret: str, digits: str, now: datetime) -> int | None:
    """The time-step within the drift whose code `digits` is, else None (every candidate compared)."""
    otp = TOTP(secret, interval=STEP_SECONDS)
    found = None
    current = _step(now)
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if hmac.compare_digest(otp.generate_otp(step), digits):
            found = step
    return found


def _secret_of(user_id: int, *, enabled: bool, lock: bool = False) -> str | None:
    """The person's decrypted secret when two-factor is on (`enabled`) or pending (not `enabled`)."""
    query = select(_users.c.two_factor_secret).where(
        _users.c.id == user_id,
        _users.c.two_factor_secret.is_not(None),
        _users.c.two_factor_enabled_at.is_not(None) if enabled else _users.c.two_factor_enabled_at.is_(None),
    )
    stored = _run(query.with_for_update() if lock else query).scalar()
    return None if stored is None else crypto.decrypt(stored)


def _spend_step(user_id: int, step: int) -> bool:
    """Record `step` as the last one used, unless it or a later one was: whether this use won."""
    last = _users.c.two_factor_last_step
    spent = _run(
        update(_users).where(_users.c.id == user_id, (last.is_(None)) | (last < step)).values(two_factor_last_step=step)
    )
    return spent.rowcount == 1


def verify(user_id: int, code: str | None, *, now: datetime | None = None) -> str:
    """Check a code of a person with two-factor on, and spend it: "code" or "recovery code", by what
    was used. A malformed, wrong or used code is a `ValidationError` saying which, and spends nothing."""
    kind, typed = parse_code(code)
    if kind == "recovery":
        return _spend_recovery_code(user_id, typed)
    secret = _secret_of(user_id, enabled=True)
    if secret is None:
        raise Conflict("Two-factor sign-in is not on for this account.", field="code")
    step = _matching_step(secret, typed, now or utcnow())
    if step is None:
        raise ValidationError(WRONG, field="code")
    if not _spend_step(user_id, step):
        raise ValidationError(REPLAYED, field="code")
    return "code"


def _spend_recovery_code(user_id: int, typed: str) -> str:
    hashes = _run(
        select(_users.c.two_factor_recovery_hashes)
        .where(_users.c.id == user_id, _users.c.two_factor_enabled_at.is_not(None))
        .with_for_update()
    ).scalar()
    match = next((h for h in hashes or () if check_password_hash(h, typed)), None)
    if match is None:
        raise ValidationError(WRONG_RECOVERY, field="code")
    left = [h for h in hashes or () if h != match]
    _run(update(_users).where(_users.c.id == user_id).values(two_factor_recovery_hashes=left))
    audit.record("two_factor.recovery_code_used", target=("User", user_id), summary=f"{len(left)} left")
    return "recovery code"


def _new_recovery_codes() -> tuple[list[str], list[str]]:
    """Ten fresh codes as shown (xxxxx-xxxxx), and their hashes."""
    method = current_app.config["VSYNC_PASSWORD_HASH"]
    codes = ["".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(10)) for _ in range(RECOVERY_CODES)]
    return [f"{c[:5]}-{c[5:]}" for c in codes], [generate_password_hash(c, method=method) for c in codes]


# --- enrolment ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Enrolment:
    """What the enrolment page shows: the secret as text, as an `otpauth://` link and as a QR code."""

    secret: str
    uri: str
    qr_svg: Markup


def begin_enrolment(user_id: int, email: str) -> Enrolment:
    """The secret to enrol, made now or the one made before and not yet confirmed (so reloading the
    page shows the same QR code). Two-factor already on is a `Conflict`: turn it off first."""
    if _secret_of(user_id, enabled=True) is not None:
        raise Conflict("Two-factor sign-in is on already. Turn it off first to enrol another device.")
    secret = _secret_of(user_id, enabled=False)
    if secret is None:
        secret = pyotp.random_base32()
        _run(update(_users).where(_users.c.id == user_id).values(two_factor_secret=crypto.encrypt(secret)))
        audit.record("two_factor.enrolment_started", target=("User", user_id), summary=email)
    uri = TOTP(secret, interval=STEP_SECONDS).provisioning_uri(name=email, issuer_name=ISSUER)
    svg = segno.make(uri, error="m").svg_inline(scale=4, title="Scan with the authenticator app")
    return Enrolment(secret=secret, uri=uri, qr_svg=Markup(svg))  # segno's paths and our fixed title only


def confirm_enrolment(user_id: int, code: str | None, *, now: datetime | None = None) -> list[str]:
    """Turn two-factor on with a code from the app for the pending secret; the recovery codes, to show
    once. A wrong or malformed code changes nothing."""
    kind, typed = parse_code(code)
    if kind != "totp":
        raise ValidationError("Enter the 6-digit code the app shows for vsync.", field="code")
    now = now or utcnow()
    secret = _secret_of(user_id, enabled=False, lock=True)
    if secret is None:
        raise Conflict("There is no enrolment to confirm. Start again from the two-factor page.", field="code")
    step = _matching_step(secret, typed, now)
    if step is None:
        raise ValidationError(WRONG, field="code")
    shown, hashes = _new_recovery_codes()
    _run(
        update(_users)
        .where(_users.c.id == user_id)
        .values(two_factor_enabled_at=now, two_factor_last_step=step, two_factor_recovery_hashes=hashes)
    )
    audit.record("two_factor.enabled", target=("User", user_id), summary=f"{RECOVERY_CODES} recovery codes")
    return shown


def regenerate_recovery_codes(user_id: int, code: str | None, *, now: datetime | None = None) -> list[str]:
    """New recovery codes, replacing every old one, for a person who proves the device with a code."""
    verify(user_id, code, now=now)
    shown, hashes = _new_recovery_codes()
    _run(update(_users).where(_users.c.id == user_id).values(two_factor_recovery_hashes=hashes))
    audit.record("two_factor.recovery_codes_regenerated", target=("User", user_id), summary="the old ones are void")
    return shown


def _turn_off(user_id: int) -> None:
    _run(
        update(_users)
        .where(_users.c.id == user_id)
        .values(
            two_factor_secret=None,
            two_factor_enabled_at=None,
            two_factor_last_step=None,
            two_factor_recovery_hashes=None,
        )
    )


def disable(user_id: int, password: str | None, code: str | None, *, now: datetime | None = None) -> None:
    """The person turns two-factor off: the current password and a code (or a recovery code) are both
    needed, so neither a stolen session nor a stolen phone alone can. Their sessions go on."""
    stored = _run(select(_users.c.password_hash).where(_users.c.id == user_id)).scalar()
    if not (stored and password and check_password_hash(stored, password)):
        raise ValidationError("The current password is not right.", field="password")
    verify(user_id, code, now=now)
    _turn_off(user_id)
    audit.record("two_factor.disabled", target=("User", user_id), summary="by the person")


def reset(user: User, *, now: datetime | None = None) -> tuple[int, int | None]:
    """A platform admin turns a person's two-factor off (they lost the device): every session of the
    person ends, and they are told by email. Returns the sessions ended and the message, if one was
    decided (its outbox id; see `notify_reset`). Audited."""
    now = now or utcnow()
    _turn_off(user.id)
    ended = sessions.end_all_sessions(user.id, TWO_FACTOR_RESET, now=now)
    message = notify_reset(user, now=now)
    audit.record(
        "two_factor.reset",
        target=("User", user.id),
        summary=f"{user.email}: {ended} session(s) ended; emailed",
    )
    return ended, message


def notify_reset(user: User, *, now: datetime) -> int | None:
    """The account-security email about a reset (`mail.send_account_notice`), to the person whatever
    their orgs: a reset of how they sign in is always told."""
    return mail.send_account_notice(
        user.id, user.email, "two_factor_reset", key=f"{user.id}:{now.isoformat()}", when=now
    )
