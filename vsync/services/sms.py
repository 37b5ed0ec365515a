"""Text messages as conversations, and sending one through MightyCall.

A conversation is the thread between one of the org's numbers and one other party (the
counterpart): the same person texting two of the org's numbers has two conversations, because a
reply goes out from the number they wrote to. Conversations are read with ORM selects, so the
tenant hook narrows them like the SMS list (`vsync.services.traffic`): the org's numbers while they
were its numbers, and nothing for an agent.

`send_sms` is the one way to send, for the console and the API. It checks everything it can before
MightyCall is asked (a from-number the org holds now, a valid recipient, a text of 1 to `MAX_TEXT`
characters), then the org's send limit, then sends once: MightyCall's send is not idempotent, so a
timeout or a refusal is an error and nothing is stored as sent. What MightyCall accepted is stored at
once through the sync's own writer (`ingest.write_sms`), keyed by MightyCall's message id, so it shows
in the thread now and the next sync updates that row instead of adding a second one.

The audit row names the numbers, the length and MightyCall's id, not the text: the text is a private
message between the org and its customer, kept where the org's SMS rules keep it (the tenant scope,
managers and up); the audit log is read by other people (platform admins across orgs) and kept for
other reasons, and "who sent what to whom, when" needs no copy of the words.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import current_app
from limits import parse_many
from limits.strategies import MovingWindowRateLimiter
from sqlalchemy import Row, func, select, tuple_

from vsync.errors import NotFound, TooManyRequests, UpstreamError, ValidationError
from vsync.extensions import db
from vsync.mightycall import MightyCallError, SmsRecord
from vsync.models import Integration, Organization, PhoneNumber, SmsMessage
from vsync.models.types import utcnow
from vsync.phones import normalize_e164
from vsync.services import audit
from vsync.services.integrations import client_for
from vsync.services.sync.ingest import NumberBook, write_sms
from vsync.services.traffic import Search

log = logging.getLogger(__name__)

MAX_TEXT = 1600  # MightyCall's limit is [unknown]; 1600 characters is the common carriers' cap (ten segments)
CONVERSATIONS_SHOWN = 200
THREAD_SHOWN = 500
# Retries only where MightyCall certainly did not act (429, a refused token): the client never repeats
# a send after a timeout or a 5xx.
SEND_RETRIES = 1


class UpstreamTimeout(UpstreamError):
    """MightyCall did not answer a send in time: whether the message went out is not known."""

    status = 504
    code = "mightycall_timeout"


@dataclass(frozen=True)
class Conversation:
    number_id: int
    counterpart: str | None
    last_at: datetime
    last_text: str | None
    last_direction: str
    messages: int


# Reading


def conversations(search: Search | None = None, limit: int = CONVERSATIONS_SHOWN) -> list[Conversation]:
    """The scope's conversations, the most recently active first, each with its last message and
    how many messages it holds. With `search`, those with a message whose text, id or other party's
    number matches."""
    pair = (SmsMessage.phone_number_id, SmsMessage.counterpart)
    ranked = select(
        SmsMessage.id,
        *pair,
        SmsMessage.sent_at,
        SmsMessage.text,
        SmsMessage.direction,
        func.row_number()
        .over(partition_by=pair, order_by=(SmsMessage.sent_at.desc(), SmsMessage.id.desc()))
        .label("rank"),
        func.count().over(partition_by=pair).label("messages"),
    )
    if search is not None:
        matching = select(*pair).where(
            search.criterion(numbers=(SmsMessage.counterpart,), texts=(SmsMessage.text, SmsMessage.external_id))
        )
        ranked = ranked.where(tuple_(*pair).in_(matching))
    last = ranked.subquery()
    rows = db.session.execute(
        select(last).where(last.c.rank == 1).order_by(last.c.sent_at.desc(), last.c.id.desc()).limit(limit)
    )
    return [
        Conversation(
            number_id=row.phone_number_id,
            counterpart=row.counterpart,
            last_at=row.sent_at,
            last_text=row.text,
            last_direction=row.direction,
            messages=row.messages,
        )
        for row in rows
    ]


def org_number(e164: str, *, field: str = "number") -> PhoneNumber:
    """One of the numbers the scope sees (now or in the past), by E.164."""
    number = db.session.scalar(select(PhoneNumber).where(PhoneNumber.e164 == normalize_e164(e164, field=field)))
    if number is None:
        raise NotFound(f"{e164} is not one of this organisation's numbers.", field=field)
    return number


def thread(number: PhoneNumber, counterpart: str | None, limit: int = THREAD_SHOWN) -> list[Row]:
    """The conversation's messages in the order they happened (its last `limit` ones)."""
    newest = (
        select(SmsMessage.id, SmsMessage.direction, SmsMessage.sent_at, SmsMessage.text, SmsMessage.raw)
        .where(SmsMessage.phone_number_id == number.id, SmsMessage.counterpart.is_not_distinct_from(counterpart))
        .order_by(SmsMessage.sent_at.desc(), SmsMessage.id.desc())
        .limit(limit)
    )
    return list(reversed(db.session.execute(newest).all()))


def sendable_numbers(org: Organization, now: datetime | None = None) -> list[str]:
    """The E.164 of the numbers the org holds at `now`: the ones it may send from."""
    seen = db.session.scalars(select(PhoneNumber).order_by(PhoneNumber.e164)).all()
    book = _book(org, None)
    at = now or utcnow()
    return [n.e164 for n in seen if book.number_at(n.e164, at) is not None]


# Sending


@dataclass(frozen=True)
class Sent:
    """What MightyCall accepted: its id and the stored message (None when it answered without an id:
    the next sync brings the message in)."""

    external_id: str | None
    message: SmsMessage | None
    from_number: str
    to: str


def send_sms(org: Organization, *, from_number: str, to: str, text: str, now: datetime | None = None) -> Sent:
    """Send `text` from one of the org's numbers to `to` through MightyCall, store it and audit it.

    Raises `ValidationError` (400) naming `from`, `to` or `text` before MightyCall is asked: a
    from-number the org does not hold now is refused in the same words whether it is unknown,
    another org's or a past one of this org's. `TooManyRequests` (429) over the org's send limit;
    `UpstreamError` 502 `mightycall_refused` when MightyCall refuses or fails, 504
    `mightycall_timeout` when it does not answer in time (the message may or may not have gone out:
    MightyCall is not asked again, and nothing is stored). The caller commits.
    """
    at = now or utcnow()
    message = text or ""
    if not message.strip():
        raise ValidationError("Write the message: it is empty.", field="text")
    if len(message) > MAX_TEXT:
        raise ValidationError(
            f"The message is {len(message)} characters; at most {MAX_TEXT} can be sent.", field="text"
        )
    sender = _sender(org, from_number, at)
    recipient = normalize_e164(to, field="to")
    integration = _integration(org, sender)
    _count_send(org)
    client = client_for(integration, max_retries=SEND_RETRIES)
    try:
        answer = client.send_sms(sender.e164, recipient, message)
    except MightyCallError as exc:
        log.warning("org %s: MightyCall did not send an SMS (%s, status %s)", org.id, type(exc).__name__, exc.status)
        raise _send_failed(exc) from None
    finally:
        client.close()
    external_id = _sent_id(answer, recipient)
    stored = None
    if external_id is not None:
        record = SmsRecord(
            external_id=external_id,
            occurred_at=at,
            direction="outbound",
            business_number=sender.e164,
            counterpart=recipient,
            text=message,
            raw={"id": external_id, "status": "sent", "from": sender.e164, "to": recipient, "sentBy": "vsync"},
        )
        write_sms(integration.account_id, [record], _book(org, integration.id))
        stored = db.session.scalar(
            select(SmsMessage).where(
                SmsMessage.account_id == integration.account_id, SmsMessage.external_id == external_id
            )
        )
    audit.record(
        "sms.sent",
        org_id=org.id,
        target=stored if stored is not None else ("PhoneNumber", sender.id),
        summary=f"from {sender.e164} to {recipient}, {len(message)} characters, "
        + (f"MightyCall id {external_id}" if external_id else "MightyCall gave no id"),
    )
    return Sent(external_id=external_id, message=stored, from_number=sender.e164, to=recipient)


def _book(org: Organization, integration_id: int | None) -> NumberBook:
    return NumberBook(org_id=org.id, integration_id=integration_id or 0, discover=False)


def _sender(org: Organization, from_number: str, at: datetime) -> PhoneNumber:
    """The org's number `from_number` if the org holds it at `at`. Any other number gets the same
    answer, so the error tells nothing about numbers outside the org."""
    e164 = normalize_e164(from_number, field="from")
    number_id = _book(org, None).number_at(e164, at)
    number = db.session.get(PhoneNumber, number_id) if number_id is not None else None
    if number is None:
        raise ValidationError(f"{e164} is not one of this organisation's numbers; send from one of them.", field="from")
    return number


def _integration(org: Organization, number: PhoneNumber) -> Integration:
    """The org's integration that sends for `number`: the one that brought the number in, else the
    org's only one."""
    found = db.session.scalars(select(Integration).where(Integration.org_id == org.id).order_by(Integration.id)).all()
    for integration in found:
        if integration.id == number.integration_id:
            return integration
    if len(found) == 1:
        return found[0]
    if not found:
        raise ValidationError("Connect MightyCall under Integration before sending messages.", field="from")
    raise ValidationError(
        f"{number.e164} came from no integration of this organisation; "
        "ask your platform admin which account sends for it.",
        field="from",
    )


def _count_send(org: Organization) -> None:
    """Count one send against the org's limit (`VSYNC_SMS_SEND_LIMIT`, shared by every web process
    through the API's rate-limit storage); over it, `TooManyRequests`. A moving window: never more
    than the limit in any stretch of its length, however the sends fall around a minute's turn. A
    storage that cannot be reached does not stop a send: the API's own write limit still holds."""
    rate = current_app.config["VSYNC_SMS_SEND_LIMIT"]
    limiter = MovingWindowRateLimiter(current_app.extensions["vsync.limiter"].storage)
    key = f"org:{org.id}"
    try:
        over = [item for item in parse_many(rate) if not limiter.test(item, "sms-send", key)]
        if not over:
            for item in parse_many(rate):
                limiter.hit(item, "sms-send", key)
            return
        reset_at = max(limiter.get_window_stats(item, "sms-send", key).reset_time for item in over)
    except Exception:  # any storage failure: count nothing rather than refuse
        log.warning("org %s: the SMS send limit could not be counted", org.id, exc_info=True)
        return
    retry_after = max(1, int(reset_at - time.time()) + 1)
    raise TooManyRequests(
        f"This organisation has sent as many messages as it may ({rate}); try again in {retry_after} seconds.",
        retry_after=retry_after,
        field="text",
    )


def _send_failed(exc: MightyCallError) -> UpstreamError:
    if exc.status is None:
        return UpstreamTimeout(
            "MightyCall did not answer in time or could not be reached; the message may not have gone out. "
            "Check the conversation after the next sync before sending it again.",
            field="text",
        )
    return UpstreamError(
        f"MightyCall refused the message (it answered {exc.status}: {exc.message}).",
        field="text",
        code="mightycall_refused",
    )


def _sent_id(answer: Any, recipient: str) -> str | None:
    """MightyCall's id of the message to `recipient` in its answer to a send ([unknown] shape: the
    simulator's `{"data": {"messages": [{"id", "to"}]}}`, or an id at the top or under `data`)."""
    data = answer.get("data", answer) if isinstance(answer, Mapping) else None
    if not isinstance(data, Mapping):
        return None
    messages = data.get("messages")
    if isinstance(messages, list):
        for item in messages:
            if isinstance(item, Mapping) and item.get("id") and item.get("to", recipient) == recipient:
                return str(item["id"])
    for key in ("id", "messageId", "requestId"):
        if data.get(key):
            return str(data[key])
    return None
