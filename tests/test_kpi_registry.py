"""The KPI registry (`vsync.metrics.FIGURES`) against every output built from it: the engine's
answers through the API per breakdown, the OpenAPI schemas, the dashboard's data and tiles, and the
reference page. A figure added to the registry and missing from one of them fails here, and so does
an output naming a figure the registry lacks."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import insert

from tests.factories import account_of
from tests.world import A_ONLY, T, api_as
from vsync import metrics
from vsync.admin.dashboard import OUTBOUND_TILES, TILES, WAIT_TILES
from vsync.extensions import db
from vsync.metrics import (
    BREAKDOWNS,
    FIGURES,
    HEATMAP,
    OUTBOUND,
    OUTBOUND_PER_AGENT,
    PER_AGENT,
    PER_DIRECTION,
    PER_NUMBER,
    SERIES,
    TOTALS,
    figures,
)
from vsync.models import Call
from vsync.tenancy import platform_bypass

WINDOW = {"from": "2026-11-01", "to": "2026-11-03"}
# What a row carries besides its figures: the window bucket, the agent, the number.
ROW_KEYS = {
    TOTALS: set(),
    SERIES: {"start", "end", "start_local"},
    PER_AGENT: {"extension", "display_name"},
    PER_NUMBER: {"phone_number_id", "e164", "label"},
    PER_DIRECTION: {"direction"},
    HEATMAP: {"weekday", "hour"},
    OUTBOUND: set(),
    OUTBOUND_PER_AGENT: {"extension", "display_name"},
}
SCHEMAS = {
    TOTALS: "MetricsValues",
    SERIES: "SeriesBucket",
    PER_AGENT: "AgentRow",
    PER_NUMBER: "NumberRow",
    PER_DIRECTION: "DirectionRow",
    HEATMAP: "HeatmapCell",
    OUTBOUND: "OutboundValues",
    OUTBOUND_PER_AGENT: "OutboundAgentRow",
}
ROUTES = {
    TOTALS: ("metrics", lambda body: [body["metrics"]]),
    SERIES: ("metrics/series", lambda body: body["data"]),
    PER_AGENT: ("metrics/agents", lambda body: body["data"]),
    PER_NUMBER: ("metrics/numbers", lambda body: body["data"]),
    PER_DIRECTION: ("metrics/directions", lambda body: body["data"]),
    HEATMAP: ("metrics/heatmap", lambda body: body["data"]),
    OUTBOUND: ("metrics/outbound", lambda body: [body["metrics"]]),
    OUTBOUND_PER_AGENT: ("metrics/outbound", lambda body: body["agents"]),
}


def _names(breakdown: str) -> set[str]:
    return {figure.name for figure in figures(breakdown)}


def test_every_figure_is_in_a_breakdown_and_says_how_it_is_computed():
    for figure in FIGURES.values():
        assert figure.breakdowns and figure.breakdowns <= set(BREAKDOWNS), figure.name
        assert figure.label and figure.description, figure.name
        if figure.value is None:
            assert callable(getattr(metrics, figure.computed_by or "", None)), figure.name
        else:
            assert figure.computed_by is None, figure.name


@pytest.mark.parametrize("breakdown", BREAKDOWNS)
def test_the_openapi_schema_of_each_breakdown_describes_exactly_its_figures(client, breakdown):
    schema = client.get("/api/v1/openapi.json").get_json()["components"]["schemas"][SCHEMAS[breakdown]]
    assert set(schema["properties"]) - ROW_KEYS[breakdown] == _names(breakdown)
    for figure in figures(breakdown):
        field = schema["properties"][figure.name]
        assert field["description"] == figure.description
        assert ("integer" if figure.unit.integer else "number") in field["type"], figure.name


@pytest.fixture
def outbound_call(app, world):
    """An outbound call of org A's agent in the window: the world's calls are all inbound."""
    with app.app_context(), platform_bypass("test setup"):
        db.session.execute(
            insert(Call.__table__).values(
                account_id=account_of(world.integrations["a"]),
                phone_number_id=world.numbers[A_ONLY],
                external_id="a-outbound",
                direction="outbound",
                status="answered",
                started_at=T,
                duration_ms=90_000,
                agent_extension="101",
                raw={},
            )
        )
        db.session.commit()


@pytest.mark.parametrize("breakdown", BREAKDOWNS)
def test_the_api_answers_each_breakdown_with_exactly_its_figures(client, world, outbound_call, breakdown):
    api_as(client, "admin_a", world)
    path, rows_of = ROUTES[breakdown]
    rows = rows_of(client.get(f"/api/v1/orgs/org-a/{path}", query_string=WINDOW).get_json())
    assert rows
    for row in rows:
        assert set(row) - ROW_KEYS[breakdown] == _names(breakdown)


def test_the_dashboard_reaches_every_figure_and_its_tiles_name_registry_figures(client, world, outbound_call):
    api_as(client, "admin_a", world)
    data = client.get("/admin/orgs/org-a/data", query_string=WINDOW).get_json()
    assert set(data["metrics"]) == _names(TOTALS)
    assert set(data["by_agent"][0]) - ROW_KEYS[PER_AGENT] == _names(PER_AGENT)
    assert set(data["by_number"][0]) - ROW_KEYS[PER_NUMBER] == _names(PER_NUMBER)
    assert set(data["by_direction"][0]) - ROW_KEYS[PER_DIRECTION] == _names(PER_DIRECTION)
    assert set(data["heatmap"][0]) - ROW_KEYS[HEATMAP] == _names(HEATMAP)
    assert set(data["outbound"]) == _names(OUTBOUND)
    assert set(data["outbound_agents"][0]) - ROW_KEYS[OUTBOUND_PER_AGENT] == _names(OUTBOUND_PER_AGENT)
    assert set(FIGURES) == set().union(*(_names(breakdown) for breakdown in BREAKDOWNS))
    page = client.get("/admin/orgs/org-a/", query_string=WINDOW).get_data(as_text=True)
    shown = set(re.findall(r'data-scope="(?:metrics|today)" data-kpi="(\w+)"', page))
    assert {figure.name for figure in TILES} <= shown <= {figure.name for figure in TILES + WAIT_TILES}
    assert set(re.findall(r'data-scope="outbound" data-kpi="(\w+)"', page)) == {f.name for f in OUTBOUND_TILES}
    assert all(FIGURES[figure.name] is figure for figure in TILES + WAIT_TILES + OUTBOUND_TILES)


def test_the_reference_page_lists_exactly_the_registry_figures_with_their_definitions(client):
    page = client.get("/api/v1/docs").get_data(as_text=True)
    table = page.split('<h2 id="kpis">', 1)[1].split("</table>", 1)[0]
    assert re.findall(r"<tr><td><code>(\w+)</code></td>", table) == list(FIGURES)
    for figure in FIGURES.values():
        assert f"<td>{figure.label}</td><td>{figure.unit.name}</td>" in table, figure.name
