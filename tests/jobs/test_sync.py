"""Sync jobs against the simulator over real HTTP, into the real PostgreSQL: exact, idempotent, robust."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tests.factories import account_of
from tests.jobs.helpers import (
    API_KEY,
    USER_KEY,
    W0,
    W1,
    assert_matches_truth,
    assert_subset_of_truth,
    connect,
    decrypted_token,
    get_run,
    serve,
    stored_calls,
    sync,
)
from vsync.errors import Conflict, ValidationError
from vsync.extensions import db
from vsync.models import Agent, AuditEvent, Integration, NumberAssignment, PhoneNumber, Recording, SmsMessage, SyncRun
from vsync.models.types import utcnow
from vsync.services.sync import ALL_KINDS, start_sync, start_syncs
from vsync.tenancy import platform_bypass, tenant


def test_full_sync_equals_the_simulators_ground_truth(inline_app, sim_server):
    org_id, integration_id = connect(inline_app, "acme", sim_server)
    run = sync(inline_app, org_id, integration_id)
    assert run.status == "succeeded", run.error
    assert_matches_truth(inline_app, sim_server, integration_id)
    truth = sim_server.simulator.calls_between(W0, W1)
    assert run.inserted == len(truth) and run.updated == 0 and run.skipped == 0
    assert run.pages >= 4 and run.progress == 1.0 and run.retries == 0


def test_running_the_same_sync_again_changes_nothing(inline_app, sim_server):
    org_id, integration_id = connect(inline_app, "acme", sim_server)
    sync(inline_app, org_id, integration_id)
    before = {row["external_id"]: row["synced_at"] for row in stored_calls(inline_app, integration_id)}
    again = sync(inline_app, org_id, integration_id)
    assert again.status == "succeeded" and again.inserted == 0 and again.updated == 0
    assert {row["external_id"]: row["synced_at"] for row in stored_calls(inline_app, integration_id)} == before


def test_a_narrower_window_touches_only_that_window(inline_app, sim_server):
    org_id, integration_id = connect(inline_app, "acme", sim_server)
    day_start, day_end = W0 + timedelta(days=1), W0 + timedelta(days=2)
    run = sync(inline_app, org_id, integration_id, since=day_start, until=day_end)
    assert_matches_truth(inline_app, sim_server, integration_id, day_start, day_end)
    full = sync(inline_app, org_id, integration_id)
    assert full.inserted == len(sim_server.simulator.calls_between(W0, W1)) - run.inserted and full.updated == 0


def test_calls_record_numbers_recordings_and_agent_names(inline_app, sim_server):
    org_id, integration_id = connect(inline_app, "acme", sim_server)
    sync(inline_app, org_id, integration_id)
    truth = sim_server.simulator.calls_between(W0, W1)
    with inline_app.app_context(), tenant(org_id):
        numbers = set(db.session.scalars(select(PhoneNumber.e164)))
        assert numbers and numbers <= set(sim_server.simulator.phone_numbers())
        assert db.session.scalar(select(func.count()).select_from(Recording)) == sum(
            1 for raw in truth if raw["callRecord"]
        )
        agents = dict(db.session.execute(select(Agent.extension, Agent.display_name)).all())
        assert agents and agents.items() <= dict(sim_server.simulator.agents()).items()


def test_discovered_numbers_are_assigned_to_the_org_over_their_whole_history(inline_app, sim_server):
    org_id, integration_id = connect(inline_app, "acme", sim_server)
    sync(inline_app, org_id, integration_id, since=W1 - timedelta(days=1))
    backfill = sync(inline_app, org_id, integration_id)  # older traffic synced later stays visible
    with inline_app.app_context(), tenant(org_id):
        starts = set(db.session.scalars(select(NumberAssignment.assigned_at)))
        from vsync.models import Call

        visible = db.session.scalar(select(func.count()).select_from(Call))
    assert max(starts) <= W0 and backfill.status == "succeeded"
    assert visible == len(sim_server.simulator.calls_between(W0, W1))


def test_numbers_agents_and_sms_kinds_sync_the_account(inline_app, sim_server):
    org_id, integration_id = connect(inline_app, "acme", sim_server)
    for kind in ("numbers", "agents", "sms"):
        run = sync(inline_app, org_id, integration_id, kind=kind)
        assert run.status == "succeeded", (kind, run.error)
    with inline_app.app_context(), tenant(org_id):
        assert set(db.session.scalars(select(PhoneNumber.e164))) == set(sim_server.simulator.phone_numbers())
        assert set(db.session.scalars(select(Agent.extension))) == {ext for ext, _ in sim_server.simulator.agents()}
        stored = set(db.session.scalars(select(SmsMessage.external_id)))
    assert stored == {item["id"] for item in sim_server.simulator.sms_between(W0, W1)}


def test_access_token_is_shared_through_the_database_and_stored_encrypted(inline_app, sim_server):
    org_id, integration_id = connect(inline_app, "acme", sim_server)
    for kind in ("numbers", "agents", "calls"):  # each run builds a new client, as separate workers do
        sync(inline_app, org_id, integration_id, kind=kind)
    assert sim_server.simulator.requests["token"] == 1
    token = decrypted_token(inline_app, integration_id)
    with inline_app.app_context(), platform_bypass("test"):
        assert token not in db.session.get(Integration, integration_id).access_token_encrypted


# The fault matrix -----------------------------------------------------------------------------------

RECOVERABLE = [
    pytest.param("calls", "token_expiry", {"after": 2}, id="401-expiry-mid-paging"),
    pytest.param("calls", "rate_limit", {"times": 2, "retry_after": 1}, id="429-retry-after-seconds"),
    pytest.param("calls", "rate_limit", {"times": 2, "format": "http-date"}, id="429-retry-after-http-date"),
    pytest.param("calls", "rate_limit", {"times": 2, "format": "none"}, id="429-without-retry-after"),
    pytest.param("calls", "server_error", {"times": 2, "status": 500}, id="500-json"),
    pytest.param("calls", "server_error", {"times": 2, "status": 502, "body": "html"}, id="502-html"),
    pytest.param("calls", "server_error", {"times": 2, "status": 503}, id="503-json"),
    pytest.param("calls", "slow", {"times": 3, "seconds": 0.3}, id="slow"),
    pytest.param("calls", "hang", {"times": 1, "seconds": 3}, id="hang-past-timeout"),
    pytest.param("calls", "truncated", {"times": 2, "after": 1}, id="truncated-json"),
    pytest.param("calls", "not_json", {"times": 2}, id="not-json"),
    pytest.param("calls", "is_success_false", {"times": 2}, id="is-success-false"),
    pytest.param("calls", "wrong_total", {"times": 4, "mode": "missing"}, id="total-missing"),
    pytest.param("calls", "wrong_total", {"times": 4, "mode": "small"}, id="total-too-small"),
    pytest.param("calls", "wrong_total", {"times": 4, "mode": "large"}, id="total-too-large"),
    pytest.param("calls", "head_insert", {"times": 1, "after": 1, "count": 5}, id="head-insert-while-paging"),
    pytest.param("calls", "page_cap", {"times": None, "cap": 40}, id="page-size-capped"),
    pytest.param("token", "server_error", {"times": 2, "status": 503}, id="token-endpoint-503"),
]


@pytest.mark.parametrize("route,kind,params", RECOVERABLE)
def test_transient_fault_converges_to_the_exact_truth(inline_app, sim_server, route, kind, params):
    org_id, integration_id = connect(inline_app, "acme", sim_server)
    params = dict(params)
    sim_server.simulator.faults.add(route, kind, times=params.pop("times", 1), after=params.pop("after", 0), **params)
    run = sync(inline_app, org_id, integration_id)
    assert run.status == "succeeded", run.error
    assert_matches_truth(inline_app, sim_server, integration_id)


@pytest.mark.parametrize(
    "route,kind,params,message",
    [
        pytest.param("calls", "server_error", {"status": 500}, "500", id="persistent-500"),
        pytest.param("calls", "not_json", {}, "JSON", id="persistent-non-json"),
        pytest.param("calls", "rate_limit", {"retry_after": 1}, "429", id="persistent-429"),
    ],
)
def test_persistent_fault_fails_the_run_with_a_clear_error_and_no_garbage(
    inline_app, sim_server, route, kind, params, message
):
    org_id, integration_id = connect(inline_app, "acme", sim_server)
    sim_server.simulator.faults.add(route, kind, times=None, after=2, **params)
    run = sync(inline_app, org_id, integration_id)
    assert run.status == "failed" and run.finished_at is not None
    assert message.lower() in run.error.lower() and run.retries == 3
    assert_subset_of_truth(inline_app, sim_server, integration_id)
    sim_server.simulator.faults.clear()
    again = sync(inline_app, org_id, integration_id)
    assert again.status == "succeeded"
    assert_matches_truth(inline_app, sim_server, integration_id)


@pytest.mark.parametrize(
    "mode, message",
    [
        pytest.param("missing", "no usable count", id="total-always-missing"),
        pytest.param("small", "no usable count", id="total-always-too-small"),
        pytest.param("large", "but", id="total-always-too-large"),
    ],
)
def test_a_count_that_never_confirms_the_calls_read_fails_the_run_instead_of_succeeding(
    inline_app, sim_server, mode, message
):
    org_id, integration_id = connect(inline_app, "acme", sim_server)
    sim_server.simulator.faults.add("calls", "wrong_total", times=None, mode=mode)
    run = sync(inline_app, org_id, integration_id)
    assert run.status == "failed" and message in run.error and "calls from 2026-11-10" in run.error
    assert run.retries == 3
    assert_subset_of_truth(inline_app, sim_server, integration_id)
    sim_server.simulator.faults.clear()
    assert sync(inline_app, org_id, integration_id).status == "succeeded"
    assert_matches_truth(inline_app, sim_server, integration_id)


def _first_day_pages(server, page_size: int = 100) -> int:
    """How many page requests the client makes for the first day (the total confirms a short page)."""
    count = server.simulator.count_between(W0, W0 + timedelta(days=1))
    return count // page_size + 1 if count % page_size == 0 else -(-count // page_size)


# Combined faults: a run converges to the account exactly, or fails saying why ---------------------------


def test_calls_inserted_while_paging_and_a_count_without_total_still_converge_exactly(inline_app, sim_server):
    org_id, integration_id = connect(inline_app, "acme", sim_server)
    faults = sim_server.simulator.faults
    faults.add("calls", "head_insert", after=1, count=4)  # during the first day's paging
    faults.add("calls", "wrong_total", after=_first_day_pages(sim_server), mode="missing")  # on that day's count
    run = sync(inline_app, org_id, integration_id)
    assert run.status == "succeeded", run.error
    assert_matches_truth(inline_app, sim_server, integration_id)
    assert run.retries == 0 and faults.active() == []


def test_calls_inserted_while_paging_with_no_count_ever_fail_the_run_rather_than_miss_them(inline_app, sim_server):
    org_id, integration_id = connect(inline_app, "acme", sim_server)
    sim_server.simulator.faults.add("calls", "head_insert", after=1, count=4)
    sim_server.simulator.faults.add("calls", "wrong_total", times=None, mode="missing")
    run = sync(inline_app, org_id, integration_id)
    assert run.status == "failed" and "cannot confirm" in run.error
    assert_subset_of_truth(inline_app, sim_server, integration_id)


def test_calls_arriving_on_every_request_fail_the_run_saying_they_outpace_the_sync(inline_app, sim_server):
    org_id, integration_id = connect(inline_app, "acme", sim_server)
    sim_server.simulator.faults.add("calls", "head_insert", times=None, count=2)
    run = sync(inline_app, org_id, integration_id, since=W0, until=W0 + timedelta(days=1))
    assert run.status == "failed" and "arriving faster than they can be read" in run.error
    stored = {row["external_id"] for row in stored_calls(inline_app, integration_id)}
    assert stored <= {raw["id"] for raw in sim_server.simulator.calls_between(W0, W1)}


def test_calls_converge_under_a_page_cap_head_inserts_rate_limits_and_truncated_pages_together(inline_app, sim_server):
    org_id, integration_id = connect(inline_app, "acme", sim_server)
    faults = sim_server.simulator.faults
    faults.add("calls", "page_cap", times=None, cap=40)
    faults.add("calls", "head_insert", after=2, times=2, count=3)
    faults.add("calls", "rate_limit", after=3, times=2, retry_after=0)
    faults.add("calls", "truncated", after=5, times=2)
    faults.add("calls", "wrong_total", after=7, times=2, mode="small")
    run = sync(inline_app, org_id, integration_id)
    assert run.status == "succeeded", run.error
    assert [fault["kind"] for fault in faults.active()] == ["page_cap"]
    assert_matches_truth(inline_app, sim_server, integration_id)


def test_sms_converge_under_a_page_cap_truncated_pages_and_server_errors_together(inline_app, sim_server):
    org_id, integration_id = connect(inline_app, "acme", sim_server)
    faults = sim_server.simulator.faults
    faults.add("journal", "page_cap", cap=7)  # the first page only: a short page that is not the end
    faults.add("journal", "truncated", after=1, times=2)
    faults.add("journal", "server_error", after=3, times=2, status=502, body="html")
    faults.add("journal", "rate_limit", after=4, times=1, retry_after=0)
    run = sync(inline_app, org_id, integration_id, kind="sms")
    assert run.status == "succeeded", run.error
    assert faults.active() == []
    with inline_app.app_context(), platform_bypass("test"):
        stored = list(
            db.session.scalars(
                select(SmsMessage.external_id).where(SmsMessage.account_id == account_of(integration_id))
            )
        )
    assert sorted(stored) == sorted(item["id"] for item in sim_server.simulator.sms_between(W0, W1))


@pytest.mark.parametrize("kind, route", [("numbers", "phone_numbers"), ("agents", "team")])
def test_numbers_and_agents_converge_under_combined_faults(inline_app, sim_server, kind, route):
    org_id, integration_id = connect(inline_app, "acme", sim_server)
    faults = sim_server.simulator.faults
    faults.add(route, "no_list")
    faults.add(route, "truncated")
    faults.add(route, "rate_limit", after=1, retry_after=0)
    faults.add(route, "server_error", after=1, status=503)
    run = sync(inline_app, org_id, integration_id, kind=kind)
    assert run.status == "succeeded", run.error
    assert faults.active() == []
    with inline_app.app_context(), tenant(org_id):
        if kind == "numbers":
            assert set(db.session.scalars(select(PhoneNumber.e164))) == set(sim_server.simulator.phone_numbers())
        else:
            stored = dict(db.session.execute(select(Agent.extension, Agent.display_name)).all())
            assert stored == dict(sim_server.simulator.agents())


@pytest.mark.parametrize(
    "kind, route, what", [("numbers", "phone_numbers", "phone numbers"), ("agents", "team", "team members")]
)
def test_an_answer_without_the_list_never_passes_for_an_empty_account(inline_app, sim_server, kind, route, what):
    org_id, integration_id = connect(inline_app, "acme", sim_server)
    sim_server.simulator.faults.add(route, "no_list", times=None)
    run = sync(inline_app, org_id, integration_id, kind=kind)
    assert run.status == "failed" and f"no list of {what}" in run.error
    with inline_app.app_context(), tenant(org_id):
        assert db.session.scalars(select(PhoneNumber.e164 if kind == "numbers" else Agent.extension)).all() == []


def test_rejected_credentials_fail_at_once_without_retrying(inline_app, sim_server):
    org_id, integration_id = connect(inline_app, "acme", sim_server, user_key="not-the-user-key")
    run = sync(inline_app, org_id, integration_id)
    assert run.status == "failed" and run.retries == 0
    assert "user key" in run.error.lower() or "invalid_client" in run.error
    assert stored_calls(inline_app, integration_id) == []


def test_credentials_and_tokens_never_reach_logs_errors_or_runs(inline_app, sim_server, caplog):
    org_id, integration_id = connect(inline_app, "acme", sim_server)
    sim_server.simulator.faults.add("calls", "token_expiry", after=1)
    sim_server.simulator.faults.add("calls", "server_error", times=2, status=500)
    with caplog.at_level(logging.DEBUG):
        sync(inline_app, org_id, integration_id)
        _, bad_id = connect(inline_app, "globex", sim_server, user_key="wrong-user-key-Qq91")
        failed = sync(inline_app, _, bad_id)
    token = decrypted_token(inline_app, integration_id)
    secrets = [API_KEY, USER_KEY, "wrong-user-key-Qq91", token]
    with inline_app.app_context(), platform_bypass("test"):
        runs = db.session.scalars(select(SyncRun)).all()
        stored_text = " ".join(f"{r.error} {r.job_id} {r.kind} {r.trigger}" for r in runs)
    for secret in secrets:
        assert secret and secret not in caplog.text and secret not in stored_text and secret not in failed.error


# One run at a time -----------------------------------------------------------------------------------


def test_asking_again_while_a_run_is_queued_joins_it(queued_app, sim_server):
    org_id, integration_id = connect(queued_app, "acme", sim_server)
    first = sync(queued_app, org_id, integration_id)
    assert first.status == "queued" and first.job_id
    with queued_app.app_context(), tenant(org_id):
        integration = db.session.get(Integration, integration_id)
        joined, was_joined = start_sync(integration, "calls", since=W0, until=W1)
        assert was_joined and joined.id == first.id
        with pytest.raises(Conflict, match="already queued"):
            start_sync(integration, "calls", since=W0, until=W0 + timedelta(days=1))


def test_the_database_refuses_a_second_active_run_of_one_kind(queued_app, sim_server):
    from sqlalchemy.exc import IntegrityError

    org_id, integration_id = connect(queued_app, "acme", sim_server)
    with queued_app.app_context(), tenant(org_id):
        db.session.add(SyncRun(integration_id=integration_id, kind="calls", status="running"))
        db.session.commit()
        db.session.add(SyncRun(integration_id=integration_id, kind="calls", status="queued"))
        with pytest.raises(IntegrityError):
            db.session.commit()


@pytest.mark.parametrize(
    "kwargs,field",
    [
        ({"kind": "calls", "since": W1, "until": W0}, "since"),
        ({"kind": "calls", "since": None, "until": W1}, "since"),
        ({"kind": "numbers", "since": W0, "until": None}, "since"),
        ({"kind": "everything", "since": None, "until": None}, "kind"),
    ],
)
def test_bad_sync_requests_are_refused_with_the_field(inline_app, sim_server, kwargs, field):
    org_id, integration_id = connect(inline_app, "acme", sim_server)
    with inline_app.app_context(), tenant(org_id):
        integration = db.session.get(Integration, integration_id)
        with pytest.raises(ValidationError) as err:
            start_sync(integration, kwargs.pop("kind"), **kwargs)
        assert err.value.field == field
        assert db.session.scalar(select(func.count()).select_from(SyncRun)) == 0


@pytest.mark.parametrize(
    "kinds,since,until,field",
    [
        pytest.param(ALL_KINDS, W1, W0, "since", id="window-backwards"),
        pytest.param(ALL_KINDS, None, W1, "since", id="until-without-since"),
        pytest.param(("numbers", "agents"), W0, None, "since", id="window-on-snapshot-kinds"),
        pytest.param(("numbers",), None, W1, "until", id="until-on-numbers"),
        pytest.param(("numbers", "calls", "everything"), None, None, "kind", id="unknown-kind-last"),
        pytest.param((), None, None, "kind", id="no-kind"),
    ],
)
def test_a_refused_request_for_several_kinds_writes_nothing_at_all(inline_app, sim_server, kinds, since, until, field):
    org_id, integration_id = connect(inline_app, "acme", sim_server)
    with inline_app.app_context(), tenant(org_id):
        integration = db.session.get(Integration, integration_id)
        with pytest.raises(ValidationError) as err:
            start_syncs(integration, kinds, since=since, until=until)
        assert err.value.field == field
        db.session.rollback()
        assert db.session.scalar(select(func.count()).select_from(SyncRun)) == 0
        assert (
            db.session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "sync.requested"))
            == 0
        )
    assert sim_server.simulator.requests.total() == 0


def test_a_conflicting_backfill_refuses_every_kind_before_starting_any(queued_app, sim_server):
    org_id, integration_id = connect(queued_app, "acme", sim_server)
    running = sync(queued_app, org_id, integration_id, since=W0, until=W1)
    with queued_app.app_context(), tenant(org_id):
        integration = db.session.get(Integration, integration_id)
        with pytest.raises(Conflict):
            start_syncs(integration, ALL_KINDS, since=W0, until=W1 - timedelta(days=1))
        db.session.rollback()
        assert db.session.scalars(select(SyncRun.id)).all() == [running.id]


def test_several_kinds_take_the_window_where_it_applies(inline_app, sim_server):
    org_id, integration_id = connect(inline_app, "acme", sim_server)
    with inline_app.app_context(), tenant(org_id):
        integration = db.session.get(Integration, integration_id)
        started = start_syncs(integration, ALL_KINDS, since=W0, until=W1)
        windows = {run.kind: (run.window_start, run.window_end, run.status) for run, _ in started}
    assert [run.kind for run, _ in started] == list(ALL_KINDS)
    assert windows["numbers"] == windows["agents"] == (None, None, "succeeded")
    assert windows["calls"] == windows["sms"] == (W0, W1, "succeeded")


def test_an_inline_run_records_when_it_started_and_finished(inline_app, sim_server):
    org_id, integration_id = connect(inline_app, "acme", sim_server)
    before = utcnow()
    run = sync(inline_app, org_id, integration_id)
    assert before <= run.created_at <= run.started_at <= run.finished_at <= utcnow()
    assert run.finished_at - run.started_at > timedelta(0)


def test_incremental_sync_reads_from_the_cursor_minus_the_overlap_and_advances_it(inline_app, sim_server):
    org_id, integration_id = connect(inline_app, "acme", sim_server)
    cursor = utcnow() - timedelta(hours=3)
    with inline_app.app_context(), tenant(org_id):
        db.session.get(Integration, integration_id).sync_cursors = {"calls": cursor.isoformat()}
        db.session.commit()
    run = sync(inline_app, org_id, integration_id, since=None, until=None)
    assert run.status == "succeeded" and run.trigger == "manual"
    assert run.window_start == cursor - timedelta(minutes=inline_app.config["VSYNC_SYNC_OVERLAP_MINUTES"])
    assert utcnow() - run.window_end < timedelta(minutes=2)
    with inline_app.app_context(), tenant(org_id):
        advanced = db.session.get(Integration, integration_id).sync_cursors["calls"]
    assert advanced == run.window_end.isoformat()


def test_a_backfill_in_the_past_leaves_a_later_cursor_alone(inline_app, sim_server):
    org_id, integration_id = connect(inline_app, "acme", sim_server)
    cursor = utcnow() - timedelta(hours=1)
    with inline_app.app_context(), tenant(org_id):
        db.session.get(Integration, integration_id).sync_cursors = {"calls": cursor.isoformat()}
        db.session.commit()
    run = sync(inline_app, org_id, integration_id)
    assert run.trigger == "backfill"
    with inline_app.app_context(), tenant(org_id):
        assert db.session.get(Integration, integration_id).sync_cursors["calls"] == cursor.isoformat()


# Tenancy ------------------------------------------------------------------------------------------------


def test_org_a_sync_never_reads_or_writes_org_b_integration_data(inline_app):
    with serve(seed=7) as sim_a, serve(seed=8) as sim_b:
        a_org, a_int = connect(inline_app, "org-a", sim_a)
        b_org, b_int = connect(inline_app, "org-b", sim_b)
        sync(inline_app, b_org, b_int)
        with inline_app.app_context(), platform_bypass("test"):
            b_before = db.session.get(Integration, b_int)
            b_state = (dict(b_before.sync_cursors), b_before.access_token_encrypted)
        b_calls = stored_calls(inline_app, b_int)
        b_token_requests = sim_b.simulator.requests["token"]

        run = sync(inline_app, a_org, a_int)
        assert run.status == "succeeded"
        assert_matches_truth(inline_app, sim_a, a_int)
        assert stored_calls(inline_app, b_int) == b_calls
        with inline_app.app_context(), platform_bypass("test"):
            b_after = db.session.get(Integration, b_int)
            assert (dict(b_after.sync_cursors), b_after.access_token_encrypted) == b_state
        assert sim_b.simulator.requests["token"] == b_token_requests

        with inline_app.app_context():
            b_account = account_of(b_int)
        with inline_app.app_context(), tenant(b_org):
            assert db.session.get(Integration, a_int) is None  # org B cannot even load A's integration
            from vsync.models import Call

            assert set(db.session.scalars(select(Call.account_id))) == {b_account}


def test_a_job_handed_another_orgs_run_does_nothing(inline_app, sim_server):
    from vsync.jobs.sync import run_sync_job

    a_org, a_int = connect(inline_app, "org-a", sim_server)
    b_org = connect(inline_app, "org-b", sim_server)[0]
    with inline_app.app_context(), tenant(a_org):
        run = SyncRun(integration_id=a_int, kind="calls", status="queued", window_start=W0, window_end=W1)
        db.session.add(run)
        db.session.commit()
        run_id = run.id
    with inline_app.app_context():
        assert run_sync_job(b_org, run_id) == "missing"
    assert get_run(inline_app, run_id).status == "queued"
    assert stored_calls(inline_app, a_int) == []
