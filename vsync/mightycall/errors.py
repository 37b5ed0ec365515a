"""Typed errors raised by the MightyCall client, and the reading of MightyCall's error answers.

Every error says two things a caller needs: a message a person can act on (it never contains a
token, API key or user key) and whether trying again later can help (``retryable``). The job layer
decides *when* to retry; the client has already retried transient failures with backoff before
raising, so a retryable error here means "the service is unwell right now", not "retry immediately".
"""

from __future__ import annotations

import email.utils
import html
import json
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

_MAX_REASON = 160


class MightyCallError(Exception):
    """Base class of every error the client raises.

    ``status`` is the HTTP status when there was a response (``None`` for transport failures),
    ``retryable`` whether the same request may succeed later, ``retry_after`` the delay in seconds
    the service asked for (``None`` when it did not say).
    """

    default_retryable = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retryable: bool | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.retryable = self.default_retryable if retryable is None else retryable
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, status={self.status!r}, retryable={self.retryable!r})"


class AuthenticationError(MightyCallError):
    """The credentials were refused: API key, user key (or extension), or a freshly issued token.

    Not retryable: someone has to fix the integration's credentials or its account host.
    """


class RateLimited(MightyCallError):
    """429 from MightyCall. ``retry_after`` holds the seconds the service asked to wait, if any."""

    default_retryable = True

    def __init__(self, message: str, *, status: int | None = 429, retry_after: float | None = None) -> None:
        super().__init__(message, status=status, retry_after=retry_after)


class ServerError(MightyCallError):
    """5xx (or 408) from MightyCall or from a proxy in front of it."""

    default_retryable = True


class TransportError(MightyCallError):
    """No usable response: connection refused or reset, DNS failure, connect or read timeout."""

    default_retryable = True


class ProtocolError(MightyCallError):
    """A response that does not follow the API's shape.

    Covers a body that is not JSON or is cut short, ``"isSuccess": false`` on a 200, and a missing
    ``data`` envelope. Retryable by default: in practice these come from proxies answering with an
    HTML page, from connections dropped mid-body and from transient service faults, and they go away
    on a later attempt. Cases that will not go away (a server that ignores ``skip``) are raised with
    ``retryable=False``.
    """

    default_retryable = True


class MightyCallNotFound(MightyCallError):
    """404: the resource does not exist (or a recording link has expired; re-read the call)."""


class ClientError(MightyCallError):
    """Any other 4xx: the request itself was refused, repeating it unchanged will not help."""


# Reading error answers


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` header given in seconds or as an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return max(0.0, (when - now).total_seconds())
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


_TAG_RE = re.compile(r"<[^>]+>")
_TITLE_RE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_SPACE_RE = re.compile(r"\s+")


def reason_from_json(body: Any) -> str | None:
    """The message of a JSON error body in any of the shapes MightyCall and its proxies use."""
    if isinstance(body, list) and body:
        return reason_from_json(body[0])
    if isinstance(body, str):
        return body
    if not isinstance(body, Mapping):
        return None
    for key in ("Message", "message", "error_description", "error", "Error", "title", "detail"):
        value = body.get(key)
        if isinstance(value, str) and value.strip():
            if key == "error" and isinstance(body.get("error_description"), str):
                continue
            return value
        if isinstance(value, Mapping):
            nested = reason_from_json(value)
            if nested:
                return nested
    errors = body.get("errors")
    if isinstance(errors, (list, Mapping)) and errors:
        return reason_from_json(errors if isinstance(errors, list) else list(errors.values()))
    return None


def short_reason(content: bytes, encoding: str | None, fallback: str | None) -> str:
    """A short, human reason from an error body, whatever its shape (JSON, HTML, text).

    ``fallback`` (the HTTP reason phrase) is used when the body says nothing. The result is not
    redacted: the client removes its secrets from it before it goes into an error.
    """
    content = content[:65536] if content else b""
    text = content.decode(encoding or "utf-8", errors="replace")
    reason = None
    stripped = text.lstrip()
    if stripped[:1] in ("{", "["):
        try:
            reason = reason_from_json(json.loads(text))
        except ValueError:
            reason = None
    if reason is None and stripped[:1] == "<":
        title = _TITLE_RE.search(text)
        reason = html.unescape(_TAG_RE.sub(" ", title.group(1) if title else text))
    if reason is None:
        reason = text
    reason = _SPACE_RE.sub(" ", reason).strip()
    if not reason:
        reason = fallback or "no reason given"
    if len(reason) > _MAX_REASON:
        reason = reason[: _MAX_REASON - 1] + "…"
    return reason
