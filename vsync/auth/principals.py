"""Who is asking: a signed-in user, or an API key (a principal of its own, never a user).

Also resolves which organisation a request acts in, and so which tenant scope it enters.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from vsync.extensions import db
from vsync.models import Membership, Organization


@dataclass(frozen=True)
class ApiKeyPrincipal:
    key_id: int
    public_id: str
    name: str
    org_id: int | None
    scopes: tuple[str, ...]

    is_api_key = True
    is_authenticated = True
    is_active = True
    is_anonymous = False

    @property
    def is_platform_admin(self) -> bool:
        return self.org_id is None

    @property
    def label(self) -> str:
        return f"api key vsk_{self.public_id} ({self.name})"

    def get_id(self) -> None:
        """An API key is never remembered in a session; Flask-Login must not store it."""
        return None


@dataclass(frozen=True)
class OrgMembership:
    org_id: int
    slug: str
    name: str
    role: str
    extension: str | None


def memberships_of(user_id: int) -> list[OrgMembership]:
    """The orgs a user belongs to, read before any tenant scope exists.

    A Core statement over the tables (not filtered by the tenant hooks) selecting only the rows of
    `user_id`: the reviewed path by which a request finds the tenant it may enter.
    """
    m, o = Membership.__table__.c, Organization.__table__.c
    rows = db.session.execute(
        select(m.org_id, o.slug, o.name, m.role, m.extension)
        .join_from(Membership.__table__, Organization.__table__, m.org_id == o.id)
        .where(m.user_id == user_id).order_by(o.name, o.id))
    return [OrgMembership(*row) for row in rows]
