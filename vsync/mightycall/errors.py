"""Typed errors raised by the MightyCall client.

Every error says two things a caller needs: a message a person can act on (it never contains a
token, API key or user key) and whether trying again later can help (``retryable``). The job layer
decides *when* to retry; the client has already retried transient failures with backoff before
raising, so a retryable error here means "the service is unwell right now", not "retry immediately".
"""

from __future__ import annotations


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
        return (
            f"{type(self).__name__}({self.message!r}, status={self.status!r}, "
            f"retryable={self.retryable!r})"
        )


class AuthenticationError(MightyCallError):
    """The credentials were refused: API key, user key (or extension), or a freshly issued token.

    Not retryable: someone has to fix the integration's credentials or its account host.
    """


class RateLimited(MightyCallError):
    """429 from MightyCall. ``retry_after`` holds the seconds the service asked to wait, if any."""

    default_retryable = True

    def __init__(
        self, message: str, *, status: int | None = 429, retry_after: float | None = None
    ) -> None:
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


class NotFound(MightyCallError):
    """404: the resource does not exist (or a recording link has expired; re-read the call)."""


class ClientError(MightyCallError):
    """Any other 4xx: the request itself was refused, repeating it unchanged will not help."""
