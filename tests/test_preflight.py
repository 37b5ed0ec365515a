"""`make test`'s preflight drops only test databases: its own (marked) or ones named vsync_test…"""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.preflight import DATABASE_URL, NotATestDatabase, fresh_database


@pytest.fixture
def server():
    """An autocommit connection to the test server's maintenance database."""
    engine = create_engine(make_url(DATABASE_URL).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        yield conn
    engine.dispose()


@pytest.fixture
def probe_name(server):
    name = f"preflight_probe_{uuid.uuid4().hex[:12]}"
    yield name
    server.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _table_count(url) -> int:
    engine = create_engine(url)
    with engine.connect() as conn:
        count = conn.execute(text("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")).scalar_one()
    engine.dispose()
    return count


def test_a_database_it_did_not_make_is_refused_and_kept(server, probe_name):
    server.execute(text(f'CREATE DATABASE "{probe_name}"'))
    url = make_url(DATABASE_URL).set(database=probe_name)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE precious (id int)"))
    engine.dispose()
    with pytest.raises(NotATestDatabase, match=probe_name):
        fresh_database(url.render_as_string(hide_password=False))
    assert _table_count(url) == 1


def test_a_database_it_made_is_made_afresh_on_the_next_run(probe_name):
    url = make_url(DATABASE_URL).set(database=probe_name)
    fresh_database(url.render_as_string(hide_password=False))
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE leftover (id int)"))
    engine.dispose()
    fresh_database(url.render_as_string(hide_password=False))
    assert _table_count(url) == 0
