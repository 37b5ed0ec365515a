"""Signed-in sessions that the server can end: one `user_sessions` row per sign-in.

Why rows on the server. Flask's session is a signed cookie, which the server cannot take back: a copy
saved before sign-out stays valid until it expires. Flask-Login's alternative-id recipe (`get_id`
returns a token the server keeps, not the user id) fixes that, and there were two ways to keep the
token: one per user, rotated by sign-out and password changes, or one per sign-in, in a row of its
own. A per-user token ends every session at once, so signing out on a phone would sign the laptop
out too, and it cannot say which devices are signed in. A row per sign-in ends exactly the sessions
an event should end, lets a person see their sessions (device, address, last seen) and end one, and
costs what the loader read already cost, one indexed read per request, plus a `last_seen_at` write
at most once a minute per session.

So `get_id()` of a signed-in principal is its session's random token (the cookie holds it; this
table only its SHA-256), and the user loader (`vsync.auth.principals.load_user`) accepts it while the
row has not ended, `expires_at` (`VSYNC_SESSION_HOURS` after sign-in) has not passed on the server's
clock, whatever the cookie says, and the account is active. What ends sessions:

- signing out: that session only; another device stays signed in; "sign out this one" on the own
  page (`/account`) likewise ends one chosen session of the person's own;
- "sign out everywhere else" on the own page, and a password changed there: every session but the
  one asking;
- "sign out everywhere" (the person in the console's menu, or a platform admin on their user page):
  every session of the account, this one included;
- a password set through a set-password link, and a platform admin's password reset: every session.
  None is kept: the link's page is not signed in as the account (the link is the credential), and
  it sends the person to sign in with the new password;
- deactivation: every session (the loader refuses an inactive account as well);
- losing the last membership, or a platform admin's role, with no organisation left to reach: every
  session. Removing someone from one of several orgs ends none: the resolver refuses that org at once.

API keys are not sessions and are unaffected.

No organisation sees these rows (`UserSession`), and the events that end them happen in any scope
(an org admin removing a member runs in the org's tenant scope), so this module reads and writes them
with reviewed Core statements on the session's connection, in the caller's transaction; the caller
commits.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import exists, insert, select, update

from vsync.crypto import secret_digest
from vsync.extensions import db
from vsync.models import Membership, User, UserSession
from vsync.models.orgs import PLATFORM_ADMIN
from vsync.models.sessions import NO_ORGANISATION, SIGNED_OUT, SIGNED_OUT_EVERYWHERE
from vsync.models.types import utcnow
from vsync.services import audit
from vsync.tenancy import reviewed_sql

LAST_SEEN_EVERY = timedelta(minutes=1)
_sessions = UserSession.__table__
_users = User.__table__
_members = Membership.__table__


@dataclass(frozen=True)
class SessionInfo:
    """One active session, as a list of a person's own sessions shows it."""

    id: int
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    ip: str | None
    user_agent: str | None


def _run(statement):
    """Run a reviewed statement on `user_sessions` (see the module docstring)."""
    return db.session.connection().execute(reviewed_sql(statement))


def _active(now: datetime):
    return _sessions.c.ended_at.is_(None) & (_sessions.c.expires_at > now)


def start_session(
    user_id: int, *, ip: str | None = None, user_agent: str | None = None, now: datetime | None = None
) -> str:
    """A new session of `user_id`, lasting `VSYNC_SESSION_HOURS` from `now`; returns its token, which
    only the cookie keeps."""
    now = now or utcnow()
    token = secrets.token_urlsafe(32)
    _run(
        insert(_sessions).values(
            user_id=user_id,
            token_hash=secret_digest(token),
            created_at=now,
            last_seen_at=now,
            expires_at=now + current_app.permanent_session_lifetime,
            ip=ip,
            user_agent=(user_agent or "")[:300] or None,
        )
    )
    return token


def list_active_sessions(user_id: int, *, now: datetime | None = None) -> list[SessionInfo]:
    """`user_id`'s sessions that have neither ended nor expired, the most recently seen first."""
    rows = _run(
        select(
            _sessions.c.id,
            _sessions.c.created_at,
            _sessions.c.last_seen_at,
            _sessions.c.expires_at,
            _sessions.c.ip,
            _sessions.c.user_agent,
        )
        .where(_sessions.c.user_id == user_id, _active(now or utcnow()))
        .order_by(_sessions.c.last_seen_at.desc(), _sessions.c.id.desc())
    )
    return [SessionInfo(**row._mapping) for row in rows]


def end_session(user_id: int, session_id: int | None, reason: str = SIGNED_OUT, *, now: datetime | None = None) -> bool:
    """End one of `user_id`'s sessions; whether one ended. Another person's session id ends nothing."""
    ended = _run(
        update(_sessions)
        .where(_sessions.c.id == session_id, _sessions.c.user_id == user_id, _sessions.c.ended_at.is_(None))
        .values(ended_at=now or utcnow(), ended_reason=reason)
    )
    return ended.rowcount == 1


def end_other_sessions(user_id: int, keep_session_id: int | None, reason: str, *, now: datetime | None = None) -> int:
    """End every session of `user_id` still going but `keep_session_id` (the one asking); how many ended."""
    ended = _run(
        update(_sessions)
        .where(
            _sessions.c.user_id == user_id,
            _sessions.c.id.is_distinct_from(keep_session_id),
            _sessions.c.ended_at.is_(None),
        )
        .values(ended_at=now or utcnow(), ended_reason=reason)
    )
    return ended.rowcount


def note_device(user_id: int, session_token: str, device_hash: str) -> str:
    """Mark the session just started with `session_token` as from the device `device_hash`, and say what
    that device is to the person: `known` (an earlier session of theirs came from it), `first` (they
    have no earlier session at all: their first sign-in is no news to them) or `new`."""
    this = secret_digest(session_token)
    earlier = _sessions.c.user_id == user_id, _sessions.c.token_hash != this
    known, any_earlier = _run(
        select(
            exists().where(*earlier, _sessions.c.device_hash == device_hash),
            exists().where(*earlier),
        )
    ).one()
    _run(
        update(_sessions)
        .where(_sessions.c.user_id == user_id, _sessions.c.token_hash == this)
        .values(device_hash=device_hash)
    )
    return "known" if known else "new" if any_earlier else "first"


def end_all_sessions(user_id: int, reason: str, *, now: datetime | None = None) -> int:
    """End every session of `user_id` still going; how many ended."""
    ended = _run(
        update(_sessions)
        .where(_sessions.c.user_id == user_id, _sessions.c.ended_at.is_(None))
        .values(ended_at=now or utcnow(), ended_reason=reason)
    )
    return ended.rowcount


def sign_out_everywhere(user_id: int, email: str) -> int:
    """ "Sign out everywhere", by the person or by a platform admin for them: every session ends. Audited."""
    count = end_all_sessions(user_id, SIGNED_OUT_EVERYWHERE)
    audit.record("user.signed_out_everywhere", target=("User", user_id), summary=f"{email}: {count} session(s) ended")
    return count


def end_sessions_out_of_reach(user_id: int) -> int:
    """End every session of an account that can reach no organisation any more: no membership left and
    not a platform admin. Its sessions would only lead to an empty console. Not audited in the org that
    removed the person: that would tell it the person belongs to no other org."""
    reaches = _run(
        select(
            exists().where(_members.c.user_id == user_id)
            | exists().where(_users.c.id == user_id, _users.c.role == PLATFORM_ADMIN)
        )
    ).scalar()
    return 0 if reaches else end_all_sessions(user_id, NO_ORGANISATION)
