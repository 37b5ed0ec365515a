"""The calls CSV through PostgreSQL's COPY (`vsync.services.csv_copy`) writes the rows the Python
export writes, for the same request: the same header, cells, order and scope, on the two-org world
with awkward values (commas, quotes, newlines, empty texts, nulls, microseconds, a DST change)."""

from __future__ import annotations

import csv
import io
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert

from tests.factories import account_of
from tests.world import A_ONLY, B_ONLY, SHARED, api_as
from vsync.extensions import db
from vsync.models import Agent, Call
from vsync.tenancy import platform_bypass

DST_END = datetime(2026, 11, 1, 6, 0, tzinfo=UTC)  # 02:00 EDT becomes 01:00 EST (org B's time zone)
WINDOW = "from=2026-11-01&to=2026-11-03"
AWKWARD = 'a-"quoted", with\nnewline'


def _calls(app, world) -> None:
    """Org A's and org B's calls with every kind of cell the export writes, on a shared number too."""
    with app.app_context():
        accounts = {org: account_of(world.integrations[org]) for org in ("a", "b")}
    rows = [
        ("a", A_ONLY, AWKWARD, DST_END - timedelta(minutes=30), 1500, "102", "+1212, 555", ""),
        ("a", A_ONLY, "a-micro", DST_END + timedelta(minutes=30, microseconds=123456), 999, "102", None, None),
        ("a", A_ONLY, "a-milli", DST_END + timedelta(hours=2, microseconds=5000), 0, "", "", "+12125550000"),
        ("a", SHARED, "a-shared-open", DST_END + timedelta(hours=3), None, None, "+1", "+2"),
        ("a", SHARED, "a-O'Brien %_\\", DST_END + timedelta(hours=4), 123_456_789, "101", "+3", "+4"),
        ("a", A_ONLY, "a-before-window", datetime(2026, 10, 31, 23, 59, 59, 999999, tzinfo=UTC), 1, "101", "", ""),
        ("a", A_ONLY, "a-at-window-end", datetime(2026, 11, 4, tzinfo=UTC), 1, "101", "", ""),
        ("b", SHARED, "b-shared", DST_END + timedelta(hours=3, seconds=1), 7, "201", "+5", "+6"),
        ("b", B_ONLY, "b-only", DST_END + timedelta(minutes=30), 2500, "201", "+7", "+8"),
    ]
    with app.app_context(), platform_bypass("test setup"):
        db.session.add(Agent(account_id=accounts["a"], extension="102", display_name='Lee, "Q"\nJr.'))
        db.session.execute(
            insert(Call.__table__),
            [
                {
                    "account_id": accounts[org],
                    "phone_number_id": world.numbers[number],
                    "external_id": external_id,
                    "direction": "inbound",
                    "status": "answered",
                    "started_at": started,
                    "answered_at": started + timedelta(seconds=3, microseconds=10) if duration else None,
                    "ended_at": started + timedelta(milliseconds=duration) if duration is not None else None,
                    "duration_ms": duration,
                    "agent_extension": extension,
                    "from_number": from_number,
                    "to_number": to_number,
                    "raw": {},
                }
                for org, number, external_id, started, duration, extension, from_number, to_number in rows
            ],
        )
        db.session.commit()


def _exports(app, client, url: str) -> tuple[str, str]:
    """The same request's CSV through COPY and through the Python export."""
    bodies = []
    for copy in (True, False):
        app.config["VSYNC_CSV_COPY"] = copy
        try:
            response = client.get(url)
            assert response.status_code == 200 and response.mimetype == "text/csv"
            bodies.append(response.get_data(as_text=True))
        finally:
            app.config["VSYNC_CSV_COPY"] = True
    return bodies[0], bodies[1]


def _rows(body: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body, newline="")))


@pytest.mark.parametrize(
    ("principal", "query", "expected"),
    [
        ("admin_a", "", 10),
        ("agent_a", "", 4),
        ("admin_a", "&agent=102&direction=inbound&status=answered", 2),
        ("admin_a", "&q=O%27Brien%20%25_%5C", 1),
        ("admin_a", "&q=%22quoted%22%2C", 1),
        ("admin_b", "", 8),
    ],
)
def test_the_copy_export_writes_the_python_exports_rows(app, world, principal, query, expected):
    _calls(app, world)
    client = api_as(app.test_client(), principal, world)
    url = f"/api/v1/orgs/org-{principal[-1]}/calls?{WINDOW}{query}"
    through_copy, in_python = _exports(app, client, url + "&format=csv")
    copied, python = _rows(through_copy), _rows(in_python)
    assert copied == python
    listed = client.get(url + "&limit=100").get_json()["data"]
    assert [row[0] for row in copied[1:]] == [str(item["id"]) for item in listed] and len(listed) == expected


def test_the_copy_export_writes_every_awkward_cell_as_the_python_export(app, world):
    _calls(app, world)
    client = api_as(app.test_client(), "admin_a", world)
    through_copy, in_python = _exports(app, client, f"/api/v1/orgs/org-a/calls?{WINDOW}&format=csv")
    rows = {row[1]: row for row in _rows(through_copy)[1:]}
    assert rows[AWKWARD][7:10] == ["2026-11-01T05:30:00Z", "2026-11-01T05:30:03.000010Z", "2026-11-01T05:30:01.500000Z"]
    assert rows[AWKWARD][5] == "+1212, 555" and rows[AWKWARD][6] == ""
    assert rows[AWKWARD][10:] == ["1.5", "102", 'Lee, "Q"\nJr.']
    assert rows["a-micro"][7] == "2026-11-01T06:30:00.123456Z" and rows["a-micro"][10] == "0.999"
    assert rows["a-milli"][7] == "2026-11-01T08:00:00.005000Z" and rows["a-milli"][10:] == ["0.0", "", ""]
    assert rows["a-shared-open"][8:] == ["", "", "", "", ""]
    assert rows["a-O'Brien %_\\"][10:] == ["123456.789", "101", "Ada Lovelace"]
    assert not {"a-before-window", "a-at-window-end"} & rows.keys()
    assert _rows(through_copy) == _rows(in_python)
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):  # COPY ends lines with LF, Python with CRLF
        assert "\r\n" not in through_copy and in_python.startswith("id,external_id,") and "\r\n" in in_python


def test_org_bs_calls_never_appear_in_org_as_copy_export(app, world):
    """Org A sees the calls of its own numbers while they are its own: a call org B's account took on
    the number both orgs hold, without B's agent's name, and none of B's other calls."""
    _calls(app, world)
    through_copy, _ = _exports(
        app, api_as(app.test_client(), "admin_a", world), f"/api/v1/orgs/org-a/calls?{WINDOW}&format=csv"
    )
    exported = {row[1]: row for row in _rows(through_copy)[1:]}
    assert not {"b-only", "b-1100", "b-1300", "moved-after-1300"} & exported.keys()
    assert exported["b-shared"][11:] == ["201", ""] and "Bea Brown" not in through_copy


def test_a_copy_export_the_client_leaves_early_ends_its_statement_and_frees_the_connection(app, ctx):
    from sqlalchemy import func, select

    from vsync.services import csv_copy

    if not csv_copy.available():
        pytest.skip("COPY is PostgreSQL's")
    with platform_bypass("a long COPY, read in part"):
        chunks = csv_copy.copy_csv(select(func.generate_series(1, 5_000_000).label("n")))
        assert next(chunks).startswith(b"n\n1\n2\n")
        chunks.close()  # the client went away: the COPY is cancelled, its thread ends
        assert not [thread for thread in threading.enumerate() if thread.name == "csv-copy"]
        db.session.rollback()
        assert db.session.execute(select(func.count()).select_from(func.generate_series(1, 3))).scalar() == 3
