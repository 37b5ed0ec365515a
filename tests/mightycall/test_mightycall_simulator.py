from __future__ import annotations

import re
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import phonenumbers
import pytest
import requests

from vsync.mightycall.errors import AuthenticationError, ClientError
from vsync.mightycall.simulator import Simulator, SimulatorServer

from .helpers import API_KEY, DAY_END, DAY_START, USER_KEY

CALL_KEYS = {
    "id",
    "caller",
    "called",
    "businessNumber",
    "dateTimeUtc",
    "duration",
    "direction",
    "callStatus",
    "callRecord",
}
NEW_YORK = ZoneInfo("America/New_York")


def week(sim, start=datetime(2024, 3, 4, tzinfo=UTC), days=7):
    return sim.calls_between(start, start + timedelta(days=days))


def when(call):
    return datetime.fromisoformat(call["dateTimeUtc"])


def number_of(call):
    value = call["businessNumber"]
    return value["number"] if isinstance(value, dict) else value


def test_same_seed_gives_the_same_calls_and_another_seed_different_ones():
    first = Simulator(seed=5, calls_per_day=60).calls_between(DAY_START, DAY_END)
    again = Simulator(seed=5, calls_per_day=60).calls_between(DAY_START, DAY_END)
    other = Simulator(seed=6, calls_per_day=60).calls_between(DAY_START, DAY_END)
    assert first == again
    assert [c["id"] for c in first] != [c["id"] for c in other]


def test_any_date_range_is_served_newest_first_within_the_window():
    sim = Simulator(seed=2, calls_per_day=40)
    for start in (
        datetime(1999, 12, 30, 17, 3, tzinfo=UTC),
        datetime(2031, 6, 1, 8, tzinfo=UTC),
    ):
        end = start + timedelta(days=3, hours=5)
        calls = sim.calls_between(start, end)
        times = [when(c) for c in calls]
        assert len(calls) == sim.count_between(start, end) > 60
        assert times == sorted(times, reverse=True)
        assert start <= min(times) and max(times) < end


def test_windows_compose_without_gaps_or_overlaps():
    sim = Simulator(seed=3, calls_per_day=50)
    cut = datetime(2024, 3, 5, 13, 37, 12, 345000, tzinfo=UTC)
    whole = sim.calls_between(DAY_START, DAY_END)
    assert sim.calls_between(cut, DAY_END) + sim.calls_between(DAY_START, cut) == whole


def test_calls_have_exactly_the_documented_keys_and_shapes():
    calls = week(Simulator(seed=4, calls_per_day=200))
    fraction = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{1,3}Z$")
    guid = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
    for call in calls:
        assert set(call) == CALL_KEYS
        assert guid.match(call["id"])
        assert fraction.match(call["dateTimeUtc"])
        assert call["direction"] in ("Incoming", "Outgoing")
        assert call["callStatus"] in ("Connected", "Missed", "VoiceMail", "Dropped")
        assert ("phone" in call["caller"]) != ("extension" in call["caller"])
        assert all("isConnected" in party and "name" in party for party in call["called"])
        if call["callStatus"] == "Connected":
            assert set(call["callRecord"]) == {"fileName", "uri"}
            assert call["callRecord"]["uri"].endswith(f"/recordings/{call['id']}.wav")
        else:
            assert call["callRecord"] is None
    digits = Counter(len(c["dateTimeUtc"].split(".")[1]) - 1 for c in calls)
    assert set(digits) == {1, 2, 3}
    assert Counter(type(c["duration"]) for c in calls)[str] > 0.9 * len(calls)
    assert any(isinstance(c["duration"], int) for c in calls)
    assert any(isinstance(c["businessNumber"], dict) for c in calls)
    assert len({c["id"] for c in calls}) == len(calls)


def test_volume_averages_calls_per_day_with_weekday_business_hour_peaks():
    sim = Simulator(seed=8, calls_per_day=300)
    calls = week(sim, days=14)
    assert 0.85 * 300 * 14 <= len(calls) <= 1.15 * 300 * 14
    local = [when(c).astimezone(NEW_YORK) for c in calls]
    by_hour = Counter(t.hour for t in local if t.weekday() < 5)
    assert by_hour[10] + by_hour[14] > 10 * (by_hour[2] + by_hour[3] + 1)
    weekday = Counter(t.weekday() for t in local)
    assert weekday[1] > 3 * weekday[6]


def test_mix_of_directions_answer_share_and_talk_times_is_realistic():
    calls = week(Simulator(seed=9, calls_per_day=300))
    inbound = [c for c in calls if c["direction"] == "Incoming"]
    outbound_share = 1 - len(inbound) / len(calls)
    answered_share = sum(c["callStatus"] == "Connected" for c in inbound) / len(inbound)
    assert 0.18 <= outbound_share <= 0.32
    assert 0.60 <= answered_share <= 0.80
    statuses = Counter(c["callStatus"] for c in inbound)
    assert all(statuses[s] > 20 for s in ("Missed", "VoiceMail", "Dropped"))
    talk = [int(c["duration"]) / 1000 for c in calls if c["callStatus"] == "Connected"]
    assert min(talk) < 30 and max(talk) > 1800 and max(talk) < 3601
    assert 60 < sorted(talk)[len(talk) // 2] < 400


def test_several_numbers_and_agents_take_part():
    sim = Simulator(seed=10, calls_per_day=200)
    calls = week(sim, days=2)
    assert {number_of(c) for c in calls} == set(sim.phone_numbers())
    extensions = {c["caller"].get("extension") for c in calls} | {
        p.get("extension") for c in calls for p in c["called"]
    }
    assert {ext for ext, _ in sim.agents()} <= extensions
    assert len(sim.agents()) >= 6 and len(sim.phone_numbers()) >= 3


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_every_phone_number_is_valid_for_libphonenumber(seed):
    sim = Simulator(seed=seed, calls_per_day=100)
    calls = week(sim, days=2)
    numbers = set(sim.phone_numbers())
    numbers |= {c["caller"]["phone"] for c in calls if "phone" in c["caller"]}
    numbers |= {p["phone"] for c in calls for p in c["called"] if "phone" in p}
    for number in numbers:
        parsed = phonenumbers.parse(number)
        assert phonenumbers.is_valid_number(parsed), number
        assert phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164) == number


def test_sms_are_deterministic_and_in_the_window():
    start, end = DAY_START, DAY_END + timedelta(days=1)
    first = Simulator(seed=5, calls_per_day=160).sms_between(start, end)
    assert first == Simulator(seed=5, calls_per_day=160).sms_between(start, end)
    assert len(first) > 10
    times = [datetime.fromisoformat(m["dateTimeUtc"]) for m in first]
    assert times == sorted(times, reverse=True) and start <= min(times) and max(times) < end


def test_generating_a_busy_day_and_serving_pages_is_fast():
    sim = Simulator(seed=12, calls_per_day=5000)
    started = time.perf_counter()
    day = sim.calls_between(DAY_START, DAY_END)
    assert len(day) > 5000
    with SimulatorServer(sim) as server:
        token = requests.post(
            f"{server.base_url}/auth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": sim.api_key,
                "client_secret": sim.user_key,
            },
            headers={"x-api-key": sim.api_key},
            timeout=5,
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}", "x-api-key": sim.api_key}
        with requests.Session() as session:
            for skip in range(0, 5000, 1000):
                params = {
                    "startUtc": "2024-03-05T00:00:00.000Z",
                    "endUtc": "2024-03-06T00:00:00.000Z",
                    "skip": skip,
                    "pageSize": 1000,
                }
                page = session.get(f"{server.base_url}/api/calls", params=params, headers=headers, timeout=5)
                assert len(page.json()["data"]["calls"]) == 1000
    assert time.perf_counter() - started < 3.0


def api(server, method, path, **kwargs):
    kwargs.setdefault("timeout", 5)
    return requests.request(method, f"{server.base_url}{path}", **kwargs)


def token_for(server):
    answer = api(
        server,
        "POST",
        "/auth/token",
        data={"grant_type": "client_credentials", "client_id": API_KEY, "client_secret": USER_KEY},
        headers={"x-api-key": API_KEY},
    )
    assert answer.status_code == 200
    body = answer.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 86400
    return body


def test_token_endpoint_refuses_bad_credentials_and_unknown_grants(sim_server):
    bad = api(
        sim_server,
        "POST",
        "/auth/token",
        data={"grant_type": "client_credentials", "client_id": API_KEY, "client_secret": "nope"},
        headers={"x-api-key": API_KEY},
    )
    assert (bad.status_code, bad.json()) == (400, {"error": "invalid_client"})
    stale = api(
        sim_server,
        "POST",
        "/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": "unknown"},
        headers={"x-api-key": API_KEY},
    )
    assert (stale.status_code, stale.json()) == (400, {"error": "invalid_grant"})


def test_refresh_token_is_single_use(sim_server):
    refresh = token_for(sim_server)["refresh_token"]
    form = {"grant_type": "refresh_token", "refresh_token": refresh}
    assert api(sim_server, "POST", "/auth/token", data=form, headers={"x-api-key": API_KEY}).status_code == 200
    assert api(sim_server, "POST", "/auth/token", data=form, headers={"x-api-key": API_KEY}).status_code == 400


def test_resources_require_both_bearer_and_api_key(sim_server):
    token = token_for(sim_server)["access_token"]
    denied = {"Message": "Authorization has been denied for this request."}
    no_key = api(sim_server, "GET", "/api/phonenumbers", headers={"Authorization": f"Bearer {token}"})
    no_bearer = api(sim_server, "GET", "/api/phonenumbers", headers={"x-api-key": API_KEY})
    both = api(
        sim_server,
        "GET",
        "/api/phonenumbers",
        headers={"Authorization": f"Bearer {token}", "x-api-key": API_KEY},
    )
    assert (no_key.status_code, no_key.json()) == (401, denied)
    assert (no_bearer.status_code, no_bearer.json()) == (401, denied)
    assert both.status_code == 200


def test_tokens_expire_after_their_ttl(sim_server, sim_clock):
    token = token_for(sim_server)["access_token"]
    headers = {"Authorization": f"Bearer {token}", "x-api-key": API_KEY}
    assert api(sim_server, "GET", "/api/team", headers=headers).status_code == 200
    sim_clock.advance(86_401)
    assert api(sim_server, "GET", "/api/team", headers=headers).status_code == 401


def test_page_size_is_capped_at_1000_and_page_parameter_is_ignored(sim_clock):
    sim = Simulator(seed=1, calls_per_day=1500, api_key=API_KEY, user_key=USER_KEY, clock=sim_clock)
    with SimulatorServer(sim) as server:
        headers = {
            "Authorization": f"Bearer {token_for(server)['access_token']}",
            "x-api-key": API_KEY,
        }
        params = {
            "startUtc": "2024-03-05T00:00:00Z",
            "endUtc": "2024-03-06T00:00:00Z",
            "pageSize": 5000,
        }
        first = api(server, "GET", "/api/calls", params=params, headers=headers).json()["data"]
        paged = api(server, "GET", "/api/calls", params={**params, "page": 3}, headers=headers).json()["data"]
    assert len(first["calls"]) == 1000 and first["total"] > 1000
    assert paged == first


def test_faults_can_be_switched_over_http(sim_server, sim):
    headers = {
        "Authorization": f"Bearer {token_for(sim_server)['access_token']}",
        "x-api-key": API_KEY,
    }
    control = f"{sim_server.url}/_sim/faults"
    added = requests.post(
        control,
        json={"route": "team", "kind": "server_error", "status": 503, "times": 2},
        timeout=5,
    )
    assert added.json()["faults"] == [{"route": "team", "kind": "server_error", "times": 2, "after": 0, "status": 503}]
    assert api(sim_server, "GET", "/api/team", headers=headers).status_code == 503
    requests.delete(control, timeout=5)
    assert api(sim_server, "GET", "/api/team", headers=headers).status_code == 200
    assert requests.post(control, json={"route": "team", "kind": "explode"}, timeout=5).status_code == 400
    assert requests.get(control, timeout=5).json()["requests"]["team"] == 2


def test_fault_control_takes_a_json_body_sent_without_a_json_content_type(sim_server, sim):
    control = f"{sim_server.url}/_sim/faults"
    # What `curl -d '{...}'` sends: a form content type on a JSON body.
    added = requests.post(
        control,
        data='{"route": "calls", "kind": "rate_limit", "times": 3}',
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=5,
    )
    assert added.status_code == 200
    assert sim.faults.active() == [{"route": "calls", "kind": "rate_limit", "times": 3, "after": 0}]


def test_fault_control_with_one_bad_entry_switches_on_none_of_them(sim_server, sim):
    answer = requests.post(
        f"{sim_server.url}/_sim/faults",
        json=[{"route": "team", "kind": "rate_limit"}, {"route": "team", "kind": "explode"}],
        timeout=5,
    )
    assert answer.status_code == 400 and "explode" in answer.json()["error"]
    assert sim.faults.active() == []


def test_fault_control_refuses_a_body_that_is_not_json_with_a_400_saying_so(sim_server, sim):
    answer = requests.post(f"{sim_server.url}/_sim/faults", data="route=calls&kind=rate_limit", timeout=5)
    assert answer.status_code == 400
    assert "not JSON" in answer.json()["error"]
    assert sim.faults.active() == []


def test_fault_after_k_requests_fires_on_the_next_one(sim_server, sim):
    headers = {
        "Authorization": f"Bearer {token_for(sim_server)['access_token']}",
        "x-api-key": API_KEY,
    }
    sim.faults.add("phone_numbers", "rate_limit", after=2, retry_after=4)
    statuses = [api(sim_server, "GET", "/api/phonenumbers", headers=headers) for _ in range(4)]
    assert [r.status_code for r in statuses] == [200, 200, 429, 200]
    assert statuses[2].headers["Retry-After"] == "4"


def test_truncated_answer_is_cut_inside_the_json(sim_server, sim):
    headers = {
        "Authorization": f"Bearer {token_for(sim_server)['access_token']}",
        "x-api-key": API_KEY,
    }
    full = api(sim_server, "GET", "/api/phonenumbers", headers=headers).content
    sim.faults.add("phone_numbers", "truncated")
    cut = api(sim_server, "GET", "/api/phonenumbers", headers=headers).content
    assert full.startswith(cut) and 0 < len(cut) < len(full)


def test_unknown_routes_answer_404_json(sim_server):
    answer = api(sim_server, "GET", "/api/nothing")
    assert answer.status_code == 404 and "Message" in answer.json()


def test_unanswered_call_has_no_recording_file(sim_server, sim):
    missed = next(c for c in sim.calls_between(DAY_START, DAY_END) if c["callRecord"] is None)
    answer = requests.get(f"{sim_server.url}/recordings/{missed['id']}.wav", timeout=5)
    assert answer.status_code == 404


def test_call_detail_serves_the_same_call_as_the_listing(sim_server, sim):
    headers = {
        "Authorization": f"Bearer {token_for(sim_server)['access_token']}",
        "x-api-key": API_KEY,
    }
    call = sim.calls_between(DAY_START, DAY_END)[17]
    detail = api(sim_server, "GET", f"/api/calls/{call['id']}", headers=headers).json()
    assert detail == {"data": call}


def test_a_hanging_request_does_not_block_other_requests(sim_server, sim):
    headers = {
        "Authorization": f"Bearer {token_for(sim_server)['access_token']}",
        "x-api-key": API_KEY,
    }
    sim.faults.add("team", "hang", seconds=5)
    hung = threading.Thread(
        target=lambda: api(sim_server, "GET", "/api/team", headers=headers, timeout=10),
        daemon=True,
    )
    hung.start()
    deadline = time.monotonic() + 2
    while sim.requests["team"] == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    assert api(sim_server, "GET", "/api/phonenumbers", headers=headers).status_code == 200
    assert time.monotonic() - started < 3.0  # blocked, it would wait out most of the hang's 5 s
    assert hung.is_alive()


def test_recording_downloads_answer_a_range_with_206_and_past_the_end_with_416(mightycall):
    record = next(r for r in mightycall.iter_calls(DAY_START, DAY_END) if r.recording_uri)
    whole = b"".join(mightycall.stream_recording(record.recording_uri))
    with mightycall.open_recording(record.recording_uri, byte_range="bytes=10-19") as part:
        assert part.status == 206 and part.content_range == f"bytes 10-19/{len(whole)}"
        assert b"".join(part.iter_chunks()) == whole[10:20]
    with pytest.raises(ClientError) as refused:
        mightycall.open_recording(record.recording_uri, byte_range=f"bytes={len(whole)}-")
    assert refused.value.status == 416


def test_signed_recording_links_expire_and_a_fresh_read_of_the_call_renews_them(make_client, sim, sim_clock):
    sim.recording_link_ttl = 60
    mightycall = make_client(max_retries=0)
    record = next(r for r in mightycall.iter_calls(DAY_START, DAY_END) if r.recording_uri)
    assert "signature=" in record.recording_uri
    assert b"".join(mightycall.stream_recording(record.recording_uri))
    sim_clock.advance(61)
    with pytest.raises(AuthenticationError) as expired:
        mightycall.open_recording(record.recording_uri)
    assert expired.value.status == 403
    fresh = mightycall.get_call(record.external_id).recording_uri
    assert fresh != record.recording_uri and b"".join(mightycall.stream_recording(fresh))
