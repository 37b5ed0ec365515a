from __future__ import annotations

import hashlib
import hmac
import json
import random
from collections import Counter
from datetime import UTC, datetime

import pytest

from vsync.mightycall.simulator import WebhookEmitter

from .helpers import API_KEY

SEQUENCES = {
    "answered": [
        "IncomingCall",
        "IncomingCallRinging",
        "IncomingCallConnected",
        "IncomingCallCompleted",
    ],
    "missed": [
        "IncomingCall",
        "IncomingCallRinging",
        "IncomingCallStopRinging",
        "IncomingCallCompleted",
    ],
    "voicemail": [
        "IncomingCall",
        "IncomingCallRinging",
        "IncomingCallStopRinging",
        "IncomingCallCompleted",
    ],
    "outbound": ["OutgoingCall", "OutgoingCallConnected", "OutgoingCallCompleted"],
}
STARTED = datetime(2024, 3, 5, 14, 0, 0, tzinfo=UTC)


def received(receiver):
    return [json.loads(body) for _, body in receiver.deliveries]


@pytest.mark.parametrize("lifecycle", sorted(SEQUENCES))
def test_lifecycle_is_delivered_in_order_with_the_legacy_payload(receiver, lifecycle):
    emitter = WebhookEmitter(receiver.url, API_KEY)
    sent = emitter.play(lifecycle, call_id="call-1", caller="+17182223344", extension="104", started_at=STARTED)
    events = received(receiver)
    assert events == sent
    assert [e["EventType"] for e in events] == SEQUENCES[lifecycle]
    assert len({e["Guid"] for e in events}) == len(events)
    for event in events:
        assert set(event) == {"EventType", "Timestamp", "Guid", "ApiKey", "Body"}
        assert event["ApiKey"] == API_KEY
        assert set(event["Body"]) == {"Id", "From", "To", "Extension", "DateTimeUtc", "Direction"}
        assert event["Body"]["Id"] == "call-1"
        assert event["Body"]["DateTimeUtc"] == "2024-03-05T14:00:00.0Z"
    outgoing = lifecycle == "outbound"
    assert events[0]["Body"]["From"] == ("+12127363100" if outgoing else "+17182223344")
    assert events[0]["Body"]["To"] == ("+17182223344" if outgoing else "+12127363100")
    timestamps = [e["Timestamp"] for e in events]
    assert timestamps == sorted(timestamps)
    assert emitter.deliveries == [(e["Guid"], 200) for e in events]


def test_voicemail_and_missed_calls_never_connect(receiver):
    emitter = WebhookEmitter(receiver.url, API_KEY)
    for lifecycle in ("voicemail", "missed"):
        emitter.play(lifecycle)
    assert not any("Connected" in e["EventType"] for e in received(receiver))


def test_duplicates_repeat_events_with_the_same_guid(receiver):
    sent = WebhookEmitter(receiver.url, API_KEY).play("answered", duplicate=True, rng_seed=3)
    events = received(receiver)
    assert events == sent
    counts = Counter(e["Guid"] for e in events)
    assert len(counts) == 4 and len(events) > 4
    assert max(counts.values()) == 2
    order = [e["EventType"] for e in events]
    assert [t for i, t in enumerate(order) if t not in order[:i]] == SEQUENCES["answered"]


def test_shuffle_delivers_out_of_order_but_complete(receiver):
    sent = WebhookEmitter(receiver.url, API_KEY).play("answered", shuffle=True, rng_seed=4)
    types = [e["EventType"] for e in received(receiver)]
    assert types != SEQUENCES["answered"]
    assert sorted(types) == sorted(SEQUENCES["answered"])
    assert [e["EventType"] for e in sent] == types


def test_same_seed_plays_the_same_events():
    emitter = WebhookEmitter("http://127.0.0.1:9/unused", API_KEY)
    first = emitter.events("missed", started_at=STARTED, rng=random.Random(7))
    again = emitter.events("missed", started_at=STARTED, rng=random.Random(7))
    assert first == again


def test_signed_deliveries_carry_a_timestamped_hmac_of_the_raw_body(receiver):
    secret = "relay-signing-secret"
    WebhookEmitter(receiver.url, API_KEY, signing_secret=secret).play("outbound")
    for headers, body in receiver.deliveries:
        stamp = headers["X-Vsync-Signature"].split(",")[0].removeprefix("t=")
        expected = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
        assert headers["X-Vsync-Signature"] == f"t={stamp},v1={expected}"


def test_unsigned_deliveries_have_no_signature_header(receiver):
    WebhookEmitter(receiver.url, API_KEY).play("outbound")
    assert all("X-Vsync-Signature" not in headers for headers, _ in receiver.deliveries)


def test_batch_sends_the_whole_lifecycle_as_one_json_list(receiver):
    sent = WebhookEmitter(receiver.url, API_KEY).play("missed", batch=True)
    assert len(receiver.deliveries) == 1
    assert json.loads(receiver.deliveries[0][1]) == sent


def test_validation_request_returns_the_echoed_value(receiver):
    emitter = WebhookEmitter(receiver.url, API_KEY)
    assert emitter.validate(receiver.url, "echo-123") == "echo-123"
    assert receiver.deliveries == []


def test_unknown_lifecycle_is_refused():
    with pytest.raises(ValueError):
        WebhookEmitter("http://127.0.0.1:9/unused", API_KEY).play("transferred")
