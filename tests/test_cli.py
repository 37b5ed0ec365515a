"""The flask commands: each calls one domain function, writes the audit log as `cli`, and fails
with one line and an exit code that says what kind of failure it was (2 input, 1 operation, 3 MightyCall)."""

from __future__ import annotations

import re
import threading
import time

import pytest
from cryptography.fernet import Fernet
from rq import SimpleWorker
from sqlalchemy import func, select

from tests.factories import make_integration, make_org
from tests.helpers import app_config
from vsync import create_app, crypto
from vsync.auth.keys import verify_api_key
from vsync.extensions import db
from vsync.mightycall.simulator import SimulatorServer
from vsync.models import (
    ApiKey,
    AuditEvent,
    Call,
    Integration,
    Membership,
    NumberAssignment,
    Organization,
    PhoneNumber,
    SyncRun,
    User,
)
from vsync.queue import rq_queue
from vsync.services import members
from vsync.tenancy import platform_bypass

# MightyCall settings that keep a refused or unreachable account from retrying for long.
QUICK_MIGHTYCALL = {
    "VSYNC_MIGHTYCALL_TIMEOUT": (1.0, 2.0),
    "VSYNC_MIGHTYCALL_BACKOFF": (0.01, 0.05),
    "VSYNC_SYNC_RETRY_INTERVALS": [0],
}


@pytest.fixture(scope="module")
def embedded_app(app):
    """Jobs inline (no Redis), as in the embedded default, on the test database."""
    return create_app(app_config(REDIS_URL=None, **QUICK_MIGHTYCALL))


def run(runner, *args):
    return runner.invoke(args=list(args), catch_exceptions=False)


def count(app, model, *where) -> int:
    with app.app_context(), platform_bypass("test"):
        return db.session.scalar(select(func.count()).select_from(model).where(*where))


def audit_actions(app) -> list[str]:
    with app.app_context(), platform_bypass("test"):
        return list(db.session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


def audit_actors(app) -> set[str]:
    with app.app_context(), platform_bypass("test"):
        return set(db.session.scalars(select(AuditEvent.actor)))


def one_line_error(result, exit_code: int, *fragments: str) -> None:
    assert result.exit_code == exit_code, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error"), result.output
    for fragment in fragments:
        assert fragment in lines[0]


def test_setup_commands_build_an_org_and_audit_every_step(app, runner):
    assert run(runner, "create-platform-admin", "root@p.test", "--password", "long enough pw").exit_code == 0
    assert run(runner, "create-org", "Acme", "--slug", "acme", "--timezone", "America/New_York").exit_code == 0
    assert run(runner, "add-member", "acme", "ann@acme.test", "--role", "manager", "--extension", "101").exit_code == 0
    assert run(runner, "add-number", "+1 (212) 555-0148", "--label", "Front desk").exit_code == 0
    assert run(runner, "assign-number", "acme", "+12125550148", "--at", "2026-01-01T00:00:00Z").exit_code == 0
    assert run(runner, "unassign-number", "acme", "+12125550148", "--at", "2026-06-01").exit_code == 0
    assert count(app, Membership, Membership.extension == "101") == 1
    assert count(app, PhoneNumber, PhoneNumber.e164 == "+12125550148") == 1
    assert count(app, NumberAssignment, NumberAssignment.unassigned_at.is_not(None)) == 1
    assert audit_actions(app) == [
        "user.created",
        "org.created",
        "user.created",
        "member.added",
        "number.added",
        "number.assigned",
        "number.unassigned",
    ]
    assert audit_actors(app) == {"cli"}


def test_create_api_key_prints_the_key_alone_on_the_last_line(app, runner):
    run(runner, "create-org", "Acme", "--slug", "acme")
    result = run(runner, "create-api-key", "acme", "--name", "dashboard", "--scope", "write")
    assert result.exit_code == 0
    key = result.output.strip().splitlines()[-1]
    with app.app_context():
        principal = verify_api_key(key)
    assert principal.scopes == ("read", "write") and principal.org_id is not None
    assert key not in "".join(audit_actions(app))


def test_revoke_api_key_stops_the_key(app, runner):
    key = run(runner, "create-api-key", "--platform", "--name", "ops").output.strip().splitlines()[-1]
    with app.app_context(), platform_bypass("test"):
        key_id = db.session.scalar(select(ApiKey.id))
    assert run(runner, "revoke-api-key", str(key_id)).exit_code == 0
    with app.app_context():
        assert verify_api_key(key) is None


@pytest.mark.parametrize(
    "args,message",
    [
        (("create-org", "Acme", "--slug", "Not A Slug"), "error (slug)"),
        (("create-org", "Acme", "--slug", "acme", "--timezone", "Mars/Olympus"), "error (timezone)"),
        (("add-number", "12345"), "error (number)"),
        (("add-number", "+1 212 000 0000"), "error (number)"),
        (("assign-number", "nope", "+12125550148"), "error (slug)"),
        (("add-member", "nope", "x@y.test", "--role", "agent"), "error (slug)"),
        (("create-api-key", "--name", "x"), "error (org_slug)"),
        (("create-platform-admin", "root@p.test", "--password", "short"), "error (password)"),
        (("revoke-api-key", "999"), "error (key_id)"),
    ],
)
def test_bad_arguments_exit_2_with_one_line_and_write_nothing(app, runner, args, message):
    one_line_error(runner.invoke(args=list(args)), 2, message)
    assert count(app, Organization) == 0 and count(app, User) == 0 and audit_actions(app) == []


@pytest.mark.parametrize(
    "args,fragment",
    [
        (("add-member", "acme", "x@y.test", "--role", "boss"), "--role"),
        (("add-member", "acme", "x@y.test"), "--role"),
        (("create-api-key", "--platform", "--name", "x", "--scope", "admin"), "--scope"),
        (("sync", "acme", "--kind", "everything"), "--kind"),
        (("sync", "acme", "--integration", "first"), "--integration"),
        (("sync-runs", "acme", "--limit", "many"), "--limit"),
    ],
)
def test_a_bad_option_is_one_line_not_the_usage_text(app, runner, args, fragment):
    one_line_error(runner.invoke(args=list(args)), 2, fragment)


@pytest.mark.parametrize("limit", ["-1", "0", "1001"])
def test_sync_runs_refuses_a_limit_outside_1_to_1000(app, runner, limit):
    run(runner, "create-org", "Acme", "--slug", "acme")
    one_line_error(runner.invoke(args=["sync-runs", "acme", "--limit", limit]), 2, "error (limit)", "1000")


def test_assigning_a_number_twice_is_a_conflict(app, runner):
    run(runner, "create-org", "Acme", "--slug", "acme")
    run(runner, "add-number", "+12125550148")
    assert run(runner, "assign-number", "acme", "+12125550148").exit_code == 0
    result = runner.invoke(args=["assign-number", "acme", "+12125550148"])
    assert result.exit_code == 2 and "already" in result.output


def test_demo_is_idempotent_without_simulators(app, runner):
    first = run(runner, "demo")
    assert first.exit_code == 0 and "admin@vsync.demo" in first.output
    counts = [count(app, m) for m in (Organization, User, Membership, PhoneNumber, NumberAssignment)]
    assert run(runner, "demo").exit_code == 0
    assert [count(app, m) for m in (Organization, User, Membership, PhoneNumber, NumberAssignment)] == counts
    assert counts[0] == 2


def test_demo_gives_each_org_an_admin_a_manager_and_an_agent_with_an_extension(app, runner):
    output = run(runner, "demo").output
    assert "manager@globex.demo / vsync-demo-password" in output and "agent@acme.demo" in output
    with app.app_context(), platform_bypass("test"):
        roles = db.session.execute(
            select(Organization.slug, User.email, Membership.role, Membership.extension)
            .join(Membership, Membership.org_id == Organization.id)
            .join(User, User.id == Membership.user_id)
        ).all()
    assert sorted(roles) == [
        ("acme", "agent@acme.demo", "agent", "101"),
        ("acme", "manager@acme.demo", "manager", None),
        ("acme", "owner@acme.demo", "org_admin", None),
        ("globex", "agent@globex.demo", "agent", "101"),
        ("globex", "manager@globex.demo", "manager", None),
        ("globex", "owner@globex.demo", "org_admin", None),
    ]


def test_demo_is_refused_in_production(app):
    production = create_app(app_config(VSYNC_ENV="production"))
    one_line_error(production.test_cli_runner().invoke(args=["demo"]), 2, "production")
    assert count(app, Organization) == 0 and count(app, User) == 0


def test_rotate_encryption_keys_reencrypts_under_the_newest_key(app, runner):
    with app.app_context():
        integration_id = make_integration(make_org("acme"), api_key="secret-api-key")
    new_key = Fernet.generate_key().decode()
    rotated = create_app(app_config(VSYNC_ENCRYPTION_KEYS=[new_key, *app.config["VSYNC_ENCRYPTION_KEYS"]]))
    assert rotated.test_cli_runner().invoke(args=["rotate-encryption-keys"]).exit_code == 0
    only_new = create_app(app_config(VSYNC_ENCRYPTION_KEYS=[new_key]))
    with only_new.app_context(), platform_bypass("test"):
        stored = db.session.get(Integration, integration_id).credentials_encrypted
        assert crypto.decrypt_json(stored)["api_key"] == "secret-api-key"


def test_commands_on_an_org_with_several_integrations_name_the_ids_until_one_is_chosen(app, embedded_app):
    with app.app_context():
        org_id = make_org("acme")
        first = make_integration(org_id, base_url="http://127.0.0.1:9/v4")
    cli = embedded_app.test_cli_runner()
    assert (
        run(
            cli, "add-integration", "acme", "--api-key", "k", "--user-key", "u", "--base-url", "http://127.0.0.1:9/v4"
        ).exit_code
        == 0
    )
    with app.app_context(), platform_bypass("test"):
        second = db.session.scalar(select(Integration.id).where(Integration.id != first))
    for command in ("sync", "test-connection"):
        one_line_error(cli.invoke(args=[command, "acme"]), 2, "error (integration)", f"ids {first}, {second}")
    one_line_error(cli.invoke(args=["sync", "acme", "--integration", "999"]), 2, "no integration 999")
    assert count(app, SyncRun) == 0
    chosen = cli.invoke(args=["test-connection", "acme", "--integration", str(second)])
    one_line_error(chosen, 3, "MightyCall connection failed")
    with app.app_context(), platform_bypass("test"):
        tested = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "integration.tested"))
        assert tested.target_id == str(second) and tested.actor == "cli"


def test_an_unreachable_mightycall_exits_3_and_a_failed_run_exits_1(app, embedded_app):
    with app.app_context():
        make_integration(make_org("acme"), base_url="http://127.0.0.1:9/v4")
    cli = embedded_app.test_cli_runner()
    one_line_error(cli.invoke(args=["test-connection", "acme"]), 3, "MightyCall connection failed")
    waited = cli.invoke(args=["sync", "acme", "--kind", "numbers", "--wait"])
    assert waited.exit_code == 1, waited.output
    assert "numbers: failed" in waited.output and waited.output.strip().endswith("1 of 1 sync run(s) failed.")


def test_a_window_for_a_kind_that_takes_none_is_refused_before_anything_is_written(app, embedded_app):
    with app.app_context():
        make_integration(make_org("acme"))
    result = embedded_app.test_cli_runner().invoke(args=["sync", "acme", "--kind", "numbers", "--since", "2026-11-01"])
    one_line_error(result, 2, "takes no since or until")
    assert count(app, SyncRun) == 0


def test_sync_wait_without_redis_reports_each_runs_own_duration_window_and_counts(app, embedded_app):
    with SimulatorServer(seed=3, calls_per_day=200) as simulator:
        with app.app_context():
            make_integration(
                make_org("acme"),
                base_url=simulator.base_url,
                api_key=simulator.simulator.api_key,
                user_key=simulator.simulator.user_key,
            )
        simulator.simulator.faults.add("calls", "slow", times=None, seconds=0.2)
        result = run(
            embedded_app.test_cli_runner(),
            "sync",
            "acme",
            "--kind",
            "calls",
            "--since",
            "2026-11-10",
            "--until",
            "2026-11-12",
            "--wait",
        )
    with app.app_context(), platform_bypass("test"):
        sync_run = db.session.scalar(select(SyncRun))
        took = (sync_run.finished_at - sync_run.started_at).total_seconds()
    summary = re.search(
        r"calls: succeeded in ([0-9.]+)s \(2026-11-10 00:00 to 2026-11-12 00:00 UTC\): "
        r"(\d+) fetched, (\d+) new",
        result.output,
    )
    assert summary, result.output
    assert took >= 0.4 and float(summary.group(1)) == pytest.approx(took, abs=0.05)
    assert int(summary.group(3)) == sync_run.inserted > 0

    listing = run(embedded_app.test_cli_runner(), "sync-runs", "acme")
    header, row = listing.output.strip().splitlines()
    for column in ("window", "done", "took", "fetched", "new"):
        assert column in header
    assert "2026-11-10 00:00 → 2026-11-12 00:00" in row and "100%" in row and f"{took:.1f}s" in row


def test_demo_loaded_again_with_moved_simulators_repoints_its_integrations(app, embedded_app):
    cli = embedded_app.test_cli_runner()
    with SimulatorServer(seed=1, calls_per_day=30) as first, SimulatorServer(seed=2, calls_per_day=30) as second:
        assert run(cli, "demo", "--simulator", first.base_url, "--simulator", second.base_url).exit_code == 0
    calls_before = count(app, Call)
    with SimulatorServer(seed=1, calls_per_day=30) as first, SimulatorServer(seed=2, calls_per_day=30) as second:
        again = run(cli, "demo", "--simulator", first.base_url, "--simulator", second.base_url)
        assert again.exit_code == 0, again.output
        assert again.output.count("calls: succeeded") == 2
        with app.app_context(), platform_bypass("test"):
            urls = db.session.execute(
                select(Organization.slug, Integration.base_url).join(Integration, Integration.org_id == Organization.id)
            ).all()
            external_ids = list(db.session.scalars(select(Call.external_id)))
        assert sorted(urls) == [("acme", first.base_url), ("globex", second.base_url)]
        assert calls_before > 0 and len(external_ids) == len(set(external_ids)) >= calls_before
        assert run(cli, "sync", "acme", "--kind", "numbers").exit_code == 0
    assert "integration.updated" in audit_actions(app) and audit_actors(app) == {"cli"}


def test_sync_wait_follows_a_queued_run_until_a_worker_finishes_it(app, runner):
    with SimulatorServer(seed=4, calls_per_day=100) as simulator:
        with app.app_context():
            make_integration(
                make_org("acme"),
                base_url=simulator.base_url,
                api_key=simulator.simulator.api_key,
                user_key=simulator.simulator.user_key,
            )
        results = []
        waiting = threading.Thread(
            target=lambda: results.append(
                runner.invoke(
                    args=["sync", "acme", "--kind", "calls", "--since", "2026-11-10", "--until", "2026-11-11", "--wait"]
                )
            )
        )
        waiting.start()
        with app.app_context():
            jobs = rq_queue()
            deadline = time.monotonic() + 10
            while not jobs.count and time.monotonic() < deadline:
                time.sleep(0.05)
            SimpleWorker([jobs], connection=jobs.connection).work(burst=True)  # signal handlers: main thread only
        waiting.join(30)
    output = results[0].output
    assert results[0].exit_code == 0, output
    assert re.search(r"^calls: run 1 (queued|running)$", output, re.MULTILINE)
    with app.app_context(), platform_bypass("test"):
        inserted = db.session.scalar(select(SyncRun.inserted))
    assert "calls: succeeded in" in output and f"{inserted} new" in output and inserted > 0


def test_add_member_prints_a_one_time_set_password_link(app, runner):
    run(runner, "create-org", "Acme", "--slug", "acme")
    result = run(runner, "add-member", "acme", "ann@acme.test", "--role", "agent", "--extension", "101")
    assert result.exit_code == 0, result.output
    path = result.output.strip().splitlines()[-1]
    assert path.startswith("/set-password/")
    with app.app_context():
        assert members.password_link(path.rsplit("/", 1)[1]).email == "ann@acme.test"
    assert path not in "".join(audit_actions(app))


def test_add_member_gives_someone_new_a_first_password_and_never_changes_an_existing_ones(app, runner, client):
    from tests.helpers import login

    run(runner, "create-org", "Acme", "--slug", "acme")
    run(runner, "create-org", "Globex", "--slug", "globex")
    added = run(runner, "add-member", "acme", "ann@acme.test", "--role", "manager", "--password", "first password 1")
    assert added.exit_code == 0 and "/set-password/" not in added.output
    refused = run(
        runner, "add-member", "globex", "ann@acme.test", "--role", "org_admin", "--password", "taken over 12345"
    )
    assert refused.exit_code == 2 and "error (password)" in refused.output
    with app.app_context(), platform_bypass("test"):
        assert db.session.scalar(select(func.count(Membership.id))) == 1
    assert login(client, "ann@acme.test", "taken over 12345").status_code != 302
    assert login(client, "ann@acme.test", "first password 1").status_code == 302
