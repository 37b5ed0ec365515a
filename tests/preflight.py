"""`make test` runs this first: are PostgreSQL and Redis up, and a fresh test database made.

Prints how to start a service that is down, and exits non-zero, instead of letting a hundred tests
fail with connection errors.
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


def fresh_database(url: str) -> None:
    url = make_url(url)
    engine = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT",
                           connect_args={"connect_timeout": 3})
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{url.database}"'))
    engine.dispose()


def main() -> int:
    problems = []
    try:
        fresh_database(DATABASE_URL)
    except OperationalError as exc:
        problems.append(f"PostgreSQL is not reachable at {make_url(DATABASE_URL).render_as_string()}: "
                        f"{str(exc.orig).strip().splitlines()[0]}\n  start it with: {START_POSTGRES}")
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
