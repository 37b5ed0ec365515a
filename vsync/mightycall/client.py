"""HTTP client for the MightyCall v4 API.

The client owns everything about talking to MightyCall: tokens (cached, shared through a
:class:`TokenStore`, refreshed before they expire and replaced on a 401), timeouts on every request,
retries with full-jitter backoff that honour ``Retry-After``, and typed errors (``errors.py``, which
also reads MightyCall's error bodies) whose messages a person can act on. Answers are parsed, their
envelopes included, in ``parsing.py``. It never logs or puts into an error a token, the API key or the user
key.

Callers must know:

* A failed call raises only after the client's own retries; ``error.retryable`` then tells the job
  layer whether to schedule another run.
* Calls are listed newest first and paged with ``skip``; calls that arrive while a window is paged
  shift the offsets. :meth:`MightyCallClient.iter_call_pages` never yields a call twice, but a pass
  can miss calls that arrived at the head of the window meanwhile: compare :meth:`count_calls`
  after the pass and read again while it says more (the sync job does).
* Sending a text message is not idempotent: it is retried only when MightyCall certainly did not act
  on it (401 before re-authenticating, 429, failures while obtaining a token).
"""

from __future__ import annotations

import json
import logging
import math
import random
import threading
import time
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, Protocol, Self, TypeVar
from urllib.parse import quote, urljoin, urlsplit

import requests

from .errors import (
    AuthenticationError,
    ClientError,
    MightyCallError,
    MightyCallNotFound,
    ProtocolError,
    RateLimited,
    ServerError,
    TransportError,
    parse_retry_after,
    reason_from_json,
    short_reason,
)
from .parsing import (
    CallRecord,
    ParseError,
    SmsRecord,
    calls_page,
    journal_items,
    parse_call,
    parse_phone_numbers,
    parse_sms,
    parse_team,
)

__all__ = [
    "CONTACT_CENTER_BASE_URL",
    "RECORDING_CONTENT_TYPE",
    "STANDARD_BASE_URL",
    "MemoryTokenStore",
    "MightyCallClient",
    "Pages",
    "RecordingStream",
    "Token",
    "TokenStore",
    "format_time",
]

logger = logging.getLogger(__name__)

STANDARD_BASE_URL = "https://api.mightycall.com/v4"
CONTACT_CENTER_BASE_URL = "https://ccapi.mightycall.com/v4"
RECORDING_CONTENT_TYPE = "audio/wav"

_DEFAULT_TOKEN_LIFETIME = timedelta(hours=1)
_MAX_REDIRECTS = 5
_STALLED_PAGES = 5

T = TypeVar("T")


class _Record(Protocol):
    @property
    def external_id(self) -> str: ...


R = TypeVar("R", bound=_Record)


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Token:
    """An access token and when it expires (UTC). ``repr`` never shows the secrets."""

    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    expires_at: datetime

    def is_fresh(self, now: datetime | None = None, margin: timedelta = timedelta(minutes=5)) -> bool:
        """True while the token stays valid for at least ``margin`` after ``now``."""
        now = now or _utcnow()
        return self.expires_at - margin > now

    def __repr__(self) -> str:
        refresh = "yes" if self.refresh_token else "no"
        return f"Token(expires_at={self.expires_at.isoformat()}, refresh_token={refresh})"


class TokenStore(Protocol):
    """Where a client keeps its token, so a fleet of workers shares one token instead of many.

    ``load`` returns the last saved token or ``None``; ``save`` replaces it. The client calls
    ``load`` before authenticating and ``save`` after obtaining a token. Implementations must keep
    the token secret (the app encrypts it in the database) and may be called from several threads.
    """

    def load(self) -> Token | None: ...

    def save(self, token: Token) -> None: ...


class MemoryTokenStore:
    """Process-local token store: the default, and enough for one process that reuses its client."""

    def __init__(self) -> None:
        self._token: Token | None = None
        self._lock = threading.Lock()

    def load(self) -> Token | None:
        with self._lock:
            return self._token

    def save(self, token: Token) -> None:
        with self._lock:
            self._token = token

    def __repr__(self) -> str:
        return f"MemoryTokenStore(token={self._token!r})"


class Pages(Generic[T]):
    """An iterator of pages (lists of records) that counts what it saw while paging.

    ``pages`` requests answered, ``fetched`` items received, ``skipped_invalid`` items that could
    not be parsed (logged at DEBUG and left out), ``duplicates`` items already yielded in this
    iteration, ``reported_total`` the last ``total`` the server reported (``None`` if it gave none).
    The counters are final once iteration ends; :meth:`records` flattens the pages.
    """

    def __init__(self, produce: Callable[[Pages[T]], Generator[list[T], None, None]]) -> None:
        self.pages = 0
        self.fetched = 0
        self.skipped_invalid = 0
        self.duplicates = 0
        self.reported_total: int | None = None
        self._pages = produce(self)

    def __iter__(self) -> Pages[T]:
        return self

    def __next__(self) -> list[T]:
        return next(self._pages)

    def close(self) -> None:
        self._pages.close()

    def records(self) -> Iterator[T]:
        for page in self:
            yield from page

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(pages={self.pages}, fetched={self.fetched}, "
            f"skipped_invalid={self.skipped_invalid}, duplicates={self.duplicates})"
        )


class RecordingStream:
    """An open recording download: iterate it (or :meth:`iter_chunks`) for bytes, then close it.

    ``content_type`` is what the server said, or ``audio/wav`` when it said nothing useful
    (MightyCall recordings are WAV files); ``content_length`` is ``None`` when unknown. ``status``
    is 200, or 206 when the server answered a ``Range`` with part of the file: ``content_range``
    then holds its ``Content-Range``.
    """

    def __init__(self, response: requests.Response, *, safe_url: str, chunk_size: int = 64 * 1024):
        self._response = response
        self._chunk_size = chunk_size
        self.url = safe_url
        self.status = response.status_code
        self.content_range = response.headers.get("Content-Range") if self.status == 206 else None
        declared = (response.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        generic = ("", "application/octet-stream", "binary/octet-stream")
        self.content_type = RECORDING_CONTENT_TYPE if declared in generic else declared
        length = response.headers.get("Content-Length")
        self.content_length = int(length) if length and length.isdigit() else None

    def iter_chunks(self, chunk_size: int | None = None) -> Iterator[bytes]:
        """Yield the body; a connection lost mid-way raises :class:`TransportError` (start over)."""
        try:
            for chunk in self._response.iter_content(chunk_size or self._chunk_size):
                if chunk:
                    yield chunk
        except requests.RequestException as exc:
            raise TransportError(
                f"The recording download from {self.url} broke off ({type(exc).__name__}); start the download again."
            ) from None
        finally:
            self.close()

    def __iter__(self) -> Iterator[bytes]:
        return self.iter_chunks()

    def close(self) -> None:
        self._response.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RecordingStream(url={self.url!r}, content_type={self.content_type!r})"


def format_time(value: datetime) -> str:
    """ISO-8601 UTC with ``Z`` and millisecond precision, as the calls endpoint expects.

    A naive datetime is taken as UTC (database drivers often return naive UTC values).
    """
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or {"http": 80, "https": 443}.get(scheme)
    return scheme, (parts.hostname or "").lower(), port


def _safe_url(url: str) -> str:
    """A URL without its query or fragment, which may carry a signature."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"


class MightyCallClient:
    """Client for one MightyCall account (one API key and user key).

    ``base_url`` is :data:`STANDARD_BASE_URL`, :data:`CONTACT_CENTER_BASE_URL` or a simulator's URL.
    ``user_key`` is the account's User key (standard accounts may use the user's extension instead).
    ``timeout`` is (connect, read) seconds for every request. Transient failures are retried up to
    ``max_retries`` times with full-jitter exponential backoff (``backoff_base``, ``backoff_cap``);
    ``sleep`` and ``rng`` are injectable so tests do not wait. ``token_margin`` is how long before
    expiry a token is replaced. ``recording_auth`` decides when recording downloads carry the bearer
    (see :meth:`open_recording`). The client is safe to share between threads.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        user_key: str,
        *,
        token_store: TokenStore | None = None,
        timeout: float | tuple[float, float] = (5.0, 30.0),
        max_retries: int = 4,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] = random.random,
        token_margin: timedelta = timedelta(minutes=5),
        clock: Callable[[], datetime] = _utcnow,
        recording_auth: str = "auto",
        max_pages: int = 10_000,
    ) -> None:
        parts = urlsplit(base_url.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("base_url must be an http(s) URL such as https://api.mightycall.com/v4")
        if not api_key or not user_key:
            raise ValueError("api_key and user_key are required")
        if recording_auth not in ("auto", "always", "never"):
            raise ValueError("recording_auth must be 'auto', 'always' or 'never'")
        self.base_url = base_url.strip().rstrip("/")
        self._api_key = api_key
        self._user_key = user_key
        self._store: TokenStore = token_store if token_store is not None else MemoryTokenStore()
        self._timeout = timeout if isinstance(timeout, tuple) else (timeout, timeout)
        self._max_retries = max(0, max_retries)
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._own_session = session is None
        self._session = session or requests.Session()
        self._sleep = sleep
        self._rng = rng
        self._token_margin = token_margin
        self._clock = clock
        self._recording_auth = recording_auth
        self._max_pages = max_pages
        self._token: Token | None = None
        self._token_lock = threading.RLock()

    def __repr__(self) -> str:
        return f"MightyCallClient(base_url={self.base_url!r})"

    def close(self) -> None:
        if self._own_session:
            self._session.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # Secrets and errors

    def _redact(self, text: str) -> str:
        secrets = [self._api_key, self._user_key]
        token = self._token
        if token is not None:
            secrets += [token.access_token, token.refresh_token or ""]
        for secret in secrets:
            if secret and len(secret) >= 4:
                text = text.replace(secret, "***")
        return text

    def _reason(self, response: requests.Response) -> str:
        return self._redact(short_reason(response.content, response.encoding, response.reason))

    def _http_error(self, response: requests.Response, method: str, path: str) -> MightyCallError:
        status = response.status_code
        reason = self._reason(response)
        where = f"{method} {path}"
        retry_after = parse_retry_after(response.headers.get("Retry-After"), self._clock())
        if status == 401:
            return AuthenticationError(
                f"MightyCall refused the access token on {where} even after re-authenticating "
                f"(401: {reason}). "
                "The API key may be disabled or lack access to this endpoint; check the "
                "integration's keys and its account host (standard or contact center).",
                status=status,
            )
        if status == 403:
            return ClientError(
                f"MightyCall refused access to {where} (403: {reason}). The key may lack "
                "permission for this endpoint, or the account belongs on the other host "
                f"({STANDARD_BASE_URL} for standard accounts, {CONTACT_CENTER_BASE_URL} for "
                "contact-center accounts).",
                status=status,
            )
        if status == 404:
            return MightyCallNotFound(f"MightyCall has no such resource: {where} (404: {reason}).", status=status)
        if status == 429:
            wait = f"; it asked to wait {retry_after:.0f} s" if retry_after is not None else ""
            return RateLimited(
                f"MightyCall rate limit reached on {where} (429: {reason}){wait}.",
                retry_after=retry_after,
            )
        if status == 408 or status >= 500:
            return ServerError(
                f"MightyCall or a proxy in front of it failed on {where} ({status}: {reason}); "
                "this is usually temporary.",
                status=status,
                retry_after=retry_after,
            )
        if 300 <= status < 400:
            target = _safe_url(urljoin(response.url or "", response.headers.get("Location", "")))
            return ClientError(
                f"MightyCall redirected {where} to {target} ({status}); check the base URL ({self.base_url}).",
                status=status,
            )
        return ClientError(f"MightyCall rejected {where} ({status}: {reason}).", status=status)

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        """Full-jitter delay for ``attempt`` (0-based), raised to ``retry_after`` when given.

        The result is capped at ``backoff_cap`` even when the server asked for longer: a worker does
        not sit idle for minutes inside one request. If the service still refuses after the retries,
        the error keeps ``retry_after`` so the job layer can schedule the next run accordingly.
        """
        jitter = self._rng() * min(self._backoff_cap, self._backoff_base * 2**attempt)
        if retry_after is None:
            return jitter
        return min(self._backoff_cap, max(retry_after, jitter))

    # Transport

    def _send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        params: Mapping[str, Any] | None = None,
        data: Mapping[str, str] | None = None,
        json_body: Any = None,
        stream: bool = False,
        shown: str | None = None,
    ) -> requests.Response:
        """One HTTP exchange. ``shown`` names the target in logs and errors instead of its URL:
        a recording link may be a pre-signed URL, so its downloads are logged by host only."""
        started = time.monotonic()
        shown = shown or _safe_url(url)
        try:
            response = self._session.request(
                method,
                url,
                headers=dict(headers),
                params=params,
                data=data,
                json=json_body,
                timeout=self._timeout,
                stream=stream,
                allow_redirects=False,
            )
        except requests.Timeout as exc:
            kind = "connect" if isinstance(exc, requests.ConnectTimeout) else "read"
            limit = self._timeout[0] if kind == "connect" else self._timeout[1]
            raise TransportError(
                f"MightyCall at {shown} did not answer in time ({kind} timeout after {limit:g} s)."
            ) from None
        except requests.RequestException as exc:
            raise TransportError(
                f"Could not reach MightyCall at {shown} ({type(exc).__name__}); check the network and the base URL."
            ) from None
        logger.debug(
            "MightyCall %s %s -> %s in %.0f ms",
            method,
            shown,
            response.status_code,
            (time.monotonic() - started) * 1000,
        )
        return response

    def _decode(self, response: requests.Response, method: str, path: str, *, allow_empty: bool = False) -> Any:
        try:
            if not 200 <= response.status_code < 300:
                raise self._http_error(response, method, path)
            if allow_empty and not response.content.strip():
                return {}
            try:
                body = json.loads(response.content)
            except ValueError:
                kind = "an empty body" if not response.content else "a body that is not valid JSON"
                snippet = self._reason(response) if response.content else ""
                raise ProtocolError(
                    f"MightyCall answered {method} {path} with {kind}"
                    + (f" ({snippet})" if snippet else "")
                    + "; a proxy or a dropped connection is the usual cause.",
                    status=response.status_code,
                ) from None
            if isinstance(body, Mapping) and body.get("isSuccess") is False:
                message = reason_from_json(body) or "no message"
                raise ProtocolError(
                    f"MightyCall reported a failure on {method} {path}: {self._redact(message)}.",
                    status=response.status_code,
                )
            return body
        finally:
            response.close()

    # Tokens

    def _token_request(self, form: dict[str, str], grant: str) -> Token:
        response = self._send(
            "POST",
            f"{self.base_url}/auth/token",
            headers={"x-api-key": self._api_key, "Accept": "application/json"},
            data=form,
        )
        if response.status_code in (400, 401, 403):
            reason = self._reason(response)
            response.close()
            if grant == "refresh_token":
                raise AuthenticationError(
                    f"MightyCall refused to refresh the access token ({reason}).",
                    status=response.status_code,
                )
            raise AuthenticationError(
                f"MightyCall rejected the API key / user key ({reason}). Check the integration's "
                f"API key and user key (or extension), and that {self.base_url} is the right host "
                "for this account (standard or contact center).",
                status=response.status_code,
            )
        body = self._decode(response, "POST", "/auth/token")
        access = body.get("access_token") if isinstance(body, Mapping) else None
        if not isinstance(access, str) or not access:
            raise ProtocolError("MightyCall's token response has no access_token.")
        try:
            lifetime = timedelta(seconds=float(body["expires_in"]))
        except (KeyError, TypeError, ValueError):
            lifetime = _DEFAULT_TOKEN_LIFETIME
        refresh = body.get("refresh_token")
        logger.debug("MightyCall issued a token by %s, valid %.0f s", grant, lifetime.total_seconds())
        return Token(
            access_token=access,
            refresh_token=refresh if isinstance(refresh, str) and refresh else None,
            expires_at=self._clock() + lifetime,
        )

    def _client_credentials(self) -> Token:
        return self._token_request(
            {
                "grant_type": "client_credentials",
                "client_id": self._api_key,
                "client_secret": self._user_key,
            },
            "client_credentials",
        )

    def _obtain(self, previous: Token | None) -> Token:
        """A new token: by refresh if ``previous`` has a refresh token, else by client credentials.

        A refused refresh (expired or already used refresh token) falls back to client credentials
        once; other failures (429, 5xx, timeouts) propagate so the request is retried with backoff.
        """
        token = None
        if previous is not None and previous.refresh_token:
            try:
                token = self._token_request(
                    {"grant_type": "refresh_token", "refresh_token": previous.refresh_token},
                    "refresh_token",
                )
            except AuthenticationError:
                logger.debug("MightyCall refused the refresh token; using client credentials")
        if token is None:
            token = self._client_credentials()
        self._token = token
        self._store.save(token)
        return token

    def _current_token(self) -> Token:
        token = self._token
        if token is not None and token.is_fresh(self._clock(), self._token_margin):
            return token
        with self._token_lock:
            now = self._clock()
            token = self._token
            if token is not None and token.is_fresh(now, self._token_margin):
                return token
            stored = self._store.load()
            if stored is not None and stored.is_fresh(now, self._token_margin):
                self._token = stored
                return stored
            return self._obtain(stored or token)

    def _replace_rejected(self, rejected: Token) -> Token:
        """A token to use after ``rejected`` got a 401: another worker's newer one, or a new one."""
        with self._token_lock:
            if self._token is not None and self._token.access_token != rejected.access_token:
                return self._token
            stored = self._store.load()
            if (
                stored is not None
                and stored.access_token != rejected.access_token
                and stored.is_fresh(self._clock(), self._token_margin)
            ):
                self._token = stored
                return stored
            return self._obtain(rejected)

    def authenticate(self) -> Token:
        """Make sure a usable token exists (from the store or newly obtained) and return it."""
        return self._with_retries(lambda progress: self._current_token(), idempotent=True)

    def _auth_headers(self, token: Token) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {token.access_token}",
            "x-api-key": self._api_key,
            "Accept": "application/json",
        }

    # Requests with retries

    def _with_retries(self, attempt_once: Callable[[dict[str, bool]], T], *, idempotent: bool) -> T:
        attempt = 0
        while True:
            progress = {"sent": False}
            try:
                return attempt_once(progress)
            except MightyCallError as exc:
                resend_ok = idempotent or not progress["sent"] or isinstance(exc, RateLimited)
                if not exc.retryable or not resend_ok or attempt >= self._max_retries:
                    raise
                delay = self._backoff(attempt, exc.retry_after)
                logger.debug(
                    "MightyCall attempt %d failed (%s, status %s); retrying in %.2f s",
                    attempt + 1,
                    type(exc).__name__,
                    exc.status,
                    delay,
                )
                self._sleep(delay)
                attempt += 1

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        idempotent: bool = True,
        allow_empty: bool = False,
    ) -> Any:
        url = f"{self.base_url}/{path.lstrip('/')}"
        shown = "/" + path.lstrip("/")

        def once(progress: dict[str, bool]) -> Any:
            token = self._current_token()
            progress["sent"] = True
            response = self._send(method, url, headers=self._auth_headers(token), params=params, json_body=json_body)
            if response.status_code == 401:
                response.close()
                progress["sent"] = False
                logger.debug("MightyCall answered 401 on %s %s; re-authenticating", method, shown)
                token = self._replace_rejected(token)
                progress["sent"] = True
                response = self._send(
                    method,
                    url,
                    headers=self._auth_headers(token),
                    params=params,
                    json_body=json_body,
                )
            if response.status_code == 429:
                progress["sent"] = False
            return self._decode(response, method, shown, allow_empty=allow_empty)

        return self._with_retries(once, idempotent=idempotent)

    # Calls

    def iter_call_pages(self, start: datetime, end: datetime, *, page_size: int = 1000) -> Pages[CallRecord]:
        """Pages of the calls that started in [start, end), newest first, each call yielded once.

        Paging follows ``skip``; it stops on an empty page, or on a short page once ``total``
        confirms the end. The server's ``total`` is only used to tell the end of the data from a
        silently capped ``pageSize`` (a short page while ``total`` says more remain means a cap:
        paging goes on with ``skip += len(page)``). A missing ``total``, or one contradicted by the
        pages, is ignored and paging goes on until an empty page. Items that cannot be parsed are
        skipped and counted. Raises :class:`ProtocolError` (not retryable) if the server keeps
        returning only calls already seen, or the window needs more than ``max_pages`` pages: narrow
        the window.

        Calls that arrive at the head of the window during paging shift the offsets: those seen
        twice are yielded once, those that arrived are not in this pass. Sync closed windows and
        re-read an overlap next time. Times are sent with millisecond precision.
        """
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        params = {"startUtc": format_time(start), "endUtc": format_time(end)}
        return Pages(lambda stats: self._call_pages(stats, params, page_size))

    def iter_calls(self, start: datetime, end: datetime, *, page_size: int = 1000) -> Iterator[CallRecord]:
        """The calls of :meth:`iter_call_pages`, one by one."""
        return self.iter_call_pages(start, end, page_size=page_size).records()

    def _call_pages(
        self, stats: Pages[CallRecord], window: dict[str, str], page_size: int
    ) -> Generator[list[CallRecord], None, None]:
        seen: set[str] = set()
        skip = 0
        full_page = page_size
        total_usable = True
        stalled = 0
        for _ in range(self._max_pages):
            body = self._request("GET", "api/calls", params={**window, "skip": skip, "pageSize": page_size})
            items, total = calls_page(body)
            stats.pages += 1
            stats.fetched += len(items)
            stats.reported_total = total
            if not items:
                return
            duplicates_before = stats.duplicates
            records = self._new_records(items, parse_call, seen, stats)
            skip += len(items)
            only_repeats = stats.duplicates - duplicates_before == len(items)
            stalled = stalled + 1 if only_repeats else 0
            if stalled >= _STALLED_PAGES:
                raise ProtocolError(
                    f"MightyCall returned only calls already seen for {_STALLED_PAGES} pages in a "
                    "row; it seems to ignore skip. Try a narrower window.",
                    retryable=False,
                )
            if records:
                yield records
            if total is None or total < skip:
                total_usable = False
            if len(items) >= full_page:
                continue
            if not total_usable or total is None:
                continue
            if skip < total:
                logger.debug("MightyCall capped pageSize %d at %d", page_size, len(items))
                full_page = len(items)
                continue
            return
        raise ProtocolError(
            f"Listing calls needed more than {self._max_pages} pages; use a narrower window.",
            retryable=False,
        )

    @staticmethod
    def _new_records(items: list[Any], parse: Callable[[Any], R], seen: set[str], stats: Pages[R]) -> list[R]:
        records = []
        for item in items:
            try:
                record = parse(item)
            except ParseError as exc:
                stats.skipped_invalid += 1
                logger.debug("Skipping an unusable MightyCall item (%s): %s", exc.field, exc)
                continue
            if record.external_id in seen:
                stats.duplicates += 1
                continue
            seen.add(record.external_id)
            records.append(record)
        return records

    def count_calls(self, start: datetime, end: datetime) -> int | None:
        """How many calls MightyCall holds for [start, end) now, from the ``total`` of a one-item
        page; ``None`` when it reports no usable total. Lets a caller notice calls that arrived
        while it paged."""
        params = {"startUtc": format_time(start), "endUtc": format_time(end), "skip": 0, "pageSize": 1}
        return calls_page(self._request("GET", "api/calls", params=params))[1]

    def get_call(self, external_id: str) -> CallRecord:
        """One call by id, e.g. for a fresh recording link; :class:`MightyCallNotFound` if unknown."""
        path = f"api/calls/{quote(str(external_id), safe='')}"
        body = self._request("GET", path)
        data = body.get("data") if isinstance(body, Mapping) else None
        if not isinstance(data, Mapping):
            raise ProtocolError(f"MightyCall's answer for call {external_id} has no data object.")
        try:
            return parse_call(data)
        except ParseError as exc:
            raise ProtocolError(f"MightyCall's call {external_id} is unusable: {exc}", retryable=False) from None

    # Numbers, team, SMS

    def phone_numbers(self) -> list[dict[str, Any]]:
        """The account's numbers: raw items, each with a normalised ``"number"``."""
        return parse_phone_numbers(self._request("GET", "api/phonenumbers"))

    def team(self) -> list[dict[str, Any]]:
        """The account's users: raw items, each with normalised ``"name"`` and ``"extension"``.

        ``extension`` may be ``None``: the key MightyCall uses for it is [unknown].
        """
        return parse_team(self._request("GET", "api/team"))

    def iter_sms_pages(self, start: datetime, end: datetime, *, page_size: int = 200) -> Pages[SmsRecord]:
        """Pages of text messages from the journal between ``start`` and ``end``, each yielded once.

        The journal pages by a 1-based ``page`` and gives no total, so only an empty page proves
        the end: a short page may as well be a silently capped page size. After a short page the
        next request uses a page size that divides the number of messages read so far (their
        greatest common divisor), so its page starts exactly after them whether the page was capped
        or was the last one; a journal that capped its pages differently from one request to the
        next is read without a gap. Raises :class:`ProtocolError` (not retryable) if the server
        keeps returning only messages already seen, or the window needs more than ``max_pages``
        pages.
        """
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        window = {"type": "Message", "from": format_time(start), "to": format_time(end)}
        return Pages(lambda stats: self._sms_pages(stats, window, page_size))

    def _sms_pages(
        self, stats: Pages[SmsRecord], window: dict[str, str], page_size: int
    ) -> Generator[list[SmsRecord], None, None]:
        seen: set[str] = set()
        read = 0
        size = page_size
        stalled = 0
        for _ in range(self._max_pages):
            body = self._request(
                "GET",
                "api/journal/requests",
                params={**window, "page": read // size + 1, "pageSize": size},
            )
            items = journal_items(body)
            stats.pages += 1
            stats.fetched += len(items)
            if not items:
                return
            duplicates_before = stats.duplicates
            records = self._new_records(items, parse_sms, seen, stats)
            stalled = stalled + 1 if stats.duplicates - duplicates_before == len(items) else 0
            if stalled >= _STALLED_PAGES:
                raise ProtocolError(
                    f"MightyCall's journal returned only messages already seen for {_STALLED_PAGES} "
                    "pages in a row; it seems to ignore page. Try a narrower window.",
                    retryable=False,
                )
            if records:
                yield records
            read += len(items)
            if len(items) < size:
                size = math.gcd(read, len(items))
        raise ProtocolError(
            f"Listing messages needed more than {self._max_pages} pages; use a narrower window.",
            retryable=False,
        )

    def iter_sms(self, start: datetime, end: datetime, *, page_size: int = 200) -> Iterator[SmsRecord]:
        """The messages of :meth:`iter_sms_pages`, one by one."""
        return self.iter_sms_pages(start, end, page_size=page_size).records()

    def send_sms(self, from_number: str, to_numbers: str | list[str], message: str) -> Any:
        """Send a text from one of the account's numbers; return MightyCall's answer (parsed JSON).

        The answer's shape is [unknown] (the simulator answers ``{"isSuccess": true, "data":
        {"messages": [{"id", "to", "status"}]}}``); an empty 2xx body is returned as ``{}``.

        Not idempotent: after a timeout or a 5xx the message may or may not have gone out, so the
        error is raised without a retry and the caller decides.
        """
        recipients = [to_numbers] if isinstance(to_numbers, str) else list(to_numbers)
        if not recipients:
            raise ValueError("to_numbers must name at least one recipient")
        return self._request(
            "POST",
            "api/contactcenter/messages/send",
            json_body={"from": from_number, "to": recipients, "message": message},
            idempotent=False,
            allow_empty=True,
        )

    # Recordings

    def open_recording(self, uri: str, *, byte_range: str | None = None) -> RecordingStream:
        """Open a recording download (a WAV file, usually on another host than the API).

        ``byte_range`` is sent as the ``Range`` header (``"bytes=0-1023"``); a server may answer
        with part of the file (``status`` 206) or ignore it and send the whole file (200). A range
        it cannot satisfy raises :class:`ClientError` with status 416.

        The bearer and API key go only where they are known to belong: with
        ``recording_auth="auto"`` (default) they are sent when the recording's origin equals the
        API's; a recording host that answers 401 or 403 without them is asked again with them.
        ``"always"`` sends them at once, ``"never"`` never does. They are never forwarded to a
        redirect target on another origin. Retries and timeouts apply as for API calls. A 404 or a
        refusal after retrying with the bearer usually means the link expired: call :meth:`get_call`
        for a fresh ``recording_uri``.
        """
        parts = urlsplit(uri)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("a recording uri must be an absolute http(s) URL")
        shown = _safe_url(uri)

        def once(progress: dict[str, bool]) -> RecordingStream:
            if self._recording_auth == "always":
                with_auth = True
            elif self._recording_auth == "never":
                with_auth = False
            else:
                with_auth = _origin(uri) == _origin(self.base_url)
            response, token = self._get_recording(uri, with_auth, byte_range)
            if response.status_code in (401, 403) and not with_auth and self._recording_auth == "auto":
                response.close()
                logger.debug("Recording host answered %s; retrying with the bearer", response.status_code)
                response, token = self._get_recording(uri, True, byte_range)
            if response.status_code == 401 and token is not None:
                response.close()
                self._replace_rejected(token)
                response, token = self._get_recording(uri, True, byte_range)
            if not 200 <= response.status_code < 300:
                try:
                    error = self._http_error(response, "GET", shown)
                finally:
                    response.close()
                status = response.status_code
                if status == 404:
                    error = MightyCallNotFound(
                        f"The recording at {shown} is gone (404); the link may have expired. Read "
                        "the call again (get_call) for a fresh link.",
                        status=status,
                    )
                elif status in (401, 403) and token is None:
                    error = AuthenticationError(
                        f"The recording host at {shown} asks for authorization ({status}), but "
                        "this client is set to recording_auth='never'.",
                        status=status,
                    )
                elif status in (401, 403):
                    error = AuthenticationError(
                        f"The recording at {shown} was refused ({status}) even with the access "
                        "token; the link may have expired. Read the call again (get_call) for a "
                        "fresh link.",
                        status=status,
                    )
                raise error
            return RecordingStream(response, safe_url=shown)

        return self._with_retries(once, idempotent=True)

    def _get_recording(
        self, uri: str, with_auth: bool, byte_range: str | None = None
    ) -> tuple[requests.Response, Token | None]:
        token = self._current_token() if with_auth else None
        first_origin = _origin(uri)
        api_origin = _origin(self.base_url)
        url = uri
        for _ in range(_MAX_REDIRECTS + 1):
            headers = {"Accept": "audio/wav, */*"}
            if token is not None and _origin(url) in (first_origin, api_origin):
                headers.update(self._auth_headers(token))
                headers["Accept"] = "audio/wav, */*"
            if byte_range:
                headers["Range"] = byte_range
            response = self._send("GET", url, headers=headers, stream=True, shown=f"a recording on {_origin(url)[1]}")
            location = response.headers.get("Location")
            if response.status_code in (301, 302, 303, 307, 308) and location:
                response.close()
                url = urljoin(url, location)
                continue
            return response, token
        raise ProtocolError(f"The recording at {_safe_url(uri)} redirects too many times.", retryable=False)

    def stream_recording(self, uri: str, *, chunk_size: int = 64 * 1024) -> Iterator[bytes]:
        """Yield a recording's bytes; the download closes when the generator ends or is closed."""
        with self.open_recording(uri) as recording:
            yield from recording.iter_chunks(chunk_size)

    # Health

    def test_connection(self) -> dict[str, Any]:
        """Authenticate and read the account's numbers; raises a typed error when that fails."""
        self.authenticate()
        numbers = self.phone_numbers()
        return {
            "ok": True,
            "base_url": self.base_url,
            "numbers": len(numbers),
            "phone_numbers": [item["number"] for item in numbers],
        }
