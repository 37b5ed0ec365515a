"""Every registered /api/v1 route, for every principal of the two-org world, against org A's and
org B's URLs: 401, 403, 404 or 200 exactly as the resolver and the README's access tables say, and
no trace of an org the principal cannot reach in any answer. The tables ("who" for each route) are
written for readers, apart from the routes' own declarations, so a route that grants more or less than
they say fails here, and so does a route they do not list. A route's other URL arguments are filled
with an object of the org in the URL and with the other org's (a crossing: 404). A new route joins
the walk by being registered; one with a new kind of argument must say here how to fill it."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from tests.helpers import body_text
from tests.test_org_resolver import REACH
from tests.world import A_ONLY, B_ONLY, INTERNAL_NOTE, api_as
from vsync import ROOT
from vsync.auth.permissions import AGENT, MANAGER, ORG_ADMIN, ROLE_RANK

# What org B's data looks like in a body; none of it may reach a principal that cannot act in B.
B_MARKERS = (
    "org-b",
    "admin@b.test",
    "manager@b.test",
    "agent@b.test",
    "b-1100",
    "b-1300",
    "moved-after",
    "event of b",
    "read b",
    "write b",
    "ticket of b",
    "help b",
)
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
    "ticket_id": (True, lambda world, owner: world.tickets[owner]),  # opened by the org's agent
    "e164": (False, lambda world, owner: {"a": A_ONLY, "b": B_ONLY}[owner]),  # numbers are the platform's
    "kind": (False, lambda world, owner: "silence"),  # an alert rule's kind: every org has each
}


# Objects another agent of the org may not reach: traffic their extension did not handle, tickets they did
# not open (the world's are opened by each org's agent, whose extension stands for them here).
TRAFFIC_OBJECTS = {"call_id", "recording_id", "ticket_id"}
OBJECT_EXTENSION = {"a": "101", "b": "201"}
AGENT_EXTENSION = {("agent_a", "a"): "101", ("agent_b", "b"): "201", ("both", "b"): "202"}
# The world's traffic lies around T (2026-11-02): lists are walked over a window that holds it.
WINDOW = "?from=2026-11-01&to=2026-11-03"
TRAFFIC_LISTS = {"api.list_calls", "api.list_recordings", "api.list_sms"}
# What a route answers when the caller reaches its object. The world's recording links lead nowhere,
# so the audio route proves it reached the provider by failing there (502), not by a 404.
REACHED = {"api.get_recording_audio": (502,)}
WRITES = {"POST", "PUT", "PATCH", "DELETE"}
# Notification preferences belong to a person: an API key has none (403), and neither has a platform admin
# in an org they are not a member of.
PERSONAL = {
    "api.get_my_preferences",
    "api.change_my_preferences",
    "api.get_my_platform_preferences",
    "api.change_my_platform_preferences",
}
KEYS = {"read_a", "write_a", "read_b", "write_b", "platform"}
NOT_MEMBERS = {"root"}


def _urls(app, world, methods: set[str]):
    """(method, rule, url, org, endpoint, crossing, handler) for every route with one of `methods`: with
    each org, and each org's objects in its other arguments (`handler`: the extension that handled a
    call or recording among them)."""
    rules = (rule for rule in app.url_map.iter_rules() if rule.rule.startswith("/api/v1/") and rule.methods & methods)
    for rule in sorted(rules, key=lambda rule: rule.rule):
        verbs = sorted(rule.methods & methods)
        others = [name for name in rule.arguments if name != "org"]
        assert all(name in OBJECTS for name in others), f"{rule.rule}: tell the matrix how to fill {others}"
        if "<org>" not in rule.rule:
            assert not rule.arguments, f"{rule.rule}: give the matrix a way to fill its arguments"
            yield from ((verb, rule.rule, rule.rule, None, rule.endpoint, False, None) for verb in verbs)
            continue
        for org in ("a", "b"):
            for owner in ("a", "b") if others else (org,):
                url = rule.rule.replace("<org>", f"org-{org}")
                for name in others:
                    url = re.sub(rf"<(?:\w+:)?{name}>", str(OBJECTS[name][1](world, owner)), url)
                crossing = owner != org and any(OBJECTS[name][0] for name in others)
                handler = OBJECT_EXTENSION[owner] if TRAFFIC_OBJECTS & set(others) else None
                url += WINDOW if rule.endpoint in TRAFFIC_LISTS else ""
                yield from ((verb, rule.rule, url, org, rule.endpoint, crossing, handler) for verb in verbs)


@dataclass(frozen=True)
class Access:
    """Who may call a route, as a README table's "who" column says it."""

    public: bool
    role: str | None  # AGENT (any member), MANAGER, ORG_ADMIN, PLATFORM; None: any principal, no org
    write_scope: bool  # a `read` key is refused (every write, and a route marked `write`)


PLATFORM = "platform"
# The "who" column's words. A role means "at least"; platform admins and platform keys act as org admins.
WHO = {
    "public": (True, None),
    "any": (False, None),
    "member": (False, AGENT),
    "any member": (False, AGENT),
    "manager": (False, MANAGER),
    "org admin": (False, ORG_ADMIN),
    "platform": (False, PLATFORM),
}
TABLE_ROUTE = re.compile(r"`(GET|POST|PUT|PATCH|DELETE) (/[^`?\s]*)[^`]*`")


def _route_key(method: str, path: str) -> tuple[str, str]:
    """(method, path under /api/v1 with `{}` for each argument), from a README route or a URL rule."""
    path = path.removeprefix("/api/v1")
    return method, re.sub(r"<[^>]*>|\{[^}]*\}", "{}", path)


def readme_access() -> dict[tuple[str, str], Access]:
    """Every route the README's API tables list, with who may call it."""
    table = {}
    for line in (ROOT / "README.md").read_text().splitlines():
        cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]]
        routes = TABLE_ROUTE.findall(cells[0]) if len(cells) >= 3 else []
        if not routes:
            continue
        role_word, *marks = (part.strip() for part in cells[1].split(","))
        public, role = WHO[role_word]
        for method, path in routes:
            table[_route_key(method, path)] = Access(public, role, method in WRITES or "`write`" in marks)
    return table


def _access(access: dict, method: str, rule: str) -> Access:
    key = _route_key(method, rule)
    assert key in access, f"{method} {rule} is in no access table of the README"
    return access[key]


def _permitted(principal: str, role: str | None, access: Access) -> bool:
    if access.write_scope and principal.startswith("read_"):
        return False
    if access.role == PLATFORM:
        return principal in PLATFORM_PRINCIPALS
    return access.role is None or ROLE_RANK[role] >= ROLE_RANK[access.role]


def _expected(access: Access, principal, method, org, endpoint, crossing, handler) -> tuple[int, ...]:
    role = None if org is None else REACH[principal]["ab".index(org)]
    if access.public:
        return (200, 503)
    if principal == "anonymous":
        return (401,)
    if org is not None and role is None:
        return (404,)
    if (org is not None or access.role == PLATFORM) and not _permitted(principal, role, access):
        return (403,)
    if endpoint in PERSONAL and (principal in KEYS or (org is not None and principal in NOT_MEMBERS)):
        return (403,)
    if crossing or (role == "agent" and handler is not None and AGENT_EXTENSION[principal, org] != handler):
        return (404,)
    return REACHED.get(endpoint, (200,)) if method == "GET" else (200,)


def _assert_nothing_of_b(principal, url, response):
    text = body_text(response)
    assert INTERNAL_NOTE not in text, (principal, url)
    if REACH[principal][1] is None:  # a 404 names the reference the caller sent, as for an org that does not exist
        body = text.replace("'org-b'", "")
        assert not [m for m in B_MARKERS if m in body], (principal, url)


@pytest.mark.parametrize("principal", sorted(REACH))
def test_every_api_route_answers_each_principal_only_for_the_orgs_it_can_reach(app, world, principal):
    client, access = api_as(app.test_client(), principal, world), readme_access()
    for method, rule, url, org, endpoint, crossing, handler in _urls(app, world, {"GET"}):
        response = client.get(url)
        expected = _expected(_access(access, method, rule), principal, method, org, endpoint, crossing, handler)
        assert response.status_code in expected, (principal, url, response.status_code, response.get_json())
        _assert_nothing_of_b(principal, url, response)


@pytest.mark.parametrize("principal", sorted(REACH))
def test_every_api_write_is_refused_to_whoever_may_not_make_it_and_never_reaches_another_orgs_object(
    app, world, principal
):
    """Refusals only: 401, 404 for an org out of reach or another org's object, 403 for a missing scope
    or role. What each write does when it is allowed is the routes' own tests."""
    client, access = api_as(app.test_client(), principal, world, csrf=True), readme_access()
    walked = 0
    for method, rule, url, org, endpoint, crossing, handler in _urls(app, world, WRITES):
        expected = _expected(_access(access, method, rule), principal, method, org, endpoint, crossing, handler)
        if expected == (200,):
            continue
        response = client.open(url, method=method)
        assert response.status_code in expected, (principal, method, url, response.status_code, response.get_json())
        _assert_nothing_of_b(principal, url, response)
        walked += 1
    assert walked or principal in PLATFORM_PRINCIPALS


def test_every_route_of_the_readmes_access_tables_is_served(app):
    served = {
        _route_key(method, rule.rule)
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/v1/")
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert set(readme_access()) - served == set()
