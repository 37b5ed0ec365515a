"""Webhook deliveries as MightyCall makes them: scripted call lifecycles POSTed to a receiver."""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import secrets
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import requests

from .data import format_ms, to_ms

__all__ = ["WebhookEmitter"]


_LIFECYCLES: dict[str, tuple[str, tuple[tuple[str, float, bool], ...]]] = {
    # (direction, ((event type, seconds after start, carries the extension), ...))
    "answered": (
        "Incoming",
        (
            ("IncomingCall", 0, False),
            ("IncomingCallRinging", 1, True),
            ("IncomingCallConnected", 9, True),
            ("IncomingCallCompleted", 190, True),
        ),
    ),
    "missed": (
        "Incoming",
        (
            ("IncomingCall", 0, False),
            ("IncomingCallRinging", 1, True),
            ("IncomingCallStopRinging", 31, True),
            ("IncomingCallCompleted", 32, False),
        ),
    ),
    "voicemail": (
        "Incoming",
        (
            ("IncomingCall", 0, False),
            ("IncomingCallRinging", 1, True),
            ("IncomingCallStopRinging", 21, True),
            ("IncomingCallCompleted", 75, False),
        ),
    ),
    "outbound": (
        "Outgoing",
        (
            ("OutgoingCall", 0, True),
            ("OutgoingCallConnected", 14, True),
            ("OutgoingCallCompleted", 160, True),
        ),
    ),
}


class WebhookEmitter:
    """Plays scripted call lifecycles against a webhook receiver, as MightyCall would deliver them.

    Each event is POSTed as JSON ``{"EventType", "Timestamp", "Guid", "ApiKey", "Body": {"Id",
    "From", "To", "Extension", "DateTimeUtc", "Direction"}}``; ``Guid`` identifies the event,
    ``Body.Id`` the call. MightyCall does not sign webhooks; with ``signing_secret`` the emitter
    adds ``X-Vsync-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`` as a relay
    would (the scheme vsync's receiver checks). The
    receiver's answers are kept in ``deliveries`` as (Guid, status); network failures raise
    ``requests`` errors. The target URL usually holds the receiver's secret token, so ``repr`` shows
    only its origin.
    """

    SIGNATURE_HEADER = "X-Vsync-Signature"

    def __init__(
        self,
        target_url: str,
        api_key: str,
        *,
        timeout: float = 5,
        session: requests.Session | None = None,
        signing_secret: str | bytes | None = None,
    ) -> None:
        self.target_url = target_url
        self._api_key = api_key
        self._timeout = timeout
        self._session = session or requests.Session()
        if isinstance(signing_secret, str):
            signing_secret = signing_secret.encode()
        self._signing_secret = signing_secret
        self.deliveries: list[tuple[str, int]] = []

    def __repr__(self) -> str:
        parts = urlsplit(self.target_url)
        return f"WebhookEmitter(target={parts.scheme}://{parts.netloc})"

    def signature(self, body: bytes, timestamp: int | None = None) -> str | None:
        if self._signing_secret is None:
            return None
        stamp = int(time.time()) if timestamp is None else timestamp
        digest = hmac.new(self._signing_secret, f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
        return f"t={stamp},v1={digest}"

    def send(self, payload: Any) -> int:
        """POST one event (or a list of them) as MightyCall would; return the receiver's status."""
        body = json.dumps(payload, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "MightyCall-Webhooks"}
        signature = self.signature(body)
        if signature:
            headers[self.SIGNATURE_HEADER] = signature
        response = self._session.post(self.target_url, data=body, headers=headers, timeout=self._timeout)
        response.close()
        guids = [e.get("Guid") for e in payload] if isinstance(payload, list) else [payload.get("Guid")]
        for guid in guids:
            self.deliveries.append((str(guid), response.status_code))
        return response.status_code

    def events(
        self,
        lifecycle: str,
        *,
        call_id: str | None = None,
        business_number: str = "+12127363100",
        caller: str = "+17185550123",
        extension: str = "101",
        started_at: datetime | None = None,
        rng: random.Random | None = None,
    ) -> list[dict[str, Any]]:
        """The events of one call's lifecycle in the order they happen, without sending them."""
        if lifecycle not in _LIFECYCLES:
            raise ValueError(f"unknown lifecycle {lifecycle!r}; expected one of {', '.join(_LIFECYCLES)}")
        rng = rng or random.Random()
        direction, script = _LIFECYCLES[lifecycle]
        started = started_at or datetime.now(UTC)
        if started.tzinfo is None:
            started = started.replace(tzinfo=UTC)
        call_id = call_id or str(uuid.UUID(int=rng.getrandbits(128), version=4))
        outgoing = direction == "Outgoing"
        start_text = format_ms(to_ms(started))
        events = []
        for event_type, offset, with_extension in script:
            events.append(
                {
                    "EventType": event_type,
                    "Timestamp": format_ms(to_ms(started + timedelta(seconds=offset))),
                    "Guid": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                    "ApiKey": self._api_key,
                    "Body": {
                        "Id": call_id,
                        "From": business_number if outgoing else caller,
                        "To": caller if outgoing else business_number,
                        "Extension": extension if with_extension else "",
                        "DateTimeUtc": start_text,
                        "Direction": direction,
                    },
                }
            )
        return events

    def play(
        self,
        lifecycle: str,
        *,
        call_id: str | None = None,
        business_number: str = "+12127363100",
        caller: str = "+17185550123",
        extension: str = "101",
        started_at: datetime | None = None,
        duplicate: bool = False,
        shuffle: bool = False,
        batch: bool = False,
        rng_seed: int | None = None,
    ) -> list[dict[str, Any]]:
        """Deliver one lifecycle: ``answered``, ``missed``, ``voicemail`` or ``outbound``.

        Returns the events in the order they were sent.

        ``duplicate`` delivers about half of the events (at least one) a second time with the same
        ``Guid``; ``shuffle`` delivers in a different order than they happened; ``batch`` sends them
        all in one POST as a JSON list (v4 may do so). ``rng_seed`` makes ids and order repeatable.
        """
        rng = random.Random(rng_seed)
        events = self.events(
            lifecycle,
            call_id=call_id,
            business_number=business_number,
            caller=caller,
            extension=extension,
            started_at=started_at,
            rng=rng,
        )
        sequence = list(events)
        if duplicate:
            for event in rng.sample(events, max(1, len(events) // 2)):
                position = sequence.index(event) + 1
                sequence.insert(rng.randint(position, len(sequence)), dict(event))
        if shuffle and len(sequence) > 1:
            original = [e["Guid"] for e in sequence]
            for _ in range(20):
                rng.shuffle(sequence)
                if [e["Guid"] for e in sequence] != original:
                    break
        if batch:
            self.send(sequence)
        else:
            for event in sequence:
                self.send(event)
        return sequence

    def validate(self, target_url: str | None = None, echo_value: str | None = None) -> str | None:
        """Send a validation request with an ``Echo`` header; return the ``Echo`` answered."""
        echo_value = echo_value or secrets.token_hex(8)
        response = self._session.post(
            target_url or self.target_url, headers={"Echo": echo_value}, timeout=self._timeout
        )
        response.close()
        return response.headers.get("Echo")
