"""Helpers of the jobs tests, imported by their modules and fixtures."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from vsync import crypto
from vsync.extensions import db
from vsync.mightycall.parsing import parse_call
from vsync.mightycall.simulator import SimulatorServer
from vsync.models import Call, Integration, PhoneNumber, SyncRun
from vsync.phones import try_e164
from vsync.services import orgs
from vsync.services.sync import start_sync
from vsync.tenancy import platform_bypass, tenant

W0 = datetime(2026, 11, 10, tzinfo=UTC)


W1 = datetime(2026, 11, 13, tzinfo=UTC)


API_KEY, USER_KEY = "sim_server-api-key-7f3Qx", "sim_server-user-key-Zr82k"


FAST = {
    "VSYNC_MIGHTYCALL_TIMEOUT": (1.0, 1.0),
    "VSYNC_MIGHTYCALL_BACKOFF": (0.01, 0.05),
    "VSYNC_MIGHTYCALL_MAX_RETRIES": 4,
    "VSYNC_SYNC_PAGE_SIZE": 100,
    "VSYNC_SYNC_RETRY_INTERVALS": [0, 0, 0],
}


def serve(seed: int = 7, calls_per_day: float = 150, **options) -> SimulatorServer:
    return SimulatorServer(seed=seed, calls_per_day=calls_per_day, api_key=API_KEY, user_key=USER_KEY, **options)


def connect(app, slug: str, server: SimulatorServer, *, user_key: str = USER_KEY) -> tuple[int, int]:
    """An org and its integration pointing at `server`; returns (org id, integration id)."""
    from vsync.services.integrations import create_integration

    with app.app_context(), platform_bypass("test setup"):
        org = orgs.create_org(slug.title(), slug, "UTC")
        integration, _ = create_integration(org, api_key=API_KEY, user_key=user_key, base_url=server.base_url)
        db.session.commit()
        return org.id, integration.id


def sync(app, org_id: int, integration_id: int, kind: str = "calls", since=W0, until=W1) -> SyncRun:
    """Start a sync as an org member would (inside the org's scope); returns the run, detached."""
    with app.app_context(), tenant(org_id):
        integration = db.session.get(Integration, integration_id)
        run, _ = start_sync(
            integration,
            kind,
            since=since if kind in ("calls", "sms") else None,
            until=until if kind in ("calls", "sms") else None,
        )
        db.session.refresh(run)
        db.session.expunge(run)
        return run


def get_run(app, run_id: int) -> SyncRun:
    with app.app_context(), platform_bypass("test"):
        run = db.session.get(SyncRun, run_id)
        db.session.expunge(run)
        return run


def stored_calls(app, integration_id: int) -> list[dict]:
    with app.app_context(), platform_bypass("test"):
        rows = db.session.execute(
            select(Call, PhoneNumber.e164)
            .join(PhoneNumber, PhoneNumber.id == Call.phone_number_id)
            .join(Integration, Integration.account_id == Call.account_id)
            .where(Integration.id == integration_id)
        ).all()
        return [
            {
                "external_id": c.external_id,
                "e164": e164,
                "direction": c.direction,
                "status": c.status,
                "from_number": c.from_number,
                "to_number": c.to_number,
                "started_at": c.started_at,
                "duration_ms": c.duration_ms,
                "agent_extension": c.agent_extension,
                "raw": c.raw,
                "synced_at": c.synced_at,
            }
            for c, e164 in rows
        ]


def assert_matches_truth(app, server: SimulatorServer, integration_id: int, start=W0, end=W1) -> None:
    """Stored calls are exactly the simulator's calls of [start, end): same ids, fields and count."""
    truth = server.simulator.calls_between(start, end)
    stored = stored_calls(app, integration_id)
    assert len(stored) == len({row["external_id"] for row in stored}), "a call is stored twice"
    by_id = {row["external_id"]: row for row in stored}
    assert set(by_id) == {raw["id"] for raw in truth}
    for raw in truth:
        expected, row = parse_call(raw), by_id[raw["id"]]
        assert row["raw"] == raw
        assert row["e164"] == try_e164(expected.business_number)
        for name in ("direction", "status", "from_number", "to_number", "started_at", "duration_ms", "agent_extension"):
            assert row[name] == getattr(expected, name), (raw["id"], name)


def assert_subset_of_truth(app, server: SimulatorServer, integration_id: int) -> None:
    """Whatever a failed run left is true and whole: no duplicates, no row the provider lacks."""
    truth = {raw["id"]: raw for raw in server.simulator.calls_between(W0, W1)}
    stored = stored_calls(app, integration_id)
    assert len(stored) == len({row["external_id"] for row in stored})
    for row in stored:
        assert row["raw"] == truth[row["external_id"]]


def decrypted_token(app, integration_id: int) -> str | None:
    with app.app_context(), platform_bypass("test"):
        stored = db.session.get(Integration, integration_id).access_token_encrypted
        return crypto.decrypt_json(stored)["access_token"] if stored else None
