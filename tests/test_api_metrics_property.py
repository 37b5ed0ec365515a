"""The API's figures against a brute-force count over the calls its calls list returns.

The scenarios of `tests.test_metrics` (random calls on shared and moving numbers, random filters,
windows around DST changes in several time zones), asked through the HTTP API as a platform key:
the calls list (every page) must be exactly the calls the brute force counts, and `metrics`,
`metrics/series`, `metrics/agents`, `metrics/numbers`, `metrics/directions`, `metrics/heatmap` and
`metrics/outbound` must equal that count, rounded at the edge. On PostgreSQL,
and once on the embedded SQLite.
"""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlencode

import pytest
from flask_migrate import upgrade
from hypothesis import given, settings
from sqlalchemy import select

from tests.helpers import app_config
from tests.test_metrics import NUMBERS, PROPERTY, assert_same, brute_force, bucket_key, run_scenario, scenarios
from vsync import create_app
from vsync.extensions import db
from vsync.metrics import for_display
from vsync.models import Agent, Integration, Organization, PhoneNumber
from vsync.query import Window
from vsync.services.keys import create_api_key
from vsync.tenancy import platform_bypass
from vsync.timeutil import isoformat_z


def _query(window: Window, filters, kind: str, first, last) -> dict:
    bounds = (
        {"from": first.isoformat(), "to": last.isoformat()}
        if kind == "days"
        else {"from": isoformat_z(window.start), "to": isoformat_z(window.end)}
    )
    return {**bounds, **{k: v for k, v in filters.as_dict().items() if v is not None}}


def _all_calls(client, slug: str, query: dict) -> list[dict]:
    calls, cursor = [], None
    while True:
        page = client.get(
            f"/api/v1/orgs/{slug}/calls?" + urlencode({**query, "limit": 7, **({"cursor": cursor} if cursor else {})})
        )
        assert page.status_code == 200, page.get_json()
        body = page.get_json()
        calls += body["data"]
        if not (cursor := body["next_cursor"]):
            return calls


@settings(PROPERTY, max_examples=20)
@given(scenario=scenarios())
def test_every_api_figure_equals_a_brute_force_count_over_the_calls_list(app, scenario):
    check_through_the_api(app, scenario)


@pytest.fixture
def sqlite_app(tmp_path):
    app = create_app(app_config(SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'vsync.db'}", REDIS_URL=None))
    with app.app_context():
        upgrade()
    yield app
    with app.app_context():
        db.engine.dispose()


@settings(PROPERTY, max_examples=8)
@given(scenario=scenarios())
def test_every_api_figure_equals_a_brute_force_count_over_the_calls_list_on_the_embedded_sqlite(sqlite_app, scenario):
    check_through_the_api(sqlite_app, scenario)


# `tests.test_metrics.build_world`: alpha has (or had) numbers 0 to 2, bravo 1 to 3.
NUMBERS_OF = {"alpha": NUMBERS[:3], "bravo": NUMBERS[1:]}


def _orgs_number(slug: str, number: str | int | None, e164_of: dict[int, str]) -> bool:
    if number is None:
        return True
    return (number if isinstance(number, str) else e164_of[number]) in NUMBERS_OF[slug]


def check_through_the_api(app, scenario: dict) -> None:
    client = app.test_client()
    checked = []

    def check_api(org_id, window, filters, bucket):
        with platform_bypass("test"):
            slug = db.session.get(Organization, org_id).slug
        expected = brute_force(org_id, window, filters)
        checked.append((slug, window, filters, bucket, expected))

    with app.app_context():
        run_scenario(scenario, check=check_api)
        with platform_bypass("test"):
            key = create_api_key(org_id=None, name="property", scopes="read")[1]
            # The filters' extensions are agents of both orgs' accounts, so an agent filter can match.
            accounts = db.session.scalars(select(Integration.account_id)).all()
            db.session.add_all(Agent(account_id=a, extension=e) for a in accounts for e in ("101", "102"))
            e164_of = dict(db.session.execute(select(PhoneNumber.id, PhoneNumber.e164)).tuples().all())
            db.session.commit()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {key}"
    kind, first, last = scenario["window"]
    for slug, window, filters, bucket, expected in checked:
        query = _query(window, filters, kind, first, last)
        if not _orgs_number(slug, filters.number, e164_of):  # the other org's number: every route refuses it alike
            for route in ("calls", "metrics", "metrics/agents"):
                refused = client.get(f"/api/v1/orgs/{slug}/{route}?" + urlencode(query))
                assert refused.status_code == 400 and "number" in refused.get_json()["error"]["details"]
            continue
        listed = sorted(call["external_id"] for call in _all_calls(client, slug, query))
        assert listed == sorted(row[7][1] for row in expected["rows"])

        summary = client.get(f"/api/v1/orgs/{slug}/metrics?" + urlencode(query)).get_json()
        assert_same(summary["metrics"], for_display(expected["summary"]), "metrics")
        agents = client.get(f"/api/v1/orgs/{slug}/metrics/agents?" + urlencode(query)).get_json()
        assert_same(agents["data"], for_display(expected["agents"]), "agents")
        numbers = client.get(f"/api/v1/orgs/{slug}/metrics/numbers?" + urlencode(query)).get_json()
        assert_same(numbers["data"], for_display(expected["numbers"]), "numbers")
        directions = client.get(f"/api/v1/orgs/{slug}/metrics/directions?" + urlencode(query)).get_json()
        assert_same(directions["data"], for_display(expected["directions"]), "directions")
        heatmap = client.get(f"/api/v1/orgs/{slug}/metrics/heatmap?" + urlencode(query)).get_json()
        assert_same(heatmap["data"], for_display(expected["heatmap"]), "heatmap")
        outbound = client.get(f"/api/v1/orgs/{slug}/metrics/outbound?" + urlencode(query)).get_json()
        assert_same(outbound["metrics"], for_display(expected["outbound"]["totals"]), "outbound")
        assert_same(outbound["agents"], for_display(expected["outbound"]["agents"]), "outbound agents")

        series = client.get(f"/api/v1/orgs/{slug}/metrics/series?" + urlencode({**query, "bucket": bucket}))
        buckets = series.get_json()["data"]
        by_key = {}
        for row in expected["rows"]:
            by_key.setdefault(bucket_key(row[0], bucket, window.tz), []).append(row)
        for b in buckets:
            start = datetime.fromisoformat(b["start"].replace("Z", "+00:00"))
            figures = {k: v for k, v in b.items() if k not in ("start", "end", "start_local")}
            assert_same(
                figures,
                for_display(expected["kpis"](by_key.get(bucket_key(start, bucket, window.tz), []))),
                f"series {b['start']}",
            )
