"""Smoke test of the embedded default: SQLite, inline jobs, demo data, a working sign-in."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta

import time_machine
from cryptography.fernet import Fernet
from flask_migrate import upgrade
from sqlalchemy import select

from vsync import create_app
from vsync.extensions import db
from vsync.mightycall.simulator import SimulatorServer
from vsync.models import Call
from vsync.services.demo import DEMO_PASSWORD, PLATFORM_ADMIN_EMAIL
from vsync.tenancy import platform_bypass

# The clock is an input: at this instant the demo admins' first digests (at local midnight) are due,
# and the other members' (at the default 08:00) are not yet in either demo org's zone (New York 01:20,
# London 06:20).
NOW = datetime(2026, 6, 10, 5, 20, tzinfo=UTC)


def test_embedded_default_migrates_syncs_the_demo_and_signs_in_the_platform_admin(tmp_path, monkeypatch):
    with time_machine.travel(NOW, tick=True):
        embedded_default(tmp_path, monkeypatch)


def embedded_default(tmp_path, monkeypatch) -> None:
    for name in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "VSYNC_ENCRYPTION_KEYS", "VSYNC_ENV"):
        monkeypatch.delenv(name, raising=False)
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'vsync.db'}",
            "SECRET_KEY": "embedded-test",
            "VSYNC_ENCRYPTION_KEYS": [Fernet.generate_key().decode()],
            "MAIL_FILE_PATH": str(tmp_path / "outbox"),
        }
    )
    assert app.config["REDIS_URL"] is None
    with app.app_context():
        upgrade()
    # The demo syncs the 30 days before the moment it runs; a week ending two days before this test
    # began lies inside them on any date, at any hour.
    since = datetime.combine(datetime.now(UTC).date() - timedelta(days=9), time(), UTC)
    until = since + timedelta(days=7)
    with SimulatorServer(seed=1, calls_per_day=60) as simulator:
        result = app.test_cli_runner().invoke(args=["demo", "--simulator", simulator.base_url])
        assert result.exit_code == 0, result.output
        assert "calls: succeeded" in result.output
        again = app.test_cli_runner().invoke(
            args=[
                "sync",
                "acme",
                "--kind",
                "calls",
                "--since",
                f"{since:%Y-%m-%d}",
                "--until",
                f"{until:%Y-%m-%d}",
                "--wait",
            ]
        )
        assert again.exit_code == 0, again.output
        assert re.search(r" fetched, 0 new, 0 updated,", again.output), again.output  # idempotent on SQLite too
        truth = simulator.simulator.calls_between(since, until)
    with app.app_context(), platform_bypass("test"):
        stored = set(db.session.scalars(select(Call.external_id)))
    assert truth and {raw["id"] for raw in truth} <= stored

    # What `make run` runs every minute: the demo admins' first daily digest is due at once, at any hour.
    due = app.test_cli_runner().invoke(args=["send-due-notifications"])
    assert due.exit_code == 0 and f"written to {tmp_path / 'outbox'}" in due.output, due.output
    subjects = [path.read_text().split("Subject: ")[1].splitlines()[0] for path in (tmp_path / "outbox").glob("*.eml")]
    digests = sorted(subject.split(":")[0] for subject in subjects if "your daily calls digest" in subject)
    assert digests == ["Acme Dental", "Globex Logistics"], subjects

    client = app.test_client()
    assert client.get("/api/v1/health").get_json() == {"status": "ok", "database": "ok", "queue": "inline"}
    assert client.get("/").headers["Location"] == "/login?next=/"  # the URL `make run` prints leads somewhere
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', client.get("/login").get_data(as_text=True))
    response = client.post(
        "/login", data={"email": PLATFORM_ADMIN_EMAIL, "password": DEMO_PASSWORD, "csrf_token": token.group(1)}
    )
    assert response.status_code == 302
    assert client.get("/").headers["Location"] == "/admin/"
    assert "platform admin" in client.get("/admin/").get_data(as_text=True)
    with app.app_context():
        db.engine.dispose()
