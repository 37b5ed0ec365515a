from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime, timedelta

import pytest
import requests
from werkzeug.wrappers import Request, Response

from vsync.mightycall.client import MemoryTokenStore, MightyCallClient, Token
from vsync.mightycall.errors import (
    AuthenticationError,
    ClientError,
    MightyCallError,
    MightyCallNotFound,
    ProtocolError,
    RateLimited,
    ServerError,
    TransportError,
)
from vsync.mightycall.parsing import parse_call

from .helpers import API_KEY, DAY_END, DAY_START, USER_KEY, serve_wsgi


def truth_ids(sim, start=DAY_START, end=DAY_END):
    return [call["id"] for call in sim.calls_between(start, end)]


def listed_ids(mightycall, start=DAY_START, end=DAY_END, page_size=25):
    return [record.external_id for record in mightycall.iter_calls(start, end, page_size=page_size)]


def test_listing_a_window_yields_exactly_the_simulated_calls_newest_first(mightycall, sim):
    pages = mightycall.iter_call_pages(DAY_START, DAY_END, page_size=25)
    records = [record for page in pages for record in page]
    truth = sim.calls_between(DAY_START, DAY_END)
    assert len(truth) > 50
    assert [r.external_id for r in records] == [c["id"] for c in truth]
    assert records == [parse_call(c) for c in truth]
    assert pages.pages == len(truth) // 25 + 1
    assert (pages.fetched, pages.duplicates, pages.skipped_invalid) == (len(truth), 0, 0)


def test_many_calls_use_one_token_request(mightycall, sim):
    for _ in range(5):
        mightycall.phone_numbers()
    listed_ids(mightycall)
    assert sim.requests["token"] == 1
    assert sim.token_grants == ["client_credentials"]


def test_clients_sharing_a_token_store_authenticate_once(make_client, sim):
    store = MemoryTokenStore()
    make_client(token_store=store).phone_numbers()
    make_client(token_store=store).team()
    assert sim.requests["token"] == 1
    assert store.load() is not None


def test_a_stored_token_close_to_expiry_is_refreshed(make_client, sim):
    store = MemoryTokenStore()
    make_client(token_store=store).phone_numbers()
    saved = store.load()
    store.save(
        Token(
            saved.access_token,
            saved.refresh_token,
            datetime.now(UTC) + timedelta(minutes=1),
        )
    )
    make_client(token_store=store).phone_numbers()
    assert sim.token_grants == ["client_credentials", "refresh_token"]
    assert store.load().access_token != saved.access_token


def test_token_expired_on_the_server_is_refreshed_and_the_call_retried(mightycall, sim, sim_clock):
    mightycall.phone_numbers()
    sim_clock.advance(sim.token_ttl + 60)
    assert len(mightycall.phone_numbers()) == 4
    assert sim.token_grants == ["client_credentials", "refresh_token"]
    assert sim.requests["phone_numbers"] == 3


def test_refused_refresh_falls_back_to_client_credentials(mightycall, sim):
    mightycall.phone_numbers()
    sim.revoke_tokens()
    mightycall.phone_numbers()
    assert sim.token_grants == ["client_credentials", "refresh_token", "client_credentials"]


def test_401_in_the_middle_of_paging_reauthenticates_and_continues(mightycall, sim):
    sim.faults.add("calls", "token_expiry", after=2)
    assert listed_ids(mightycall) == truth_ids(sim)
    assert sim.token_grants == ["client_credentials", "refresh_token"]


def test_a_second_401_after_reauthentication_is_an_authentication_error(mightycall, sim, sleeps):
    sim.faults.add("phone_numbers", "token_expiry", times=2)
    with pytest.raises(AuthenticationError) as caught:
        mightycall.phone_numbers()
    assert caught.value.retryable is False and caught.value.status == 401
    assert sleeps == []


def test_bad_user_key_is_an_actionable_authentication_error(make_client, sim):
    mightycall = make_client(user_key="wrong-user-key-123")
    with pytest.raises(AuthenticationError) as caught:
        mightycall.phone_numbers()
    message = str(caught.value)
    assert "rejected the API key / user key (invalid_client)" in message
    assert "wrong-user-key-123" not in message and API_KEY not in message
    assert caught.value.retryable is False
    assert sim.requests["token"] == 1


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"retry_after": 7}, (7.0, 7.0)),
        ({"retry_after": 9, "format": "http-date"}, (7.0, 9.0)),
        ({"format": "none"}, (0.25, 0.25)),
        ({"retry_after": 120}, (30.0, 30.0)),
    ],
    ids=["seconds", "http-date", "no-header-uses-jitter", "capped-at-backoff-cap"],
)
def test_rate_limit_waits_as_told_then_succeeds(mightycall, sim, sleeps, params, expected):
    sim.faults.add("phone_numbers", "rate_limit", **params)
    assert len(mightycall.phone_numbers()) == 4
    assert len(sleeps) == 1
    low, high = expected
    assert low <= sleeps[0] <= high


def test_rate_limit_that_persists_raises_rate_limited_with_retry_after(make_client, sim, sleeps):
    mightycall = make_client(max_retries=2)
    sim.faults.add("calls", "rate_limit", times=None, retry_after=3)
    with pytest.raises(RateLimited) as caught:
        listed_ids(mightycall)
    assert caught.value.retryable is True
    assert caught.value.retry_after == 3.0
    assert sleeps == [3.0, 3.0]
    assert sim.requests["calls"] == 3


@pytest.mark.parametrize("status", [500, 502, 503])
@pytest.mark.parametrize("body", ["json", "html"])
def test_server_errors_are_retried_then_succeed(mightycall, sim, sleeps, status, body):
    sim.faults.add("calls", "server_error", times=2, status=status, body=body)
    assert listed_ids(mightycall) == truth_ids(sim)
    assert sleeps == [0.25, 0.5]


def test_exhausted_retries_raise_the_last_error_as_retryable(make_client, sim, sleeps):
    mightycall = make_client(max_retries=3)
    sim.faults.add("phone_numbers", "server_error", times=None, status=502, body="html")
    with pytest.raises(ServerError) as caught:
        mightycall.phone_numbers()
    assert caught.value.retryable is True and caught.value.status == 502
    assert "502 Bad Gateway" in str(caught.value)
    assert sleeps == [0.25, 0.5, 1.0]


def test_backoff_is_full_jitter_capped(make_client, sim, sleeps):
    mightycall = make_client(max_retries=4, backoff_base=1.0, backoff_cap=3.0, rng=lambda: 1.0)
    sim.faults.add("team", "server_error", times=None)
    with pytest.raises(ServerError):
        mightycall.team()
    assert sleeps == [1.0, 2.0, 3.0, 3.0]


def test_hanging_response_past_the_read_timeout_is_a_transport_error(make_client, sim, sleeps):
    mightycall = make_client(timeout=(1.0, 0.3), max_retries=1)
    sim.faults.add("phone_numbers", "hang", times=None, seconds=2)
    started = time.monotonic()
    with pytest.raises(TransportError) as caught:
        mightycall.phone_numbers()
    assert time.monotonic() - started < 1.8
    assert caught.value.retryable is True and caught.value.status is None
    assert "timeout" in str(caught.value)
    assert len(sleeps) == 1


def test_slow_response_within_the_timeout_succeeds(make_client, sim):
    mightycall = make_client(timeout=(1.0, 2.0))
    sim.faults.add("phone_numbers", "slow", seconds=0.2)
    assert len(mightycall.phone_numbers()) == 4


def test_unreachable_host_is_a_transport_error(make_client, sleeps):
    mightycall = make_client(base_url="http://127.0.0.1:9/v4", max_retries=1)
    with pytest.raises(TransportError) as caught:
        mightycall.phone_numbers()
    assert caught.value.retryable is True
    assert len(sleeps) == 1


@pytest.mark.parametrize("kind", ["truncated", "not_json", "is_success_false"])
def test_malformed_answers_are_protocol_errors_that_may_be_retried(make_client, sim, sleeps, kind):
    mightycall = make_client(max_retries=1)
    sim.faults.add("calls", kind, times=None)
    with pytest.raises(ProtocolError) as caught:
        listed_ids(mightycall)
    assert caught.value.retryable is True
    assert len(sleeps) == 1


@pytest.mark.parametrize("kind", ["truncated", "not_json", "is_success_false"])
def test_a_transient_malformed_answer_is_retried_transparently(mightycall, sim, kind):
    sim.faults.add("calls", kind, after=1)
    assert listed_ids(mightycall) == truth_ids(sim)


def test_is_success_false_message_reaches_the_error(make_client, sim):
    mightycall = make_client(max_retries=0)
    sim.faults.add("phone_numbers", "is_success_false", message="Account is suspended")
    with pytest.raises(ProtocolError, match="Account is suspended"):
        mightycall.phone_numbers()


@pytest.mark.parametrize(
    "fault",
    [{"mode": "missing"}, {"mode": "small"}, {"mode": "large"}, {"value": 0}, {"value": 25}],
    ids=["missing", "too-small", "too-large", "zero", "one-page"],
)
@pytest.mark.parametrize("page_size", [25, 1000])
def test_wrong_or_missing_total_still_yields_exactly_the_truth(mightycall, sim, fault, page_size):
    sim.faults.add("calls", "wrong_total", times=None, **fault)
    assert listed_ids(mightycall, page_size=page_size) == truth_ids(sim)


def test_calls_arriving_at_the_head_while_paging_are_never_yielded_twice(mightycall, sim):
    before = truth_ids(sim)
    sim.faults.add("calls", "head_insert", count=7)
    pages = mightycall.iter_call_pages(DAY_START, DAY_END, page_size=25)
    ids = [record.external_id for page in pages for record in page]
    assert len(ids) == len(set(ids))
    assert ids == before
    assert pages.duplicates == 7
    after = truth_ids(sim)
    assert len(after) == len(before) + 7
    assert listed_ids(mightycall) == after


def test_silently_capped_page_size_still_yields_every_call(mightycall, sim):
    sim.faults.add("calls", "page_cap", times=None, cap=10)
    truth = truth_ids(sim)
    assert listed_ids(mightycall, page_size=1000) == truth
    assert sim.requests["calls"] == len(truth) // 10 + 1


def test_capped_page_size_without_total_still_yields_every_call(mightycall, sim):
    sim.faults.add("calls", "page_cap", times=None, cap=10)
    sim.faults.add("calls", "wrong_total", times=None)
    assert listed_ids(mightycall, page_size=50) == truth_ids(sim)


def test_unparseable_items_are_skipped_and_counted_and_repeats_dropped():
    good = [parse_call_item(i) for i in range(5)]
    pages_served = [
        [good[0], {"caller": {}, "dateTimeUtc": "2024-03-05T10:00:00Z"}, good[1]],
        [good[1], {**good[2], "dateTimeUtc": "not a time"}, good[3]],
        [good[4]],
    ]

    @Request.application
    def app(request):
        if request.path == "/v4/auth/token":
            token = {"access_token": "t-1", "expires_in": 86400, "refresh_token": "r-1"}
            return Response(json.dumps(token), mimetype="application/json")
        skip = int(request.args["skip"])
        index = {0: 0, 3: 1, 6: 2}.get(skip)
        calls = pages_served[index] if index is not None else []
        return Response(json.dumps({"data": {"calls": calls, "total": 7}}), mimetype="application/json")

    with serve_wsgi(app) as root:
        mightycall = MightyCallClient(f"{root}/v4", API_KEY, USER_KEY, sleep=lambda s: None)
        pages = mightycall.iter_call_pages(DAY_START, DAY_END, page_size=3)
        ids = [record.external_id for record in pages.records()]
    assert ids == [good[0]["id"], good[1]["id"], good[3]["id"], good[4]["id"]]
    assert (pages.pages, pages.fetched, pages.skipped_invalid, pages.duplicates) == (3, 7, 2, 1)


def parse_call_item(index):
    return {
        "id": f"00000000-0000-4000-8000-00000000000{index}",
        "caller": {"name": "", "phone": "+17182223344"},
        "called": [],
        "businessNumber": "+12127363100",
        "dateTimeUtc": f"2024-03-05T1{9 - index}:00:00.1Z",
        "duration": "1000",
        "direction": "Incoming",
        "callStatus": "Dropped",
        "callRecord": None,
    }


def test_empty_window_yields_nothing(mightycall):
    start = datetime(2024, 3, 5, 12, tzinfo=UTC)
    assert list(mightycall.iter_call_pages(start, start)) == []


def test_get_call_matches_the_listing_and_unknown_ids_are_not_found(mightycall, sim):
    listed = next(mightycall.iter_calls(DAY_START, DAY_END))
    assert mightycall.get_call(listed.external_id) == listed
    with pytest.raises(MightyCallNotFound) as caught:
        mightycall.get_call("00000000-0000-4000-8000-0b46860000ff")
    assert caught.value.retryable is False


def test_recording_streams_a_wav_from_another_host_than_the_api(mightycall, sim_server):
    record = next(r for r in mightycall.iter_calls(DAY_START, DAY_END) if r.recording_uri)
    assert record.recording_uri.startswith("http://localhost:")
    assert not mightycall.base_url.startswith("http://localhost")
    audio = b"".join(mightycall.stream_recording(record.recording_uri, chunk_size=1024))
    assert audio[:4] == b"RIFF" and audio[8:12] == b"WAVE"
    assert int.from_bytes(audio[4:8], "little") == len(audio) - 8
    assert int.from_bytes(audio[40:44], "little") == len(audio) - 44
    assert 2_000 < len(audio) < 20_000
    with mightycall.open_recording(record.recording_uri) as recording:
        assert recording.content_type == "audio/wav"
        assert recording.content_length == len(audio)


def test_recording_host_demanding_the_bearer_gets_it_on_the_second_try(mightycall, sim):
    sim.recordings_require_auth = True
    record = next(r for r in mightycall.iter_calls(DAY_START, DAY_END) if r.recording_uri)
    audio = b"".join(mightycall.stream_recording(record.recording_uri))
    assert audio[:4] == b"RIFF"
    assert sim.requests["recording"] == 2


def test_recording_never_sends_the_bearer_when_told_not_to(make_client, sim):
    mightycall = make_client(recording_auth="never", max_retries=0)
    sim.recordings_require_auth = True
    record = next(r for r in mightycall.iter_calls(DAY_START, DAY_END) if r.recording_uri)
    with pytest.raises(AuthenticationError):
        b"".join(mightycall.stream_recording(record.recording_uri))
    assert sim.requests["recording"] == 1


def test_missing_recording_is_not_found_with_advice_to_reread_the_call(mightycall, sim_server):
    uri = f"http://localhost:{sim_server.port}/recordings/00000000-0000-4000-8000-0b46860000ff.wav?sig=s3cr3t"
    with pytest.raises(MightyCallNotFound) as caught:
        b"".join(mightycall.stream_recording(uri))
    assert "get_call" in str(caught.value)
    assert "s3cr3t" not in str(caught.value)


def test_numbers_team_and_connection_test(mightycall, sim):
    numbers = mightycall.phone_numbers()
    assert [n["number"] for n in numbers] == sim.phone_numbers()
    team = mightycall.team()
    assert [(u["extension"], u["name"]) for u in team] == sim.agents()
    summary = mightycall.test_connection()
    assert summary["ok"] is True and summary["numbers"] == 4


def test_sms_journal_pages_yield_exactly_the_simulated_messages(mightycall, sim):
    start, end = DAY_START - timedelta(days=2), DAY_END
    truth = sim.sms_between(start, end)
    assert len(truth) > 12
    pages = mightycall.iter_sms_pages(start, end, page_size=5)
    records = [record for page in pages for record in page]
    assert [r.external_id for r in records] == [item["id"] for item in truth]
    # Full pages, the short last one, then the empty page that proves the end (no total to say so).
    assert len(truth) % 5 and pages.pages == len(truth) // 5 + 2
    assert all(r.direction in ("inbound", "outbound") and r.counterpart for r in records)
    assert {r.business_number for r in records} <= set(sim.phone_numbers())


def test_sms_journal_with_a_capped_page_size_yields_every_message(mightycall, sim):
    start, end = DAY_START - timedelta(days=2), DAY_END
    sim.faults.add("journal", "page_cap", times=None, cap=4)
    records = list(mightycall.iter_sms(start, end, page_size=50))
    assert [r.external_id for r in records] == [i["id"] for i in sim.sms_between(start, end)]


def test_sent_message_reaches_the_journal(mightycall, sim):
    sender = sim.phone_numbers()[0]
    answer = mightycall.send_sms(sender, "+17182223344", "Your table is ready.")
    assert answer["data"]["messages"][0]["to"] == "+17182223344"
    now = datetime.now(UTC)
    texts = [r.text for r in mightycall.iter_sms(now - timedelta(minutes=5), now + timedelta(minutes=5))]
    assert "Your table is ready." in texts


def test_sending_a_message_is_not_repeated_after_a_server_error(mightycall, sim, sleeps):
    sim.faults.add("messages_send", "server_error", status=503)
    with pytest.raises(ServerError):
        mightycall.send_sms(sim.phone_numbers()[0], ["+17182223344"], "Hello")
    assert sim.requests["messages_send"] == 1 and sleeps == []
    assert sim.sent_messages == []


def test_sending_a_message_is_retried_after_a_rate_limit(mightycall, sim):
    sim.faults.add("messages_send", "rate_limit", retry_after=1)
    mightycall.send_sms(sim.phone_numbers()[0], ["+17182223344"], "Hello")
    assert len(sim.sent_messages) == 1


def test_rejected_message_is_a_client_error_with_the_reason(mightycall, sim):
    with pytest.raises(ClientError, match="not a number of this account"):
        mightycall.send_sms("+19999999999", ["+17182223344"], "Hello")


@pytest.mark.parametrize(
    ("to", "text", "reason"),
    [
        (["12345"], "Hello", "E.164"),
        (["+17182223344"], "   ", "must not be empty"),
        (["+17182223344"], "x" * 1601, "longer than 1600"),
    ],
)
def test_the_simulator_refuses_a_bad_recipient_or_text_as_mightycall_would(mightycall, sim, to, text, reason):
    with pytest.raises(ClientError, match=reason):
        mightycall.send_sms(sim.phone_numbers()[0], to, text)
    assert sim.sent_messages == []


def test_secrets_never_reach_logs_errors_or_reprs(make_client, sim, caplog, sim_server):
    caplog.set_level(logging.DEBUG)
    store = MemoryTokenStore()
    mightycall = make_client(token_store=store, max_retries=1)
    errors = []
    sim.faults.add("calls", "token_expiry", after=1)
    listed_ids(mightycall)
    for kind in ("server_error", "rate_limit", "not_json", "is_success_false", "truncated"):
        sim.faults.add("phone_numbers", kind, times=None)
        try:
            mightycall.phone_numbers()
        except MightyCallError as exc:
            errors.append(exc)
        sim.faults.clear()
    try:
        make_client(user_key="not-" + USER_KEY).phone_numbers()
    except AuthenticationError as exc:
        errors.append(exc)
    token = store.load()
    secrets = [
        API_KEY,
        USER_KEY,
        token.access_token,
        token.refresh_token,
        *sim._tokens,
        *sim._refresh_tokens,
    ]
    shown = [caplog.text, repr(mightycall), repr(token), str(token), repr(store)]
    shown += [str(e) for e in errors] + [repr(e) for e in errors]
    assert len(errors) == 6
    for secret in secrets:
        for text in shown:
            assert secret not in text


def test_client_rejects_a_base_url_that_is_not_http():
    with pytest.raises(ValueError):
        MightyCallClient("ftp://example.com/v4", API_KEY, USER_KEY)


def test_client_works_with_its_own_session_and_closes_it(sim_server, sim):
    with MightyCallClient(sim_server.base_url, API_KEY, USER_KEY, session=requests.Session()) as mightycall:
        assert mightycall.test_connection()["ok"] is True


@pytest.mark.parametrize("times", [1, None], ids=["first-page-only", "every-page"])
def test_sms_pages_under_a_page_cap_leave_no_gap_and_end_only_on_an_empty_page(mightycall, sim, times):
    start, end = DAY_START - timedelta(days=2), DAY_END
    truth = sim.sms_between(start, end)
    sim.faults.add("journal", "page_cap", cap=4, times=times)
    records = list(mightycall.iter_sms(start, end, page_size=10))
    assert [r.external_id for r in records] == [item["id"] for item in truth]


@pytest.mark.parametrize("read", ["phone_numbers", "team"])
def test_a_numbers_or_team_answer_without_its_list_is_a_protocol_error_not_an_empty_account(make_client, read):
    def app(environ, start_response):
        if environ["PATH_INFO"].endswith("/auth/token"):
            body = b'{"access_token": "t", "expires_in": 3600}'
        else:
            body = b'{"data": {"status": "maintenance"}}'
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]

    with serve_wsgi(app) as url:
        mightycall = make_client(base_url=f"{url}/v4", max_retries=0)
        with pytest.raises(ProtocolError, match="no list of"):
            getattr(mightycall, read)()
