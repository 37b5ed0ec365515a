"""Users in the two-org world, reached through every statement shape: org A sees its members only and
never a secret column (a password hash, a set-password link's hashes), however the statement reaches
the users table. The secret columns are found in the statement's structure (`vsync.tenancy.rewriter`)."""

from __future__ import annotations

import pytest
from sqlalchemy import exists, func, literal_column, select, text
from sqlalchemy.orm import aliased, joinedload, undefer

from vsync.extensions import db
from vsync.models import Membership, User
from vsync.tenancy import RefusedStatement, reviewed_sql, tenant

A_MEMBERS = {"admin@a.test", "manager@a.test", "agent@a.test", "both@ab.test"}
B_ONLY = {"admin@b.test", "manager@b.test", "agent@b.test"}
USERS = User.__table__


def emails_of(statement) -> set[str]:
    return set(db.session.scalars(statement))


def refused(statement) -> None:
    with pytest.raises(RefusedStatement, match="never read in a tenant scope"):
        db.session.execute(statement)


def shapes():
    """(name, a statement reading users' emails, the same shape reading a password hash)."""
    someone = aliased(User)
    members = select(User.id, User.email).subquery()
    return [
        (
            "join",
            select(User.email).join(Membership, Membership.user_id == User.id),
            select(User.password_hash).join(Membership, Membership.user_id == User.id),
        ),
        (
            "join from a membership",
            select(User.email).select_from(Membership).join(Membership.user),
            select(Membership.role).join(Membership.user).where(User.password_hash.is_(None)),
        ),
        (
            "subquery",
            select(select(User.email).subquery().c.email),
            select(func.count()).select_from(select(User.id).where(User.password_token_hash == "x").subquery()),
        ),
        ("aliased", select(someone.email), select(aliased(User)).options(undefer("*"))),
        (
            "aliased subquery",
            select(aliased(User, members).email),  # a subquery of the entity reads every column
            select(aliased(User, select(User).subquery()).id),
        ),
        ("core table", select(USERS.c.email), select(USERS)),
        (
            "exists",
            select(User.email).where(exists().where(Membership.user_id == User.id)),
            select(Membership.id).where(exists().where(User.id == Membership.user_id, User.password_hash.is_(None))),
        ),
        ("eager load", None, select(Membership.role).join(Membership.user).add_columns(User.password_token_state)),
    ]


def test_every_shape_reaches_only_org_a_members_and_never_a_secret(ctx, world):
    for name, reading, secret in shapes():
        with tenant(world.a):
            if name == "eager load":
                got = {
                    member.user.email
                    for member in db.session.scalars(select(Membership).options(joinedload(Membership.user)))
                }
            else:
                got = emails_of(reading)
            assert got == A_MEMBERS, name
            with pytest.raises(RefusedStatement, match="never read in a tenant scope"):
                db.session.execute(secret)
                pytest.fail(f"{name}: a secret column was read")
        db.session.rollback()
    with tenant(world.b):
        assert emails_of(select(aliased(User).email)) == B_ONLY | {"both@ab.test"}


def test_text_naming_a_secret_is_refused_even_when_reviewed(ctx, world):
    with tenant(world.a):
        refused(reviewed_sql(select(User.email).where(text("users.password_hash IS NULL"))))
        refused(reviewed_sql(select(User.email, literal_column("users.password_token_hash"))))
        assert emails_of(reviewed_sql(select(User.email).where(text("users.active")))) == A_MEMBERS
    db.session.rollback()


def test_a_deferred_secret_is_not_loaded_for_a_member_and_a_changed_one_is_refused(ctx, world):
    with tenant(world.a):
        user = db.session.scalars(select(User).where(User.email == "both@ab.test")).one()
        with pytest.raises(RefusedStatement):
            user.password_token_hash  # noqa: B018
    db.session.rollback()
    with tenant(world.b):
        assert not emails_of(select(User.email).where(User.email.in_({"admin@a.test", "manager@a.test"})))
