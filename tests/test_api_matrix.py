"""Every registered /api/v1 route, for every principal of the two-org world, against org A's and
org B's URLs: 401, 403, 404 or 200 exactly as the resolver and the route's declared access decide,
and no trace of an org the principal cannot reach in any answer. A route's other URL arguments are
filled with an object of the org in the URL and with the other org's (a crossing: 404). A new route
joins the walk by being registered; one with a new kind of argument must say here how to fill it."""
from __future__ import annotations

import re

import pytest

from tests.helpers import body_text
from tests.openapi_check import openapi_path
from tests.test_org_resolver import REACH
from tests.world import A_ONLY, B_ONLY, api_as
from vsync.auth import PUBLIC_ENDPOINTS
from vsync.auth.permissions import ROLE_RANK

# What org B's data looks like in a body; none of it may reach a principal that cannot act in B.
B_MARKERS = ("org-b", "admin@b.test", "manager@b.test", "agent@b.test", "b-1100", "b-1300", "moved-after",
             "event of b", "read b", "write b")
PLATFORM_PRINCIPALS = ("root", "platform")

# How each URL argument is filled: with org `owner`'s object. `crossable`: another org's object is a 404.
# The call and recording are each handled by their org's agent (extension 101 in A, 201 in B): another
# agent of the org gets a 404 for them too.
OBJECTS = {
    "call_id": (True, lambda world, owner: world.calls[owner][f"{owner}-1100"]),
    "recording_id": (True, lambda world, owner: world.recordings[owner][f"{owner}-1100"]),
    "run_id": (True, lambda world, owner: world.runs[owner]),
    "invoice_id": (True, lambda world, owner: world.invoices[owner]),
    "key_id": (True, lambda world, owner: world.key_ids[f"read_{owner}"]),
    "membership_id": (True, lambda world, owner: world.agent_memberships[owner]),
    "e164": (False, lambda world, owner: {"a": A_ONLY, "b": B_ONLY}[owner]),  # numbers are the platform's
}


TRAFFIC_OBJECTS = {"call_id", "recording_id"}
OBJECT_EXTENSION = {"a": "101", "b": "201"}
AGENT_EXTENSION = {("agent_a", "a"): "101", ("agent_b", "b"): "201", ("both", "b"): "202"}
# The world's traffic lies around T (2026-11-02): lists are walked over a window that holds it.
WINDOW = "?from=2026-11-01&to=2026-11-03"
TRAFFIC_LISTS = {"api.list_calls", "api.list_recordings", "api.list_sms"}
# What a route answers when the caller reaches its object. The world's recording links lead nowhere,
# so the audio route proves it reached the provider by failing there (502), not by a 404.
REACHED = {"api.get_recording_audio": (502,)}
WRITES = {"POST", "PUT", "PATCH", "DELETE"}


def _urls(app, world, methods: set[str]):
    """(method, url, org, endpoint, crossing, handler) for every route with one of `methods`: with each
    org, and each org's objects in its other arguments (`handler`: the extension that handled a call
    or recording among them)."""
    rules = (rule for rule in app.url_map.iter_rules() if rule.rule.startswith("/api/v1/") and rule.methods & methods)
    for rule in sorted(rules, key=lambda rule: rule.rule):
        verbs = sorted(rule.methods & methods)
        others = [name for name in rule.arguments if name != "org"]
        assert all(name in OBJECTS for name in others), f"{rule.rule}: tell the matrix how to fill {others}"
        if "<org>" not in rule.rule:
            assert not rule.arguments, f"{rule.rule}: give the matrix a way to fill its arguments"
            yield from ((verb, rule.rule, None, rule.endpoint, False, None) for verb in verbs)
            continue
        for org in ("a", "b"):
            for owner in ("a", "b") if others else (org,):
                url = rule.rule.replace("<org>", f"org-{org}")
                for name in others:
                    url = re.sub(rf"<(?:\w+:)?{name}>", str(OBJECTS[name][1](world, owner)), url)
                crossing = owner != org and any(OBJECTS[name][0] for name in others)
                handler = OBJECT_EXTENSION[owner] if TRAFFIC_OBJECTS & set(others) else None
                url += WINDOW if rule.endpoint in TRAFFIC_LISTS else ""
                yield from ((verb, url, org, rule.endpoint, crossing, handler) for verb in verbs)


def _declared_access(app) -> dict[tuple[str, str], dict]:
    """(endpoint, method) → the route's declared access: `x-access` in the OpenAPI document, written
    there by `vsync.api.access.requires`."""
    spec = app.test_client().get("/api/v1/openapi.json").get_json()
    declared = {}
    for rule in app.url_map.iter_rules():
        path = openapi_path(rule.rule)
        for method, operation in spec["paths"].get(path, {}).items():
            if isinstance(operation, dict) and "x-access" in operation:
                declared[rule.endpoint, method.upper()] = operation["x-access"]
    return declared


def _permitted(principal: str, role: str | None, access: dict) -> bool:
    if access["scope"] == "write" and principal.startswith("read_"):
        return False
    if access["role"] == "platform":
        return principal in PLATFORM_PRINCIPALS
    return access["role"] not in ROLE_RANK or ROLE_RANK[role] >= ROLE_RANK[access["role"]]


def _expected(declared, principal, method, org, endpoint, crossing, handler) -> tuple[int, ...]:
    role = None if org is None else REACH[principal]["ab".index(org)]
    if endpoint in PUBLIC_ENDPOINTS:
        return (200, 503)
    if principal == "anonymous":
        return (401,)
    if org is not None and role is None:
        return (404,)
    access = declared.get((endpoint, method), {"scope": "read", "role": "any member"})
    if org is not None and not _permitted(principal, role, access):
        return (403,)
    if crossing or (role == "agent" and handler is not None and AGENT_EXTENSION[principal, org] != handler):
        return (404,)
    return REACHED.get(endpoint, (200,)) if method == "GET" else (200,)


def _assert_nothing_of_b(principal, url, response):
    if REACH[principal][1] is None:  # a 404 names the reference the caller sent, as for an org that does not exist
        body = body_text(response).replace("'org-b'", "")
        assert not [m for m in B_MARKERS if m in body], (principal, url)


@pytest.mark.parametrize("principal", sorted(REACH))
def test_every_api_route_answers_each_principal_only_for_the_orgs_it_can_reach(app, world, principal):
    client, declared = api_as(app.test_client(), principal, world), _declared_access(app)
    for method, url, org, endpoint, crossing, handler in _urls(app, world, {"GET"}):
        response = client.get(url)
        expected = _expected(declared, principal, method, org, endpoint, crossing, handler)
        assert response.status_code in expected, (principal, url, response.status_code, response.get_json())
        _assert_nothing_of_b(principal, url, response)


@pytest.mark.parametrize("principal", sorted(REACH))
def test_every_api_write_is_refused_to_whoever_may_not_make_it_and_never_reaches_another_orgs_object(
        app, world, principal):
    """Refusals only: 401, 404 for an org out of reach or another org's object, 403 for a missing scope
    or role. What each write does when it is allowed is the routes' own tests."""
    client, declared = api_as(app.test_client(), principal, world, csrf=True), _declared_access(app)
    walked = 0
    for method, url, org, endpoint, crossing, handler in _urls(app, world, WRITES):
        expected = _expected(declared, principal, method, org, endpoint, crossing, handler)
        if expected == (200,):
            continue
        response = client.open(url, method=method)
        assert response.status_code in expected, (principal, method, url, response.status_code, response.get_json())
        _assert_nothing_of_b(principal, url, response)
        walked += 1
    assert walked or principal in PLATFORM_PRINCIPALS
