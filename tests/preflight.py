"""`make test` runs this first: are PostgreSQL and Redis up, and a fresh test database made.

Prints how to start a service that is down, and exits non-zero, instead of letting a hundred tests
fail with connection errors.

The database named by TEST_DATABASE_URL is dropped and created again only when it is a test
database: one this script created (it marks each with a comment) or one whose name starts with
`vsync_test`. Any other existing database is left alone and the run refused, so a mistyped URL
cannot cost anyone their data.
"""

from __future__ import annotations

import os
import sys

from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/vsync_test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")

START_POSTGRES = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
START_REDIS = 'redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no'
MARKER = "vsync test database, made by tests.preflight; dropped and made again by every `make test`"
TEST_PREFIX = "vsync_test"


class NotATestDatabase(Exception):
    """The named database exists and is not one `make test` may drop."""


def fresh_database(url: str) -> None:
    url = make_url(url)
    name = url.database
    engine = create_engine(
        url.set(database="postgres"), isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3}
    )
    try:
        with engine.connect() as conn:
            exists, comment = conn.execute(
                text(
                    "SELECT count(*) > 0, max(shobj_description(oid, 'pg_database')) FROM pg_database "
                    "WHERE datname = :name"
                ),
                {"name": name},
            ).one()
            if exists:
                if comment != MARKER and not name.startswith(TEST_PREFIX):
                    raise NotATestDatabase(
                        f"database {name!r} exists and was not made by make test, so it is not dropped; "
                        f"name another in TEST_DATABASE_URL (names starting {TEST_PREFIX} are always test databases)"
                    )
                conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
            conn.execute(text(f'COMMENT ON DATABASE "{name}" IS :marker').bindparams(marker=MARKER))
    finally:
        engine.dispose()


def main() -> int:
    problems = []
    try:
        fresh_database(DATABASE_URL)
    except NotATestDatabase as exc:
        problems.append(str(exc))
    except OperationalError as exc:
        problems.append(
            f"PostgreSQL is not reachable at {make_url(DATABASE_URL).render_as_string()}: "
            f"{str(exc.orig).strip().splitlines()[0]}\n  start it with: {START_POSTGRES}"
        )
    try:
        Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
    except RedisError as exc:
        problems.append(f"Redis is not reachable at {REDIS_URL}: {exc}\n  start it with: {START_REDIS}")
    for problem in problems:
        print(f"make test: {problem}", file=sys.stderr)
    if not problems:
        print(f"make test: fresh database {make_url(DATABASE_URL).database}, Redis at {REDIS_URL}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
