"""Members of an organisation, and the one-time links by which a new member chooses a password.

An org admin adds people by email, in their org's tenant scope; a platform admin does the same from
the platform console or the CLI. A new person may be added without a password: the admin is then
shown a set-password link once (`issue_password_link`, valid 72 hours, usable once) to pass on.

Users outside the org are invisible in its tenant scope, yet adding by email must find a person who
already has an account (a member of another org), and a link is written on the user row, which a
tenant may not change through the ORM. So this module reads and writes the users table with Core
statements on the session's connection (in its transaction, past the tenant filter) that carry their
own conditions: the email lookup returns an id and nothing else, and in a
tenant scope a link is only issued for a member of that org who has no password yet and belongs to no
other org, so no org admin can take over another org's person.

Every org keeps at least one org admin: the last one can be neither demoted nor removed
(`Conflict`, code `last_org_admin`).
"""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import exists, func, select, update
from werkzeug.security import generate_password_hash

from vsync.errors import Conflict, NotFound, ValidationError
from vsync.extensions import db
from vsync.models import Membership, Organization, User
from vsync.models.orgs import ORG_ADMIN, ORG_ROLES
from vsync.models.types import utcnow
from vsync.services import audit
from vsync.services.orgs import create_user, normalize_email, validate_password
from vsync.tenancy import current_scope, reviewed_sql, tenant_criterion_sql

PASSWORD_LINK_LIFETIME = timedelta(hours=72)
_UNCHANGED = object()
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


def _core(statement):
    """Run a reviewed statement on the users table (see the module docstring)."""
    return db.session.connection().execute(reviewed_sql(statement))


def _user_id_by_email(email: str) -> int | None:
    """The id of the account with `email`, whoever's member it is: adding by email must find it."""
    return _core(select(_users.c.id).where(func.lower(_users.c.email) == email)).scalar()


def add_member(org: Organization, email: str, role: str, *, password: str | None = None,
               extension: str | None = None) -> Membership:
    """Add `email` to `org` with `role` (and an agent's `extension`). A person without an account gets
    one, with `password` if given; without one they choose it through `issue_password_link`."""
    email, role, extension = normalize_email(email), _role(role), _extension(extension)
    user_id = _user_id_by_email(email)
    if user_id is None:
        user_id = create_user(email, password).id
    elif db.session.scalar(select(Membership.id).where(Membership.org_id == org.id,
                                                       Membership.user_id == user_id)) is not None:
        raise Conflict(f"{email} is already a member of {org.slug}.", field="email")
    membership = Membership(org_id=org.id, user_id=user_id, role=role, extension=extension)
    db.session.add(membership)
    db.session.flush()
    audit.record("member.added", org_id=org.id, target=membership,
                 summary=f"{email} as {role}" + (f", extension {extension}" if extension else ""))
    return membership


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
    admins = db.session.scalars(select(Membership.id).where(
        Membership.org_id == org.id, Membership.role == ORG_ADMIN).with_for_update()).all()
    if len(admins) <= 1:
        raise Conflict(f"{membership.user.email} is the last org admin of {org.slug}; make someone else "
                       f"org admin before {doing} them.", field="role", code="last_org_admin")


def change_member(org: Organization, membership: Membership, *, role=_UNCHANGED,
                  extension=_UNCHANGED) -> Membership:
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
        audit.record("member.changed", org_id=org.id, target=membership,
                     summary=f"{membership.user.email}: {', '.join(changes)}")
    return membership


def remove_member(org: Organization, membership: Membership) -> None:
    """End a person's membership of `org`; their account, and other orgs' memberships, stay."""
    if membership.org_id != org.id:
        raise NotFound(f"No member {membership.id} in {org.slug}.", field="membership")
    _keep_an_org_admin(org, membership, "removing")
    email, role = membership.user.email, membership.role
    audit.record("member.removed", org_id=org.id, target=membership, summary=f"{email} ({role})")
    db.session.delete(membership)
    db.session.flush()


# --- set-password links ---------------------------------------------------------------------------


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _may_link_here():
    """In a tenant scope: a member of this org, with no password yet and no other org."""
    scope = current_scope()
    if scope is None or scope.is_bypass:
        return None
    elsewhere = exists().where(_members.c.user_id == _users.c.id, _members.c.org_id != scope.org_id)
    return tenant_criterion_sql(_users, scope) & _users.c.password_hash.is_(None) & ~elsewhere


def awaiting_password(user: User) -> bool:
    """Whether `user` has not chosen a password yet (asked without reading any hash)."""
    return bool(_core(select(_users.c.password_hash.is_(None)).where(_users.c.id == user.id)).scalar())


def issue_password_link(user: User) -> str:
    """A new one-time token by which `user` chooses a password at `/set-password/<token>`, valid 72
    hours; it replaces any earlier link. Shown once: only its hash is kept. A platform admin may issue
    one for anyone (a password reset; the old password works until the link is used); in a tenant
    scope only for a member of that org who has no password yet and is in no other org."""
    token = secrets.token_urlsafe(32)
    expires = utcnow() + PASSWORD_LINK_LIFETIME
    statement = (update(_users).where(_users.c.id == user.id)
                 .values(password_token_hash=_token_hash(token), password_token_expires_at=expires,
                         password_token_used_at=None))
    condition = _may_link_here()
    if condition is not None:
        statement = statement.where(condition)
    if _core(statement).rowcount != 1:
        raise Conflict(f"{user.email} already has a password or belongs to another organisation; "
                       "a platform admin can reset it.", field="email", code="has_password")
    audit.record("user.password_link_issued", target=("User", user.id),
                 summary=f"{user.email}, valid until {expires:%Y-%m-%d %H:%M} UTC")
    return token


@dataclass(frozen=True)
class PasswordLink:
    user_id: int
    email: str
    expires_at: datetime


def password_link(token: str) -> PasswordLink:
    """The account a set-password token is for, if it can still be used; else `ValidationError` saying
    why (unknown, used, expired), for the public page that redeems it."""
    row = _core(select(_users.c.id, _users.c.email, _users.c.password_token_expires_at,
                                    _users.c.password_token_used_at)
                             .where(_users.c.password_token_hash == _token_hash(token or ""))).first()
    if row is None:
        raise ValidationError("This set-password link is not valid. Ask your admin for a new one.", field="token")
    if row.password_token_used_at is not None:
        raise ValidationError("This set-password link has been used already. Sign in with the password you "
                              "chose, or ask your admin for a new link.", field="token")
    if row.password_token_expires_at <= utcnow():
        raise ValidationError("This set-password link has expired (links last 72 hours). Ask your admin for "
                              "a new one.", field="token")
    return PasswordLink(row.id, row.email, row.password_token_expires_at)


def set_password_with_link(token: str, password: str) -> PasswordLink:
    """Redeem a set-password token: the account gets `password` and the token is spent. The update is
    conditional on the token being unused, so two submissions of one link cannot both succeed."""
    link = password_link(token)
    validate_password(password)
    spent = _core(
        update(_users).where(_users.c.id == link.user_id, _users.c.password_token_used_at.is_(None),
                             _users.c.password_token_hash == _token_hash(token))
        .values(password_hash=generate_password_hash(password, method=current_app.config["VSYNC_PASSWORD_HASH"]),
                password_token_used_at=utcnow())).rowcount
    if spent != 1:
        raise ValidationError("This set-password link has been used already.", field="token")
    audit.record("user.password_set", target=("User", link.user_id), actor=link.email,
                 summary=f"{link.email} chose a password with a set-password link")
    return link
