"""Members of an organisation, and the one-time links by which a person chooses a password.

An org admin adds people by email, in their org's tenant scope; a platform admin does the same from
the platform console, and the CLI too. Adding someone never takes a password, in any edge: a
password typed by an admin for an account that exists already would be ignored or would take the
account over, and refusing it only for existing accounts would tell an org admin that the email
belongs to someone else's org. So `add_member` answers alike for a new email, an account in no org
and a member of another org: the membership, and a set-password link to pass on. That link works
for an account that may choose its first password here (none yet, a plain active user and, in a
tenant scope, in no other org); for anyone else it is a token that was never stored, which opens on
"not valid" (they sign in with the password they have). Nor does the org's audit log tell them
apart: in a tenant scope, the account made for a new email is recorded only as the same
`member.added` (the platform's own adds record `user.created` too, in the platform's log).

A set-password link works only while the account is as it was when the link was made: it keeps a
hash of the account's state (email, password hash, global role, active, every membership with its
role), and a link opened after any of these changed, by whatever path, is refused and spent. So a
link kept by one org's admin is dead once the person joins another org, sets a password, changes
role, becomes platform staff or is deactivated.

Users outside the org are invisible in its tenant scope, yet adding by email must find a person who
already has an account, and a link is written on the user row, which a tenant may not change through
the ORM. So this module reads and writes the users table (and, for the state, the person's
memberships in every org) with Core statements on the session's connection (in its transaction,
past the tenant filter) that carry their own conditions: the email lookup returns an id and nothing
else, and the state is only ever compared as a hash. Platform staff are invisible there too, yet an
org member's ticket or reply must reach them by email: `platform_staff_contacts` reads their ids and
addresses the same way, and nothing else of them.

Every org keeps at least one org admin: the last one can be neither demoted nor removed
(`Conflict`, code `last_org_admin`).
"""

from __future__ import annotations

import enum
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import exists, func, select, update
from werkzeug.security import generate_password_hash

from vsync.crypto import secret_digest
from vsync.errors import Conflict, NotFound, ValidationError
from vsync.extensions import db
from vsync.models import Membership, Organization, User
from vsync.models.orgs import ORG_ADMIN, ORG_ROLES, USER
from vsync.models.sessions import PASSWORD_RESET, PASSWORD_SET
from vsync.models.types import utcnow
from vsync.services import audit, sessions
from vsync.services.notifications import mail
from vsync.services.orgs import create_user, normalize_email, validate_password
from vsync.tenancy import CrossTenantWrite, current_scope, reviewed_sql

PASSWORD_LINK_LIFETIME = timedelta(hours=72)


class _Unchanged(enum.Enum):
    UNCHANGED = "unchanged"


_UNCHANGED = _Unchanged.UNCHANGED
_users = User.__table__
_members = Membership.__table__


def _role(role: str) -> str:
    if role not in ORG_ROLES:
        raise ValidationError(f"role must be one of {', '.join(ORG_ROLES)}.", field="role")
    return role


def _extension(extension: str | None) -> str | None:
    extension = (extension or "").strip() or None
    if extension is not None and (not extension.isdigit() or len(extension) > 20):
        raise ValidationError("An extension is up to 20 digits.", field="extension")
    return extension


def _in_tenant_scope() -> bool:
    scope = current_scope()
    return scope is not None and not scope.is_bypass


def _core(statement):
    """Run a reviewed statement on the users table (see the module docstring)."""
    return db.session.connection().execute(reviewed_sql(statement))


def _user_id_by_email(email: str) -> int | None:
    """The id of the account with `email`, whoever's member it is: adding by email must find it."""
    return _core(select(_users.c.id).where(func.lower(_users.c.email) == email)).scalar()


def platform_staff_contacts(user_id: int | None = None) -> list[tuple[int, str]]:
    """(id, email) of every active platform admin, or of the one `user_id` names if it is one, from any scope."""
    query = select(_users.c.id, _users.c.email).where(_users.c.role == "platform_admin", _users.c.active.is_(True))
    if user_id is not None:
        query = query.where(_users.c.id == user_id)
    return [(row.id, row.email) for row in _core(query.order_by(_users.c.id))]


@dataclass(frozen=True)
class AddedMember:
    """A new membership, and the set-password link token to pass on with it (see the module docstring);
    `emailed` when email is configured and the link went to the person by email (when the change is
    committed)."""

    membership: Membership
    password_token: str
    emailed: bool = False


def add_member(org: Organization, email: str, role: str, *, extension: str | None = None) -> AddedMember:
    """Add `email` to `org` with `role` (and an agent's `extension`); a person without an account gets
    one, without a password. The answer is the same whoever the email belongs to."""
    email, role, extension = normalize_email(email), _role(role), _extension(extension)
    user_id = _user_id_by_email(email)
    if user_id is None:
        user_id = create_user(email, None, audited=not _in_tenant_scope()).id
    elif (
        db.session.scalar(select(Membership.id).where(Membership.org_id == org.id, Membership.user_id == user_id))
        is not None
    ):
        raise Conflict(f"{email} is already a member of {org.slug}.", field="email")
    membership = Membership(org_id=org.id, user_id=user_id, role=role, extension=extension)
    db.session.add(membership)
    db.session.flush()
    token = _first_password_link(user_id)
    emailed = mail.email_configured()
    if emailed:
        mail.send_invitation(org, membership.id, email, role, token)
    audit.record(
        "member.added",
        org_id=org.id,
        target=membership,
        summary=f"{email} as {role}"
        + (f", extension {extension}" if extension else "")
        + ("; a set-password link was emailed" if emailed else "; a set-password link was given"),
    )
    return AddedMember(membership, token, emailed)


def get_membership(org: Organization, membership_id: int) -> Membership:
    """The membership of `org` with this id; another org's is the same `NotFound` as none."""
    membership = db.session.get(Membership, membership_id)
    if membership is None or membership.org_id != org.id:
        raise NotFound(f"No member {membership_id} in {org.slug}.", field="membership")
    return membership


def _keep_an_org_admin(org: Organization, membership: Membership, doing: str) -> None:
    """Refuse to leave `org` without an org admin. The admins' rows are locked, so two admins demoting
    each other at once cannot both succeed."""
    if membership.role != ORG_ADMIN:
        return
    admins = db.session.scalars(
        select(Membership.id).where(Membership.org_id == org.id, Membership.role == ORG_ADMIN).with_for_update()
    ).all()
    if len(admins) <= 1:
        raise Conflict(
            f"{membership.user.email} is the last org admin of {org.slug}; make someone else "
            f"org admin before {doing} them.",
            field="role",
            code="last_org_admin",
        )


def change_member(
    org: Organization,
    membership: Membership,
    *,
    role: str | _Unchanged = _UNCHANGED,
    extension: str | None | _Unchanged = _UNCHANGED,
) -> Membership:
    """Change a member's role and/or extension (`extension=None` clears it); audited with what changed."""
    if membership.org_id != org.id:
        raise NotFound(f"No member {membership.id} in {org.slug}.", field="membership")
    changes = []
    if role is not _UNCHANGED and _role(role) != membership.role:
        if role != ORG_ADMIN:
            _keep_an_org_admin(org, membership, "demoting")
        changes.append(f"role {membership.role} → {role}")
        membership.role = role
    if extension is not _UNCHANGED and _extension(extension) != membership.extension:
        extension = _extension(extension)
        changes.append(f"extension {membership.extension or 'none'} → {extension or 'none'}")
        membership.extension = extension
    if changes:
        db.session.flush()
        audit.record(
            "member.changed", org_id=org.id, target=membership, summary=f"{membership.user.email}: {', '.join(changes)}"
        )
    return membership


def remove_member(org: Organization, membership: Membership) -> None:
    """End a person's membership of `org`; their account, and other orgs' memberships, stay. Their
    sessions end when it was their last organisation."""
    if membership.org_id != org.id:
        raise NotFound(f"No member {membership.id} in {org.slug}.", field="membership")
    _keep_an_org_admin(org, membership, "removing")
    email, role, user_id = membership.user.email, membership.role, membership.user_id
    audit.record("member.removed", org_id=org.id, target=membership, summary=f"{email} ({role})")
    db.session.delete(membership)
    db.session.flush()
    sessions.end_sessions_out_of_reach(user_id)


# --- set-password links ---------------------------------------------------------------------------


NOT_VALID = (
    "This set-password link is not valid any more. If you have chosen a password, sign in with it; "
    "otherwise ask your admin for a new link."
)


def account_state(user_id: int, *, lock: bool = False) -> str:
    """The hash of what a set-password link relies on: the account's email, password hash, global role,
    whether it is active, and every membership with its role. With `lock`, the user row and the
    memberships are locked until the transaction ends, so none changes between the check and the use
    (a membership added meanwhile waits on the user row, which its foreign key locks)."""
    account = select(_users.c.email, _users.c.password_hash, _users.c.role, _users.c.active).where(
        _users.c.id == user_id
    )
    held = select(_members.c.org_id, _members.c.role).where(_members.c.user_id == user_id).order_by(_members.c.org_id)
    if lock:
        account, held = account.with_for_update(), held.with_for_update()
    row = _core(account).one()
    state = [row.email, row.password_hash, row.role, bool(row.active), [[org, role] for org, role in _core(held)]]
    return secret_digest(json.dumps(state))


def _store_link(
    user_id: int,
    token: str,
    condition=None,
    *,
    lifetime: timedelta = PASSWORD_LINK_LIFETIME,
    now: datetime | None = None,
) -> datetime | None:
    """Make `token` `user_id`'s one set-password link (replacing any earlier one), bound to the account's
    state now, lasting `lifetime`; only if `condition` holds for the user row. Its expiry, or None when
    nothing was stored."""
    expires = (now or utcnow()) + lifetime
    statement = (
        update(_users)
        .where(_users.c.id == user_id)
        .values(
            password_token_hash=secret_digest(token),
            password_token_expires_at=expires,
            password_token_used_at=None,
            password_token_state=account_state(user_id),
        )
    )
    if condition is not None:
        statement = statement.where(condition)
    return expires if _core(statement).rowcount == 1 else None


def _first_password_link(user_id: int) -> str:
    """The link for a person just added to an org. It works for an account that may choose its first
    password here: none yet, a plain active user and, in a tenant scope, a member of no other org (so
    no org admin can take over another org's person). For anyone else the token is not stored."""
    condition = _users.c.password_hash.is_(None) & (_users.c.role == USER) & _users.c.active.is_(True)
    scope = current_scope()
    if scope is not None and not scope.is_bypass:
        condition &= ~exists().where(_members.c.user_id == _users.c.id, _members.c.org_id != scope.org_id)
    token = secrets.token_urlsafe(32)
    _store_link(user_id, token, condition)
    return token


def issue_password_link(user: User) -> str:
    """A new one-time token by which `user` chooses a password at `/set-password/<token>`, valid 72
    hours while the account stays as it is now; it replaces any earlier link. Shown once: only its hash
    is kept. A platform operation (a new user made by the platform; a reset), refused in a tenant
    scope, where people get their link by being added (`add_member`)."""
    if _in_tenant_scope():
        raise CrossTenantWrite("Set-password links for existing accounts are made by platform operations only.")
    token = secrets.token_urlsafe(32)
    expires = _store_link(user.id, token)
    audit.record(
        "user.password_link_issued",
        target=("User", user.id),
        summary=f"{user.email}, valid until {expires:%Y-%m-%d %H:%M} UTC",
    )
    return token


def reset_password(user: User) -> str:
    """A platform admin's reset: every session of `user` ends now, and a new set-password link is made
    (the old password works until the link is used)."""
    ended = sessions.end_all_sessions(user.id, PASSWORD_RESET)
    token = issue_password_link(user)
    audit.record("user.password_reset", target=("User", user.id), summary=f"{user.email}: {ended} session(s) ended")
    return token


def issue_reset_link(user_id: int, *, now: datetime | None = None) -> tuple[str, datetime]:
    """A forgot-password link for an active account (`vsync.services.profile.request_password_reset`):
    the same one-time set-password link, lasting `VSYNC_RESET_LINK_MINUTES`, replacing any earlier one.
    Returns the token and its expiry."""
    token = secrets.token_urlsafe(32)
    lifetime = timedelta(minutes=current_app.config["VSYNC_RESET_LINK_MINUTES"])
    expires = _store_link(user_id, token, _users.c.active.is_(True), lifetime=lifetime, now=now)
    return token, expires or (now or utcnow()) + lifetime


@dataclass(frozen=True)
class PasswordLink:
    user_id: int
    email: str
    expires_at: datetime


def _usable_link(token: str, *, lock: bool, now: datetime | None = None) -> PasswordLink:
    """The link `token` names if it can still be used; else `ValidationError` saying why. A link whose
    account changed since it was made is spent here (the caller commits that)."""
    digest = secret_digest(token or "")
    query = select(
        _users.c.id,
        _users.c.email,
        _users.c.password_token_expires_at,
        _users.c.password_token_used_at,
        _users.c.password_token_state,
    ).where(_users.c.password_token_hash == digest)
    row = _core(query.with_for_update() if lock else query).first()
    if row is None:
        raise ValidationError(NOT_VALID, field="token")
    if row.password_token_used_at is not None:
        raise ValidationError(
            "This set-password link has been used already. Sign in with the password you "
            'chose, or ask for a new link with "Forgot password?" on the sign-in page.',
            field="token",
        )
    if row.password_token_expires_at <= (now or utcnow()):
        raise ValidationError(
            'This set-password link has expired. Ask for a new one with "Forgot password?" on the sign-in '
            "page, or ask your admin.",
            field="token",
        )
    if row.password_token_state != account_state(row.id, lock=lock):
        _core(
            update(_users)
            .where(_users.c.id == row.id, _users.c.password_token_hash == digest)
            .values(password_token_hash=None, password_token_expires_at=None, password_token_state=None)
        )
        raise ValidationError(NOT_VALID, field="token")
    return PasswordLink(row.id, row.email, row.password_token_expires_at)


def password_link(token: str, *, now: datetime | None = None) -> PasswordLink:
    """The account a set-password token is for, if it can still be used; else `ValidationError` saying
    why (unknown, used, expired, or its account changed: then it is spent), for the public page."""
    return _usable_link(token, lock=False, now=now)


def set_password_with_link(token: str, password: str, *, now: datetime | None = None) -> PasswordLink:
    """Redeem a set-password token (an invitation's, an admin's reset or a forgot-password link): the
    account gets `password`, the token is spent, every session of the account ends, and the person is
    told by an account-security email. The account's row and memberships are locked from the check to
    the write, and the update is conditional on the token being unused, so two submissions cannot both
    succeed."""
    link = _usable_link(token, lock=True, now=now)
    validate_password(password)
    spent = _core(
        update(_users)
        .where(
            _users.c.id == link.user_id,
            _users.c.password_token_used_at.is_(None),
            _users.c.password_token_hash == secret_digest(token),
        )
        .values(
            password_hash=generate_password_hash(password, method=current_app.config["VSYNC_PASSWORD_HASH"]),
            password_token_used_at=now or utcnow(),
        )
    ).rowcount
    if spent != 1:
        raise ValidationError("This set-password link has been used already.", field="token")
    sessions.end_all_sessions(link.user_id, PASSWORD_SET)
    audit.record(
        "user.password_set",
        target=("User", link.user_id),
        actor=link.email,
        summary=f"{link.email} chose a password with a set-password link",
    )
    mail.send_account_notice(link.user_id, link.email, "password_set", key=secret_digest(token), when=now or utcnow())
    return link
