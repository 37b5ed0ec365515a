"""`vsync.redaction`: what the platform console shows of a raw payload, and what the receiver keeps
of an API key."""

from __future__ import annotations

import json
import time

import pytest

from vsync.redaction import (
    API_KEY_MATCHED,
    MARKER,
    api_key_fields_replaced,
    is_api_key_name,
    redact,
    redact_payload,
    redact_text,
)


@pytest.mark.parametrize("name", ["ApiKey", "api_key", "X-Api-Key", "apiKey"])
def test_every_spelling_of_an_api_key_is_one(name):
    assert is_api_key_name(name)


@pytest.mark.parametrize("name", ["Key", "Guid", "EventType", "Extension"])
def test_other_fields_are_not_api_keys(name):
    assert not is_api_key_name(name)


def test_credentials_tokens_secrets_and_links_are_replaced_and_the_rest_kept():
    payload = {
        "ApiKey": "k1",
        "UserKey": "k2",
        "access_token": "t",
        "client_secret": "s",
        "Password": "p",
        "Authorization": "Bearer b",
        "X-Vsync-Signature": "t=1,v1=ab",
        "credentials": {"user": "u"},
        "Body": {
            "Id": "call-1",
            "From": "+12125550101",
            "callRecord": {"uri": "https://rec.example/r/1.wav", "fileName": "1.wav"},
            "Note": "see https://cdn.example/a.jpg?X-Amz-Signature=abc&X-Amz-Expires=60",
            "Home": "https://www.example.com/about",
        },
    }
    assert redact(payload) == {
        "ApiKey": MARKER,
        "UserKey": MARKER,
        "access_token": MARKER,
        "client_secret": MARKER,
        "Password": MARKER,
        "Authorization": MARKER,
        "X-Vsync-Signature": MARKER,
        "credentials": MARKER,
        "Body": {
            "Id": "call-1",
            "From": "+12125550101",
            "callRecord": {"uri": f"https://rec.example/{MARKER}", "fileName": "1.wav"},
            "Note": f"see https://cdn.example/{MARKER}",
            "Home": "https://www.example.com/about",
        },
    }


def test_a_stored_marker_is_shown_as_it_is():
    assert redact({"ApiKey": API_KEY_MATCHED}) == {"ApiKey": API_KEY_MATCHED}
    assert redact_text(f'{{"ApiKey": "{API_KEY_MATCHED}"}}') == f'{{"ApiKey": "{API_KEY_MATCHED}"}}'


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ('{"ApiKey": "k1", "Guid": "g"', f'{{"ApiKey": "{MARKER}", "Guid": "g"'),
        ("api_key=k1&token=t2&EventType=x", f"api_key={MARKER}&token={MARKER}&EventType=x"),
        ("Authorization: Bearer abc.def", f"Authorization: Bearer {MARKER}"),
        ("GET https://user:pw@host.example:8443/x failed", f"GET https://host.example:8443/{MARKER} failed"),
        ("MightyCall answered 503 at https://api.mightycall.com/v4/calls", None),
    ],
)
def test_text_that_is_not_json_loses_its_secrets(text, shown):
    assert redact_text(text) == (text if shown is None else shown)


def test_a_payload_is_shown_indented_when_it_is_json_and_as_text_otherwise():
    assert json.loads(redact_payload('{"token": "t", "n": 1}')) == {"token": MARKER, "n": 1}
    assert redact_payload("token=t") == f"token={MARKER}" and redact_payload(None) == ""


def test_an_api_keys_value_is_replaced_by_what_the_caller_says_of_it():
    seen = []
    text = api_key_fields_replaced('[{"ApiKey":"k1"},{"apikey": "k2"}] ApiKey=k3', lambda v: seen.append(v) or "[x]")
    assert text == '[{"ApiKey":"[x]"},{"apikey": "[x]"}] ApiKey=[x]' and seen == ["k1", "k2", "k3"]


@pytest.mark.parametrize("body", ["a" * 262_144, "api" * 87_000, "https://" * 32_000, "token=" * 43_000])
def test_a_large_body_is_redacted_in_linear_time(body):
    began = time.perf_counter()
    redact_text(body)
    api_key_fields_replaced(body, lambda value: MARKER)
    assert time.perf_counter() - began < 1
