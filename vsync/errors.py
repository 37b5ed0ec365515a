"""Domain errors. Every edge maps them the same way: the API to JSON (400/404/409/502), the CLI to one
line and a non-zero exit, the admin to a flashed message."""

from __future__ import annotations


class DomainError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, field: str | None = None, details: dict | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code  # a more precise reason than the class's, for clients that branch on it
        self.field = field
        self.details = details or ({field: message} if field else {})


class ValidationError(DomainError):
    status = 400
    code = "validation_error"


class NotFound(DomainError):
    status = 404
    code = "not_found"


class Conflict(DomainError):
    status = 409
    code = "conflict"


class UpstreamError(DomainError):
    """MightyCall failed to give vsync what a request needs (after retrying): asking vsync again
    later may help, asking differently will not."""

    status = 502
    code = "upstream_error"


class TooManyRequests(DomainError):
    """Over a limit of vsync's own (not the API's per-caller one): `retry_after` seconds until the
    next try may pass; the API sends it as `Retry-After`."""

    status = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int, field: str | None = None):
        super().__init__(message, field=field)
        self.retry_after = retry_after
