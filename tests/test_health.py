"""GET /api/v1/health checks the real database and the real Redis."""

from __future__ import annotations

from tests.helpers import app_config
from vsync import create_app


def test_health_is_ok_with_database_and_redis_up(client):
    response = client.get("/api/v1/health")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok", "queue": "ok"}


def test_health_is_degraded_503_when_redis_is_unreachable():
    app = create_app(app_config(REDIS_URL="redis://127.0.0.1:1/0"))
    response = app.test_client().get("/api/v1/health")
    assert response.status_code == 503
    assert response.get_json() == {"status": "degraded", "database": "ok", "queue": "unavailable"}


def test_health_is_degraded_503_when_the_database_is_unreachable():
    app = create_app(app_config(SQLALCHEMY_DATABASE_URI="postgresql://postgres@127.0.0.1:1/none"))
    response = app.test_client().get("/api/v1/health")
    assert response.status_code == 503
    assert response.get_json()["database"] == "unavailable"


def test_health_reports_inline_jobs_without_redis():
    app = create_app(app_config(REDIS_URL=None))
    assert app.test_client().get("/api/v1/health").get_json()["queue"] == "inline"


def test_health_echoes_a_request_id(client):
    response = client.get("/api/v1/health", headers={"X-Request-ID": "abc-123"})
    assert response.headers["X-Request-ID"] == "abc-123"
