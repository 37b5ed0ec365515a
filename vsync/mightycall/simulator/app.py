"""The simulator's HTTP face: a WSGI app answering like MightyCall's v4 API, with faults on demand.

It serves a :class:`~.data.SimulatedAccount` (``/v4/...`` and ``/recordings/<id>.wav``), issues and
checks tokens, counts requests per route in ``requests``, and answers ``/_sim/faults``: ``GET``
lists the faults and request counts, ``POST`` adds faults (a JSON object or a list of them, with or
without a ``Content-Type`` header; anything else is a 400 saying so), ``DELETE`` clears them.
"""

from __future__ import annotations

import email.utils
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from werkzeug.exceptions import HTTPException, MethodNotAllowed, RequestedRangeNotSatisfiable
from werkzeug.exceptions import NotFound as RouteNotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from .data import DAY_MS, RECORDING_MARKER, SimulatedAccount, format_ms, from_ms, parse_time, wav_tone
from .faults import REPLACING_FAULTS, Fault, Faults

__all__ = ["Simulator"]

_DENIED = {"Message": "Authorization has been denied for this request."}
_LINK_EXPIRED = {"Message": "Request has expired."}
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
# MightyCall's own limit on a message is [unknown]: the simulator refuses what vsync refuses (1600).
MAX_MESSAGE = 1600
_RECORDING_LINK = re.compile(r'(/recordings/([^"/?]+)\.wav)"')


class Simulator(SimulatedAccount):
    """A MightyCall v4 account as a WSGI application. See the package docstring for behaviour.

    Takes the account's options (:class:`~.data.SimulatedAccount`) and the API's: the credentials
    (``api_key``, ``user_key``), token lifetimes in seconds, ``max_page_size``, and
    ``recordings_require_auth`` (recording downloads demand the bearer). ``clock`` returns the
    current time in epoch seconds; tests advance it to expire tokens. When ``recording_base_url``
    is ``None``, recording links point at the request's host with ``127.0.0.1`` and ``localhost``
    swapped.

    With ``recording_link_ttl`` (seconds), recording links are signed and expire like a storage
    provider's pre-signed URLs (``?expires=…&signature=…``): past its expiry, or with a wrong
    signature, a link answers 403, and reading the call again gives a fresh one. Without it links
    never expire. Recording downloads honour ``Range`` (206, or 416 past the end).
    """

    def __init__(
        self,
        *,
        api_key: str = "sim-api-key",
        user_key: str = "sim-user-key",
        token_ttl: int = 86_400,
        refresh_ttl: int = 14 * 86_400,
        max_page_size: int = 1000,
        recordings_require_auth: bool = False,
        recording_link_ttl: float | None = None,
        clock: Callable[[], float] = time.time,
        **account_options: Any,
    ) -> None:
        super().__init__(**account_options)
        self.api_key = api_key
        self.user_key = user_key
        self.token_ttl = token_ttl
        self.refresh_ttl = refresh_ttl
        self.max_page_size = max_page_size
        self.recordings_require_auth = recordings_require_auth
        self.recording_link_ttl = recording_link_ttl
        self._link_secret = secrets.token_bytes(16)
        self.clock = clock
        self.faults = Faults()
        self.requests: Counter[str] = Counter()
        self.token_grants: list[str] = []
        self.sent_messages: list[dict[str, Any]] = []
        self._stopping = threading.Event()
        self._tokens: dict[str, float] = {}
        self._refresh_tokens: dict[str, float] = {}
        self._url_map = Map(
            [
                Rule("/v4/auth/token", endpoint="token", methods=["POST"]),
                Rule("/v4/api/calls", endpoint="calls", methods=["GET"]),
                Rule("/v4/api/calls/<call_id>", endpoint="call", methods=["GET"]),
                Rule("/v4/api/phonenumbers", endpoint="phone_numbers", methods=["GET"]),
                Rule("/v4/api/team", endpoint="team", methods=["GET"]),
                Rule("/v4/api/journal/requests", endpoint="journal", methods=["GET"]),
                Rule(
                    "/v4/api/contactcenter/messages/send",
                    endpoint="messages_send",
                    methods=["POST"],
                ),
                Rule("/recordings/<call_id>.wav", endpoint="recording", methods=["GET"]),
                Rule("/_sim/faults", endpoint="_faults", methods=["GET", "POST", "DELETE"]),
                Rule("/", endpoint="_index", methods=["GET"]),
            ]
        )

    def revoke_tokens(self) -> None:
        """Invalidate every access and refresh token, as a key rotation at MightyCall would."""
        with self._lock:
            self._tokens.clear()
            self._refresh_tokens.clear()

    def reset_requests(self) -> None:
        with self._lock:
            self.requests.clear()
            self.token_grants.clear()

    def shutdown(self) -> None:
        """Wake requests sleeping in ``slow``/``hang`` faults so a server can stop promptly."""
        self._stopping.set()

    # HTTP

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        try:
            endpoint, args = self._url_map.bind_to_environ(environ).match()
        except RouteNotFound:
            response = _json(
                {"Message": f"No HTTP resource was found that matches the request URI '{request.url}'."},
                404,
            )
            return response(environ, start_response)
        except MethodNotAllowed as exc:
            return exc.get_response(environ)(environ, start_response)
        except HTTPException as exc:
            return exc.get_response(environ)(environ, start_response)
        if endpoint == "_faults":
            return self._control(request)(environ, start_response)
        if endpoint == "_index":
            return _json({"simulator": "MightyCall v4", "base_path": "/v4"})(environ, start_response)
        return self._serve(endpoint, request, args)(environ, start_response)

    def _serve(self, route: str, request: Request, args: Mapping[str, Any]) -> Response:
        with self._lock:
            self.requests[route] += 1
        fired = self.faults.take(route)
        kinds = {fault.kind: fault for fault in fired}
        for kind in ("slow", "hang"):
            if kind in kinds:
                default = 1.0 if kind == "slow" else 30.0
                self._stopping.wait(float(kinds[kind].params.get("seconds", default)))
        for fault in fired:
            if fault.kind in REPLACING_FAULTS:
                return self._fault_response(fault, request)
        if route == "token":
            response = self._token(request)
        elif route == "recording":
            response = self._recording(request, args["call_id"])
        else:
            denied = self._check_auth(request)
            if denied is not None:
                return denied
            handler = getattr(self, f"_route_{route}")
            response = handler(request, kinds, **args)
        if "truncated" in kinds and response.status_code == 200:
            data = response.get_data()
            response.set_data(data[: max(1, len(data) // 2)])
        return response

    def _fault_response(self, fault: Fault, request: Request) -> Response:
        params = fault.params
        if fault.kind == "token_expiry":
            token = _bearer(request)
            with self._lock:
                if token in self._tokens:
                    self._tokens[token] = 0.0
            return _json(_DENIED, 401)
        if fault.kind == "rate_limit":
            wait = float(params.get("retry_after", 2))
            style = params.get("format", "seconds")
            headers = {}
            if style == "seconds":
                headers["Retry-After"] = f"{wait:g}"
            elif style == "http-date":
                headers["Retry-After"] = email.utils.formatdate(time.time() + wait, usegmt=True)
            body = {"Message": "API calls quota exceeded! maximum admitted 2500 per Day."}
            return _json(body, 429, headers)
        if fault.kind == "server_error":
            status = int(params.get("status", 500))
            if params.get("body", "json") == "html":
                phrase = {
                    500: "Internal Server Error",
                    502: "Bad Gateway",
                    503: "Service Unavailable",
                }
                title = f"{status} {phrase.get(status, 'Error')}"
                page = (
                    f"<html><head><title>{title}</title></head><body><center><h1>{title}</h1>"
                    "</center><hr><center>nginx</center></body></html>"
                )
                return Response(page, status, mimetype="text/html")
            return _json({"Message": "An error has occurred."}, status)
        if fault.kind == "link_expired":
            return _json(_LINK_EXPIRED, 403)
        if fault.kind == "no_list":
            return _json({"isSuccess": True, "data": {}})
        if fault.kind == "not_json":
            page = "<html><body><h1>Service temporarily unavailable</h1></body></html>"
            return Response(page, 200, mimetype="text/html")
        message = params.get("message", "An error has occurred while processing the request.")
        return _json({"isSuccess": False, "message": message}, 200)

    def _check_auth(self, request: Request) -> Response | None:
        token = _bearer(request)
        with self._lock:
            expires = self._tokens.get(token) if token else None
        api_key = request.headers.get("x-api-key", "")
        if (
            expires is None
            or expires <= self.clock()
            or not hmac.compare_digest(api_key.encode(), self.api_key.encode())
        ):
            return _json(_DENIED, 401)
        return None

    def _token(self, request: Request) -> Response:
        form = request.form
        grant = form.get("grant_type", "")
        api_key = request.headers.get("x-api-key", "")
        if not hmac.compare_digest(api_key.encode(), self.api_key.encode()):
            return _json({"error": "invalid_client"}, 400)
        now = self.clock()
        with self._lock:
            self.token_grants.append(grant)
            if grant == "client_credentials":
                if not (
                    hmac.compare_digest(form.get("client_id", "").encode(), self.api_key.encode())
                    and hmac.compare_digest(form.get("client_secret", "").encode(), self.user_key.encode())
                ):
                    return _json({"error": "invalid_client"}, 400)
            elif grant == "refresh_token":
                presented = form.get("refresh_token", "")
                expires = self._refresh_tokens.pop(presented, None)
                if expires is None or expires <= now:
                    return _json({"error": "invalid_grant"}, 400)
            else:
                return _json({"error": "unsupported_grant_type"}, 400)
            access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
            self._tokens = {t: e for t, e in self._tokens.items() if e > now}
            self._tokens[access] = now + self.token_ttl
            self._refresh_tokens[refresh] = now + self.refresh_ttl
        return _json(
            {
                "access_token": access,
                "token_type": "bearer",
                "expires_in": self.token_ttl,
                "refresh_token": refresh,
            }
        )

    def _route_calls(self, request: Request, kinds: dict[str, Fault]) -> Response:
        args = request.args
        try:
            end_ms = parse_time(args["endUtc"]) if args.get("endUtc") else int(self.clock() * 1000)
            start_ms = parse_time(args["startUtc"]) if args.get("startUtc") else end_ms - 7 * DAY_MS
            skip = max(0, int(args.get("skip", 0)))
            size = max(1, int(args.get("pageSize", 100)))
        except ValueError:
            return _json({"Message": "The request is invalid."}, 400)
        size = min(size, self.max_page_size)
        if "page_cap" in kinds:
            size = min(size, int(kinds["page_cap"].params.get("cap", 100)))
        total, bodies = self._window(start_ms, end_ms, skip, size)
        rec = self._recording_base(request)
        listed = self._signed_links(",".join(bodies).replace(RECORDING_MARKER, rec))
        total_text = f',"total":{total}'
        if "wrong_total" in kinds:
            params = kinds["wrong_total"].params
            mode = params.get("mode", "missing")
            if "value" in params:
                total_text = f',"total":{int(params["value"])}'
            elif mode == "small":
                total_text = f',"total":{total // 2}'
            elif mode == "large":
                total_text = f',"total":{total * 2 + 17}'
            else:
                total_text = ""
        body = f'{{"data":{{"calls":[{listed}]{total_text}}}}}'
        if "head_insert" in kinds:
            self._insert_head(start_ms, end_ms, int(kinds["head_insert"].params.get("count", 3)))
        return Response(body, 200, mimetype="application/json")

    def _route_call(self, request: Request, kinds: dict[str, Fault], call_id: str) -> Response:
        body = self._find_call(call_id)
        if body is None:
            return _json({"Message": f"Call '{call_id}' was not found."}, 404)
        body = self._signed_links(body.replace(RECORDING_MARKER, self._recording_base(request)))
        return Response(f'{{"data":{body}}}', 200, mimetype="application/json")

    def _route_phone_numbers(self, request: Request, kinds: dict[str, Fault]) -> Response:
        return _json({"data": {"phoneNumbers": self._numbers}})

    def _route_team(self, request: Request, kinds: dict[str, Fault]) -> Response:
        users = []
        for extension, name in self._agents:
            first, _, last = name.partition(" ")
            users.append(
                {
                    "id": f"user-{extension}",
                    "fullName": name,
                    "firstName": first,
                    "lastName": last,
                    "email": f"{first.lower()}.{last.lower() or 'agent'}@example.com",
                    "extension": extension,
                    "role": "Admin" if extension == self._agents[0][0] else "Agent",
                }
            )
        return _json({"data": {"users": users}})

    def _route_journal(self, request: Request, kinds: dict[str, Fault]) -> Response:
        args = request.args
        try:
            end_ms = parse_time(args["to"]) if args.get("to") else int(self.clock() * 1000)
            start_ms = parse_time(args["from"]) if args.get("from") else end_ms - 7 * DAY_MS
            page = max(1, int(args.get("page", 1)))
            size = max(1, int(args.get("pageSize", 50)))
        except ValueError:
            return _json({"Message": "The request is invalid."}, 400)
        size = min(size, self.max_page_size)
        if "page_cap" in kinds:
            size = min(size, int(kinds["page_cap"].params.get("cap", 100)))
        if args.get("type", "Message").lower() != "message":
            items: list[dict[str, Any]] = []
        else:
            items = self._sms_window(start_ms, end_ms)[(page - 1) * size : page * size]
        answer: Any = {"currentPage": page, "requests": items}
        if page % 2 == 0:
            answer = [answer]
        return _json(answer)

    def _route_messages_send(self, request: Request, kinds: dict[str, Fault]) -> Response:
        payload = request.get_json(silent=True)
        if not isinstance(payload, dict):
            return _json({"isSuccess": False, "message": "The request body must be JSON."}, 400)
        sender, recipients, message = payload.get("from"), payload.get("to"), payload.get("message")
        if sender not in self.phone_numbers():
            return _json({"isSuccess": False, "message": "'from' is not a number of this account."}, 400)
        if (
            not isinstance(recipients, list)
            or not recipients
            or not all(isinstance(r, str) and _E164.fullmatch(r) for r in recipients)
        ):
            return _json({"isSuccess": False, "message": "'to' must list E.164 numbers."}, 400)
        if not isinstance(message, str) or not message.strip():
            return _json({"isSuccess": False, "message": "'message' must not be empty."}, 400)
        if len(message) > MAX_MESSAGE:
            return _json({"isSuccess": False, "message": f"'message' is longer than {MAX_MESSAGE} characters."}, 400)
        now_ms = int(self.clock() * 1000)
        sent = []
        with self._lock:
            for recipient in recipients:
                sms_id = str(uuid.uuid4())
                item = {
                    "id": sms_id,
                    "type": "Message",
                    "direction": "Outgoing",
                    "dateTimeUtc": format_ms(now_ms),
                    "businessNumber": sender,
                    "client": {"phone": recipient, "name": ""},
                    "from": sender,
                    "to": recipient,
                    "agent": None,
                    "text": message,
                    "status": "Queued",
                    "dateTimeUtc_ms": now_ms,
                }
                self._extra_sms.setdefault(from_ms(now_ms).date(), []).append(item)
                self.sent_messages.append({k: v for k, v in item.items() if k != "dateTimeUtc_ms"})
                sent.append({"id": sms_id, "to": recipient, "status": "Queued"})
        return _json({"isSuccess": True, "data": {"messages": sent}})

    def _recording(self, request: Request, call_id: str) -> Response:
        if self.recordings_require_auth:
            token = _bearer(request)
            with self._lock:
                expires = self._tokens.get(token) if token else None
            if expires is None or expires <= self.clock():
                return _json(_DENIED, 401)
        if self.recording_link_ttl is not None and not self._link_valid(request, call_id):
            return _json(_LINK_EXPIRED, 403)
        body = self._find_call(call_id)
        if body is None or '"callRecord":null' in body:
            return _json({"Message": "Recording not found."}, 404)
        data = wav_tone(call_id)
        response = Response(data, 200, mimetype="audio/wav")
        response.headers["Content-Disposition"] = f'attachment; filename="{call_id}.wav"'
        try:
            return response.make_conditional(request, accept_ranges=True, complete_length=len(data))
        except RequestedRangeNotSatisfiable as exc:
            return exc.get_response()

    def _link_signature(self, call_id: str, expires: int) -> str:
        message = f"{call_id}:{expires}".encode()
        return hmac.new(self._link_secret, message, hashlib.sha256).hexdigest()[:32]

    def _signed_links(self, text: str) -> str:
        """``text`` with each recording link signed to expire ``recording_link_ttl`` from now."""
        if self.recording_link_ttl is None:
            return text
        expires = int(self.clock() + self.recording_link_ttl)

        def sign(match: re.Match[str]) -> str:
            path, call_id = match.group(1), match.group(2)
            return f'{path}?expires={expires}&signature={self._link_signature(call_id, expires)}"'

        return _RECORDING_LINK.sub(sign, text)

    def _link_valid(self, request: Request, call_id: str) -> bool:
        expires = request.args.get("expires", "")
        if not expires.isdigit() or int(expires) <= self.clock():
            return False
        expected = self._link_signature(call_id, int(expires))
        return hmac.compare_digest(request.args.get("signature", ""), expected)

    def _recording_base(self, request: Request) -> str:
        if self.recording_base_url:
            return self.recording_base_url
        host = request.host
        name, _, port = host.rpartition(":") if host.count(":") == 1 else (host, "", "")
        swapped = {"127.0.0.1": "localhost", "localhost": "127.0.0.1"}.get(name, name)
        return f"{request.scheme}://{swapped}{':' + port if port else ''}"

    def _control(self, request: Request) -> Response:
        if request.method == "DELETE":
            self.faults.clear()
            return _json({"faults": []})
        if request.method == "POST":
            try:
                payload = json.loads(request.get_data())
            except ValueError:
                return _json({"error": "the body is not JSON; send a fault as a JSON object"}, 400)
            entries = payload if isinstance(payload, list) else [payload]
            try:
                clear, faults = self._faults_asked(entries)
            except (TypeError, ValueError) as exc:
                return _json({"error": str(exc)}, 400)
            if clear:
                self.faults.clear()
            self.faults.extend(faults)
        with self._lock:
            counts = dict(self.requests)
        return _json({"faults": self.faults.active(), "requests": counts})

    @staticmethod
    def _faults_asked(entries: list[Any]) -> tuple[bool, list[Fault]]:
        """Whether a ``{"clear": true}`` entry clears the faults first, and the faults to add: all
        checked before any is switched on, so a request with one bad entry changes nothing."""
        clear, faults = False, []
        for entry in entries:
            if not isinstance(entry, dict):
                raise TypeError("send a JSON object or a list of objects")
            if entry.get("clear"):
                clear, faults = True, []
                continue
            spec = dict(entry)
            route, kind = spec.pop("route", None), spec.pop("kind", None)
            times, after = spec.pop("times", 1), spec.pop("after", 0)
            params = spec.pop("params", {}) or {}
            faults.append(Faults.make(str(route), str(kind), times=times, after=after, **spec, **params))
        return clear, faults


def _bearer(request: Request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


def _json(payload: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(
        json.dumps(payload, separators=(",", ":")),
        status,
        headers=dict(headers or {}),
        mimetype="application/json",
    )
