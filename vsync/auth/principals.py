"""Who is asking, and in which organisations it may act.

A principal is a plain object, never an ORM row: a signed-in user (`UserPrincipal`), an API key
(`ApiKeyPrincipal`), or nobody (`AnonymousPrincipal`). Every edge asks the same questions of it
(`is_api_key`, `is_platform`, `scopes`, `label`), so none needs to know which kind it holds.

`resolve_org` is the one resolver: principal + org reference (slug or id) → the org the principal
may act in, its role there and, for agents, its extension. An org that does not exist and one the
principal may not see are the same `NotFound`. What a principal can reach:

- a user: the orgs they are a member of, with that membership's role and extension;
- a platform admin, or a platform key: every org, as `org_admin`;
- an org key: its own org, as `manager` (it reads everything and may start syncs with the `write`
  scope, but never manages members, keys, the integration or settings: a leaked key must not be
  able to mint more access).

Sign-in and the resolver read users, memberships, sessions and organisations before any tenant scope
exists, so they use Core statements over the tables here: the reviewed path by which a request finds
the tenant it may enter. They select what they need and nothing of another user.

A signed-in user is remembered by their session's token, not their id (`vsync.services.sessions`
says why): `load_user` finds the principal from the token while its session is usable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from flask_login import AnonymousUserMixin, current_user
from sqlalchemy import func, select, update
from werkzeug.security import check_password_hash

from vsync.crypto import secret_digest
from vsync.errors import NotFound
from vsync.extensions import db
from vsync.models import Integration, Membership, Organization, User, UserSession
from vsync.models.orgs import AGENT, MANAGER, ORG_ADMIN, PLATFORM_ADMIN
from vsync.models.types import utcnow
from vsync.services.sessions import LAST_SEEN_EVERY
from vsync.tenancy import Scope, reviewed_sql

KEY_ROLE = MANAGER
PLATFORM_ROLE = ORG_ADMIN
ALL_SCOPES = ("read", "write")
# Checked when no user matches, so a wrong email costs the same time as a wrong password: Werkzeug's
# scrypt hash (its default parameters, as `VSYNC_PASSWORD_HASH=scrypt` stores) of "vsync timing
# equaliser", written out because hashing it at import would take 32 MB of a process's peak memory.
_DUMMY_HASH = (
    "scrypt:32768:8:1$KBWNslTs36jFz7Lo$ec23e7f72e9d951f5abf7fb73dc13ee191bc59b45cd1976e6e682e7b8f3c90cb"
    "c79febbf1a059800ff55a13f58ae87da3f9220b552c466d5526e82808d09f160"
)


class Principal:
    """What every edge may ask of whoever is asking."""

    is_authenticated = True
    is_active = True
    is_anonymous = False
    is_api_key = False
    is_platform = False
    scopes: tuple[str, ...] = ()
    label = "anonymous"

    def get_id(self) -> str | None:
        return None


@dataclass(frozen=True)
class UserPrincipal(Principal):
    """A user; signed in, with the session it came with (`authenticate` gives one without, until
    `vsync.services.sessions.start_session` makes it)."""

    id: int
    email: str
    role: str
    active: bool = True
    session_id: int | None = None
    session_token: str | None = field(default=None, repr=False)
    two_factor: bool = False  # two-factor sign-in is on (`vsync.services.twofactor`)
    scopes = ALL_SCOPES  # a user's writes are governed by role alone

    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def is_platform(self) -> bool:
        return self.role == PLATFORM_ADMIN

    @property
    def label(self) -> str:
        return self.email

    def get_id(self) -> str | None:
        """Flask-Login's alternative id: the session's token, which the server can end."""
        return self.session_token


@dataclass(frozen=True)
class ApiKeyPrincipal(Principal):
    key_id: int
    public_id: str
    name: str
    org_id: int | None
    scopes: tuple[str, ...]
    is_api_key = True

    @property
    def is_platform(self) -> bool:
        return self.org_id is None

    @property
    def label(self) -> str:
        return f"api key vsk_{self.public_id} ({self.name})"

    def get_id(self) -> None:
        """An API key is never remembered in a session; Flask-Login must not store it."""
        return None


class AnonymousPrincipal(AnonymousUserMixin):
    is_api_key = False
    is_platform = False
    scopes: tuple[str, ...] = ()
    label = "anonymous"


def current_principal() -> UserPrincipal | ApiKeyPrincipal | AnonymousPrincipal:
    """Whoever makes this request: Flask-Login's `current_user` without its proxy. Flask-Login types it
    as possibly None, which it is only outside a request."""
    principal = current_user._get_current_object()
    if principal is None:
        raise RuntimeError("There is no principal outside a request.")
    return principal


def signed_in_person() -> UserPrincipal:
    """The person of a request that only a signed-in user reaches (a console page; the API also takes keys)."""
    principal = current_principal()
    if not isinstance(principal, UserPrincipal):
        raise RuntimeError(f"{principal.label} is not a signed-in user.")
    return principal


def user_id_of(principal) -> int | None:
    """The user behind `principal` (for "created by" and "requested by"), None for an API key."""
    return principal.id if isinstance(principal, UserPrincipal) else None


@dataclass(frozen=True)
class OrgAccess:
    """An org a principal may act in, with its role there (and an agent's extension, of the accounts
    of the org's integrations: an agent is an (account, extension))."""

    org_id: int
    slug: str
    name: str
    timezone: str
    role: str
    extension: str | None = None
    accounts: tuple[int, ...] = ()
    require_two_factor: bool = False  # everyone acting here must have two-factor sign-in on

    @property
    def scope(self) -> Scope:
        return Scope(org_id=self.org_id, role=self.role, extension=self.extension, accounts=self.accounts)


_users = User.__table__.c
_orgs = Organization.__table__.c
_members = Membership.__table__.c


def _user_principal(row) -> UserPrincipal:
    return UserPrincipal(
        id=row.id,
        email=row.email,
        role=row.role,
        active=row.active,
        two_factor=row.two_factor_enabled_at is not None,
    )


_sessions = UserSession.__table__.c


def load_user(token: str, *, now: datetime | None = None) -> UserPrincipal | None:
    """The principal of the session `token` names while it is usable: not ended, not past its
    `expires_at` at `now`, and its account active; else None.

    `last_seen_at` is written at most once a minute per session, so a busy session does not turn
    every read into a write. That write commits itself, as `verify_api_key`'s does: it runs while
    authenticating, before any view owns the transaction.
    """
    now = now or utcnow()
    row = db.session.execute(
        select(
            _users.id,
            _users.email,
            _users.role,
            _users.active,
            _users.two_factor_enabled_at,
            _sessions.id.label("session_id"),
            _sessions.last_seen_at,
        )
        .join_from(UserSession.__table__, User.__table__, _users.id == _sessions.user_id)
        .where(
            _sessions.token_hash == secret_digest(token),
            _sessions.ended_at.is_(None),
            _sessions.expires_at > now,
            _users.active.is_(True),
        )
    ).first()
    if row is None:
        return None
    if now - row.last_seen_at >= LAST_SEEN_EVERY:
        db.session.execute(
            reviewed_sql(update(UserSession.__table__).where(_sessions.id == row.session_id).values(last_seen_at=now))
        )
        db.session.commit()
    return UserPrincipal(
        id=row.id,
        email=row.email,
        role=row.role,
        active=row.active,
        session_id=row.session_id,
        session_token=token,
        two_factor=row.two_factor_enabled_at is not None,
    )


def authenticate(email: str, password: str) -> tuple[UserPrincipal | None, str]:
    """The principal of `email` if `password` is right and the account active, else None and why.

    Costs the same whether or not the email exists, so timing does not tell which emails do.
    """
    row = db.session.execute(
        select(
            _users.id, _users.email, _users.role, _users.active, _users.password_hash, _users.two_factor_enabled_at
        ).where(func.lower(_users.email) == email.strip().lower())
    ).first()
    if row is None:
        check_password_hash(_DUMMY_HASH, password)
        return None, "unknown account"
    if not (row.password_hash and check_password_hash(row.password_hash, password)):
        return None, "wrong password"
    if not row.active:
        return None, "inactive account"
    return _user_principal(row), "ok"


def active_user(user_id: int) -> UserPrincipal | None:
    """The principal of `user_id` while the account is active (sign-in's second step: the password
    was right a moment ago), else None."""
    row = db.session.execute(
        select(_users.id, _users.email, _users.role, _users.active, _users.two_factor_enabled_at).where(
            _users.id == user_id, _users.active.is_(True)
        )
    ).first()
    return None if row is None else _user_principal(row)


def record_sign_in(principal: UserPrincipal) -> None:
    db.session.execute(update(User.__table__).where(_users.id == principal.id).values(last_login_at=utcnow()))


def _access(row, role: str, extension: str | None = None) -> OrgAccess:
    accounts = ()
    if role == AGENT:
        integrations = Integration.__table__.c
        accounts = tuple(
            db.session.scalars(
                select(integrations.account_id)
                .distinct()
                .where(integrations.org_id == row.id)
                .order_by(integrations.account_id)
            )
        )
    return OrgAccess(
        org_id=row.id,
        slug=row.slug,
        name=row.name,
        timezone=row.timezone,
        role=role,
        extension=extension,
        accounts=accounts,
        require_two_factor=row.require_two_factor,
    )


def _org_columns():
    return select(_orgs.id, _orgs.slug, _orgs.name, _orgs.timezone, _orgs.require_two_factor)


def reachable_orgs(principal, *, after_id: int | None = None, limit: int | None = None) -> list[OrgAccess]:
    """Every org `principal` may act in, by id, with its role there (a page of them with `limit`)."""
    if not principal.is_authenticated:
        return []
    if principal.is_platform:
        query, role_of = _org_columns(), lambda row: (PLATFORM_ROLE, None)
    elif principal.is_api_key:
        query, role_of = _org_columns().where(_orgs.id == principal.org_id), lambda row: (KEY_ROLE, None)
    else:
        query = (
            _org_columns()
            .add_columns(_members.role, _members.extension)
            .join_from(Organization.__table__, Membership.__table__, _members.org_id == _orgs.id)
            .where(_members.user_id == principal.id)
        )
        role_of = lambda row: (row.role, row.extension)  # noqa: E731
    if after_id is not None:
        query = query.where(_orgs.id > after_id)
    rows = db.session.execute(query.order_by(_orgs.id).limit(limit)).all()
    return [_access(row, *role_of(row)) for row in rows]


def resolve_org(principal, reference: str | int) -> OrgAccess:
    """The org `reference` (a slug or an id) names, as `principal` may act in it; else `NotFound`,
    the same for an org that does not exist and for one the principal may not see."""
    reference = str(reference)
    by = _orgs.id == int(reference) if reference.isdigit() else _orgs.slug == reference
    row = db.session.execute(_org_columns().where(by)).first()
    if row is not None and principal.is_authenticated:
        if principal.is_platform:
            return _access(row, PLATFORM_ROLE)
        if principal.is_api_key and principal.org_id == row.id:
            return _access(row, KEY_ROLE)
        if not principal.is_api_key:
            member = db.session.execute(
                select(_members.role, _members.extension).where(
                    _members.org_id == row.id, _members.user_id == principal.id
                )
            ).first()
            if member is not None:
                return _access(row, member.role, member.extension)
    raise NotFound(f"No organisation {reference!r}.", field="org")
