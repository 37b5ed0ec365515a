"""The integration and sync commands, against a simulator, with jobs inline."""

from __future__ import annotations

import threading
import time

from sqlalchemy import select

from tests.jobs.helpers import API_KEY, USER_KEY, W0, W1, assert_matches_truth, get_run, serve
from vsync.extensions import db
from vsync.models import AuditEvent, Integration, SyncRun
from vsync.tenancy import platform_bypass


def run(app, *args):
    return app.test_cli_runner().invoke(args=list(args))


def test_add_integration_stores_credentials_encrypted_and_shows_the_webhook_token_once(inline_app):
    assert run(inline_app, "create-org", "Acme", "--slug", "acme").exit_code == 0
    result = run(
        inline_app,
        "add-integration",
        "acme",
        "--api-key",
        API_KEY,
        "--user-key",
        USER_KEY,
        "--base-url",
        "http://127.0.0.1:9/v4",
    )
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1]
    with inline_app.app_context(), platform_bypass("test"):
        integration = db.session.scalar(select(Integration))
        stored = " ".join(str(v) for v in (integration.credentials_encrypted, integration.webhook_token_hash))
        audit = " ".join(e.summary or "" for e in db.session.scalars(select(AuditEvent)))
    for secret in (API_KEY, USER_KEY, token):
        assert secret not in stored and secret not in audit


def test_add_integration_refuses_a_bad_base_url(inline_app):
    run(inline_app, "create-org", "Acme", "--slug", "acme")
    result = run(inline_app, "add-integration", "acme", "--api-key", "k", "--user-key", "u", "--base-url", "ftp://x")
    assert result.exit_code == 2 and "error (base_url)" in result.output


def test_test_connection_reports_numbers_or_the_providers_reason(inline_app):
    with serve() as sim_server:
        run(inline_app, "create-org", "Acme", "--slug", "acme")
        run(
            inline_app,
            "add-integration",
            "acme",
            "--api-key",
            API_KEY,
            "--user-key",
            USER_KEY,
            "--base-url",
            sim_server.base_url,
        )
        ok = run(inline_app, "test-connection", "acme")
        assert ok.exit_code == 0 and f"{len(sim_server.simulator.phone_numbers())} number(s)" in ok.output
        run(inline_app, "create-org", "Globex", "--slug", "globex")
        run(
            inline_app,
            "add-integration",
            "globex",
            "--api-key",
            API_KEY,
            "--user-key",
            "wrong",
            "--base-url",
            sim_server.base_url,
        )
        bad = run(inline_app, "test-connection", "globex")
        assert bad.exit_code == 3 and "MightyCall connection failed" in bad.output and "wrong" not in bad.output


def test_sync_with_wait_shows_a_summary_and_sync_runs_lists_them(inline_app):
    with serve() as sim_server:
        run(inline_app, "create-org", "Acme", "--slug", "acme")
        run(
            inline_app,
            "add-integration",
            "acme",
            "--api-key",
            API_KEY,
            "--user-key",
            USER_KEY,
            "--base-url",
            sim_server.base_url,
        )
        result = run(inline_app, "sync", "acme", "--since", W0.isoformat(), "--until", W1.isoformat(), "--wait")
        assert result.exit_code == 0, result.output
        calls = len(sim_server.simulator.calls_between(W0, W1))
        assert "calls: succeeded in" in result.output and f"{calls} new" in result.output
        for kind in ("numbers", "agents", "sms"):
            assert f"{kind}: succeeded in" in result.output
        with inline_app.app_context(), platform_bypass("test"):
            integration_id = db.session.scalar(select(Integration.id))
        assert_matches_truth(inline_app, sim_server, integration_id)
        listing = run(inline_app, "sync-runs", "acme")
        assert listing.exit_code == 0 and listing.output.count("succeeded") == 4


def test_sync_with_a_backwards_window_is_refused_before_any_run_is_recorded(inline_app):
    with serve() as sim_server:
        run(inline_app, "create-org", "Acme", "--slug", "acme")
        run(
            inline_app,
            "add-integration",
            "acme",
            "--api-key",
            API_KEY,
            "--user-key",
            USER_KEY,
            "--base-url",
            sim_server.base_url,
        )
        result = run(inline_app, "sync", "acme", "--since", W1.isoformat(), "--until", W0.isoformat())
        assert result.exit_code != 0 and "must come before until" in result.output
        numbers = run(inline_app, "sync", "acme", "--kind", "numbers", "--since", W0.isoformat())
        assert numbers.exit_code != 0 and "takes no since or until" in numbers.output
        with inline_app.app_context(), platform_bypass("test"):
            assert db.session.query(SyncRun).count() == 0
        assert sim_server.simulator.requests.total() == 0


def test_sync_with_wait_exits_1_when_a_run_fails(inline_app):
    with serve() as sim_server:
        run(inline_app, "create-org", "Acme", "--slug", "acme")
        run(
            inline_app,
            "add-integration",
            "acme",
            "--api-key",
            API_KEY,
            "--user-key",
            "wrong",
            "--base-url",
            sim_server.base_url,
        )
        result = run(inline_app, "sync", "acme", "--kind", "numbers", "--wait")
        assert result.exit_code == 1 and "numbers: failed" in result.output


def test_demo_connects_each_org_to_its_simulator_and_syncs_30_days(inline_app):
    from vsync.mightycall.simulator import SimulatorServer  # the demo uses the simulator's own credentials

    with SimulatorServer(seed=1, calls_per_day=40) as first, SimulatorServer(seed=2, calls_per_day=40) as second:
        result = run(inline_app, "demo", "--simulator", first.base_url, "--simulator", second.base_url)
        assert result.exit_code == 0, result.output
        assert result.output.count("calls: succeeded") == 2
        again = run(inline_app, "demo", "--simulator", first.base_url, "--simulator", second.base_url)
        assert again.exit_code == 0
        synced = run(inline_app, "demo-sync")  # what `make run` repeats every few minutes
        assert synced.exit_code == 0 and synced.output.count("calls: succeeded") == 2, synced.output
        with inline_app.app_context(), platform_bypass("test"):
            assert db.session.query(Integration).count() == 2
            assert db.session.query(SyncRun).filter(SyncRun.status != "succeeded").count() == 0


def test_a_run_given_up_on_stops_writing_and_never_claims_success(inline_app):
    """The reaper marks a slow-but-alive run failed; its worker must notice at its next page."""
    from tests.jobs.helpers import connect, sync

    with serve() as sim_server:
        org_id, integration_id = connect(inline_app, "acme", sim_server)
        sim_server.simulator.faults.add("calls", "slow", times=None, seconds=0.3)
        worker = threading.Thread(target=sync, args=(inline_app, org_id, integration_id))
        worker.start()
        with inline_app.app_context(), platform_bypass("test"):
            while not (db.session.scalar(select(SyncRun.pages)) or 0) >= 1:
                db.session.rollback()
                time.sleep(0.05)
            run_row = db.session.scalar(select(SyncRun))
            run_row.status, run_row.error = "failed", "given up by the test"
            db.session.commit()
            run_id = run_row.id
        worker.join(30)
        final = get_run(inline_app, run_id)
        assert final.status == "failed" and final.error == "given up by the test"
        assert final.pages <= 2
