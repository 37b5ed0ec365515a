from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from vsync.mightycall.parsing import (
    ParseError,
    parse_call,
    parse_datetime,
    parse_duration_ms,
    parse_phone_numbers,
    parse_sms,
    parse_team,
    participants,
)


def inbound_call(**overrides):
    call = {
        "id": "0a1b2c3d-0000-4000-8000-000000000001",
        "caller": {"name": "MARY SMITH", "phone": "+17182223344"},
        "called": [{"isConnected": True, "name": "Alice Johnson", "extension": "101"}],
        "businessNumber": "+12127363100",
        "dateTimeUtc": "2024-03-05T14:04:07.523Z",
        "duration": "123450",
        "direction": "Incoming",
        "callStatus": "Connected",
        "callRecord": {"fileName": "rec.wav", "uri": "https://rec.example.net/rec.wav?sig=x"},
    }
    call.update(overrides)
    return call


def outbound_call(**overrides):
    call = {
        "id": "0a1b2c3d-0000-4000-8000-000000000002",
        "caller": {"name": "Brian Smith", "extension": "102"},
        "called": [{"isConnected": True, "name": "", "phone": "+13125551234"}],
        "businessNumber": "+16465281914",
        "dateTimeUtc": "2024-03-05T15:00:00.5Z",
        "duration": 60000,
        "direction": "Outgoing",
        "callStatus": "Connected",
        "callRecord": None,
    }
    call.update(overrides)
    return call


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("123450", 123450),
        (123450, 123450),
        (123450.4, 123450),
        (" 42 ", 42),
        ("1500.0", 1500),
        (None, None),
        ("", None),
        ("soon", None),
        (-5, None),
        (True, None),
    ],
)
def test_duration_accepts_ms_strings_ints_and_floats(value, expected):
    assert parse_duration_ms(value) == expected


@pytest.mark.parametrize(
    ("text", "microsecond"),
    [
        ("2024-03-05T14:04:07Z", 0),
        ("2024-03-05T14:04:07.5Z", 500000),
        ("2024-03-05T14:04:07.52Z", 520000),
        ("2024-03-05T14:04:07.523Z", 523000),
        ("2024-03-05T14:04:07.5234567Z", 523456),
        ("2024-03-05T14:04:07.523+00:00", 523000),
        ("2024-03-05T14:04:07.523", 523000),
    ],
)
def test_timestamps_with_0_to_7_fraction_digits_parse_to_aware_utc(text, microsecond):
    parsed = parse_datetime(text)
    assert parsed == datetime(2024, 3, 5, 14, 4, 7, microsecond, tzinfo=UTC)
    assert parsed.utcoffset() == timedelta(0)


def test_timestamp_with_offset_is_converted_to_utc():
    assert parse_datetime("2024-03-05T09:04:07.5-05:00") == datetime(2024, 3, 5, 14, 4, 7, 500000, tzinfo=UTC)


def test_inbound_call_derives_parties_agent_and_end_time():
    record = parse_call(inbound_call())
    assert record.external_id == "0a1b2c3d-0000-4000-8000-000000000001"
    assert record.direction == "inbound"
    assert record.status == "answered"
    assert record.provider_status == "Connected"
    assert record.from_number == "+17182223344"
    assert record.to_number == "+12127363100"
    assert record.business_number == "+12127363100"
    assert record.started_at == datetime(2024, 3, 5, 14, 4, 7, 523000, tzinfo=UTC)
    assert record.duration_ms == 123450
    assert record.ended_at == record.started_at + timedelta(milliseconds=123450)
    assert (record.agent_extension, record.agent_name) == ("101", "Alice Johnson")
    assert record.recording_file_name == "rec.wav"
    assert record.recording_uri == "https://rec.example.net/rec.wav?sig=x"
    assert record.raw == inbound_call()


def test_inbound_agent_is_the_connected_extension_not_the_first_rung():
    called = [
        {"isConnected": False, "name": "Carmen Lopez", "extension": "103"},
        {"isConnected": True, "name": "Alice Johnson", "extension": "101"},
    ]
    record = parse_call(inbound_call(called=called))
    assert record.agent_extension == "101"


def test_unanswered_inbound_agent_falls_back_to_first_rung_extension():
    called = [
        {"isConnected": False, "name": "", "phone": "+19175550100"},
        {"isConnected": False, "name": "Carmen Lopez", "extension": "103"},
        {"isConnected": False, "name": "David Kim", "extension": "104"},
    ]
    record = parse_call(inbound_call(called=called, callStatus="Missed", callRecord=None))
    assert (record.status, record.agent_extension, record.agent_name) == (
        "missed",
        "103",
        "Carmen Lopez",
    )
    assert record.recording_uri is None


def test_inbound_call_without_extensions_has_no_agent():
    record = parse_call(inbound_call(called=[], callStatus="Dropped"))
    assert record.agent_extension is None and record.agent_name is None
    assert record.status == "dropped"


def test_outbound_call_goes_from_business_number_to_called_phone_with_caller_as_agent():
    record = parse_call(outbound_call())
    assert record.direction == "outbound"
    assert record.from_number == "+16465281914"
    assert record.to_number == "+13125551234"
    assert (record.agent_extension, record.agent_name) == ("102", "Brian Smith")
    assert record.duration_ms == 60000
    assert record.started_at.microsecond == 500000


def test_callback_is_kept_apart_and_derived_like_outbound():
    record = parse_call(outbound_call(direction="Callback"))
    assert record.direction == "callback"
    assert record.from_number == "+16465281914"
    assert record.to_number == "+13125551234"
    assert record.agent_extension == "102"


def test_business_number_may_be_an_object():
    record = parse_call(inbound_call(businessNumber={"number": "+14159682210"}))
    assert record.business_number == "+14159682210"
    assert record.to_number == "+14159682210"


@pytest.mark.parametrize(
    ("provider", "status"),
    [
        ("Connected", "answered"),
        ("connected", "answered"),
        ("MISSED", "missed"),
        ("VoiceMail", "voicemail"),
        ("voicemail", "voicemail"),
        ("Dropped", "dropped"),
        ("Transferred", "other"),
        ("", "other"),
    ],
)
def test_statuses_map_case_insensitively_and_unknown_become_other(provider, status):
    record = parse_call(inbound_call(callStatus=provider))
    assert record.status == status
    assert record.provider_status == provider


def test_unknown_direction_becomes_other_without_failing():
    record = parse_call(inbound_call(direction="Internal"))
    assert record.direction == "other"
    assert record.from_number == "+17182223344"


def test_missing_duration_gives_no_end_time():
    record = parse_call(inbound_call(duration=None))
    assert record.duration_ms is None and record.ended_at is None


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"id": None}, "id"),
        ({"id": ""}, "id"),
        ({"dateTimeUtc": None}, "dateTimeUtc"),
        ({"dateTimeUtc": "yesterday"}, "dateTimeUtc"),
    ],
)
def test_call_without_id_or_valid_time_raises_parse_error_naming_the_field(overrides, field):
    with pytest.raises(ParseError) as caught:
        parse_call(inbound_call(**overrides))
    assert caught.value.field == field
    assert isinstance(caught.value, ValueError)


def test_non_object_call_raises_parse_error():
    with pytest.raises(ParseError):
        parse_call(["not", "a", "call"])


def test_participants_lists_named_extensions_once_caller_first():
    call = outbound_call(
        called=[
            {"isConnected": False, "name": "Carmen Lopez", "extension": "103"},
            {"isConnected": True, "name": "", "extension": "104"},
            {"isConnected": True, "name": "Bob", "phone": "+13125551234"},
        ]
    )
    call["caller"] = {"name": "Brian Smith", "extension": 102}
    assert participants(call) == [("102", "Brian Smith"), ("103", "Carmen Lopez")]


def test_sms_in_simulator_shape_is_parsed():
    raw = {
        "id": "sms-1",
        "type": "Message",
        "direction": "Incoming",
        "dateTimeUtc": "2024-03-05T14:00:00.1Z",
        "businessNumber": "+12127363100",
        "client": {"phone": "+17182223344", "name": ""},
        "from": "+17182223344",
        "to": "+12127363100",
        "text": "What time do you close?",
    }
    sms = parse_sms(raw)
    assert (sms.external_id, sms.direction, sms.business_number, sms.counterpart) == (
        "sms-1",
        "inbound",
        "+12127363100",
        "+17182223344",
    )
    assert sms.text == "What time do you close?"
    assert sms.occurred_at == datetime(2024, 3, 5, 14, 0, 0, 100000, tzinfo=UTC)
    assert sms.raw == raw


def test_sms_with_other_plausible_keys_is_parsed_from_from_and_to():
    sms = parse_sms(
        {
            "requestId": 77,
            "created": "2024-03-05T14:00:00Z",
            "Direction": "Outgoing",
            "from": {"number": "+12127363100"},
            "to": ["+17182223344"],
            "message": "Your order has shipped.",
        }
    )
    assert sms.external_id == "77"
    assert sms.direction == "outbound"
    assert sms.business_number == "+12127363100"
    assert sms.counterpart == "+17182223344"
    assert sms.text == "Your order has shipped."


def test_sms_without_id_raises_parse_error():
    with pytest.raises(ParseError) as caught:
        parse_sms({"dateTimeUtc": "2024-03-05T14:00:00Z", "text": "hi"})
    assert caught.value.field == "id"


def test_phone_numbers_accept_envelope_and_looser_shapes():
    body = {"data": {"phoneNumbers": [{"number": "+12127363100", "name": "Main"}, {"name": "broken"}]}}
    assert parse_phone_numbers(body) == [{"number": "+12127363100", "name": "Main"}]
    assert parse_phone_numbers({"data": ["+16465281914"]}) == [{"number": "+16465281914"}]
    assert parse_phone_numbers([{"phoneNumber": "+14159682210"}])[0]["number"] == "+14159682210"


def test_team_users_get_a_name_and_whatever_extension_key_exists():
    body = {
        "data": {
            "users": [
                {"fullName": "Alice Johnson", "extension": "101"},
                {"firstName": "Brian", "lastName": "Smith", "ext": 102},
                {"firstName": "Carmen", "extensionNumber": {"number": "103"}},
                {"email": "nobody@example.com"},
            ]
        }
    }
    users = parse_team(body)
    assert [(u["name"], u["extension"]) for u in users] == [
        ("Alice Johnson", "101"),
        ("Brian Smith", "102"),
        ("Carmen", "103"),
        (None, None),
    ]
    assert users[0]["fullName"] == "Alice Johnson"
