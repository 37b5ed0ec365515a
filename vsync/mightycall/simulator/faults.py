"""Faults a simulator can be told to show, per route: the ways MightyCall and its proxies misbehave."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FAULT_KINDS", "REPLACING_FAULTS", "ROUTES", "Fault", "Faults"]

ROUTES = (
    "token",
    "calls",
    "call",
    "phone_numbers",
    "team",
    "journal",
    "messages_send",
    "recording",
)
FAULT_KINDS = (
    "token_expiry",
    "rate_limit",
    "server_error",
    "slow",
    "hang",
    "truncated",
    "not_json",
    "is_success_false",
    "no_list",
    "wrong_total",
    "head_insert",
    "page_cap",
    "link_expired",
)
# Faults that replace the answer; at most one fires per request. The others modify a normal answer.
REPLACING_FAULTS = {
    "token_expiry",
    "rate_limit",
    "server_error",
    "not_json",
    "is_success_false",
    "no_list",
    "link_expired",
}


@dataclass
class Fault:
    """One switched-on fault. ``times`` is how often it still fires (``None``: until cleared);
    ``after`` how many requests of its route it lets through first."""

    route: str
    kind: str
    times: int | None = 1
    after: int = 0
    params: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        return {
            "route": self.route,
            "kind": self.kind,
            "times": self.times,
            "after": self.after,
            **self.params,
        }


class Faults:
    """The faults switched on in a simulator, per route (``"*"`` matches every API route).

    Kinds and their parameters:

    * ``token_expiry``: 401 as if the token had expired (the token is revoked, forcing re-auth).
    * ``rate_limit``: 429; ``retry_after`` seconds (default 2), ``format`` ``"seconds"`` (default),
      ``"http-date"`` or ``"none"``.
    * ``server_error``: ``status`` 500/502/503 (default 500), ``body`` ``"json"`` (default) or
      ``"html"``.
    * ``slow``: wait ``seconds`` (default 1), then answer normally.
    * ``hang``: wait ``seconds`` (default 30, cut short when the server stops), then answer
      normally.
    * ``truncated``: the normal answer cut in the middle of its JSON.
    * ``not_json``: 200 with an HTML page.
    * ``is_success_false``: 200 with ``{"isSuccess": false, "message": ...}`` (``message``
      optional).
    * ``no_list``: 200 with ``{"isSuccess": true, "data": {}}``, a success without the list asked for.
    * ``wrong_total``: calls listing ``total`` per ``mode``: ``"missing"`` (default), ``"small"``,
      ``"large"``, or an explicit ``value``.
    * ``head_insert``: after the answer is built, ``count`` (default 3) new calls appear at the head
      of that window (newest); they become part of the ground truth.
    * ``page_cap``: ``pageSize`` silently capped at ``cap`` (default 100).
    * ``link_expired``: (recordings) 403 as for a recording link past its expiry, whatever the link.

    At most one answer-replacing fault fires per request; modifying faults (slow, hang, truncated,
    wrong_total, head_insert, page_cap) combine with it. Requests a fault lets through because of
    ``after`` count for it whatever their outcome.
    """

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, route: str, kind: str, *, times: int | None = 1, after: int = 0, **params: Any) -> Fault:
        fault = self.make(route, kind, times=times, after=after, **params)
        self.extend([fault])
        return fault

    @staticmethod
    def make(route: str, kind: str, *, times: int | None = 1, after: int = 0, **params: Any) -> Fault:
        """A checked fault, not yet switched on; ``ValueError`` names what is wrong."""
        if route != "*" and route not in ROUTES:
            raise ValueError(f"unknown route {route!r}; expected one of {', '.join(ROUTES)} or '*'")
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; expected one of {', '.join(FAULT_KINDS)}")
        if times is not None and times < 1:
            times = None
        return Fault(route=route, kind=kind, times=times, after=max(0, int(after)), params=params)

    def extend(self, faults: list[Fault]) -> None:
        with self._lock:
            self._faults.extend(faults)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def active(self) -> list[dict[str, Any]]:
        with self._lock:
            return [fault.describe() for fault in self._faults]

    def take(self, route: str) -> list[Fault]:
        """The faults that fire for one request of ``route``, consuming their counters."""
        fired: list[Fault] = []
        replacing = False
        with self._lock:
            for fault in list(self._faults):
                if fault.route not in (route, "*"):
                    continue
                if fault.route == "*" and route == "recording" and fault.kind in REPLACING_FAULTS:
                    continue
                if fault.after > 0:
                    fault.after -= 1
                    continue
                if fault.kind in REPLACING_FAULTS:
                    if replacing:
                        continue
                    replacing = True
                fired.append(fault)
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
        return fired
