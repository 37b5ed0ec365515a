"""Every registered /api/v1 route, for every principal of the two-org world, against org A's and
org B's URLs: 401, 404 or 200 exactly as the resolver decides, and no trace of an org the principal
cannot reach in any answer. A new route joins the walk by being registered."""
from __future__ import annotations

import pytest

from tests.test_org_resolver import REACH
from tests.world import api_as
from vsync.auth import PUBLIC_ENDPOINTS
from vsync.auth.permissions import ROLE_RANK

# What org B's data looks like in a body; none of it may reach a principal that cannot act in B.
B_MARKERS = ("org-b", "admin@b.test", "manager@b.test", "agent@b.test", "b-1100", "b-1300", "moved-after")


# The world's traffic lies around T (2026-11-02): lists are walked over a window that holds it.
WINDOW = "?from=2026-11-01&to=2026-11-03"
TRAFFIC_LISTS = {"api.list_calls", "api.list_recordings", "api.list_sms"}
# Routes with an object id in their URL are walked with an object of A and one of B, each handled by
# that org's agent (extension 101 in A, 201 in B).
OBJECT_OF = {"call_id": lambda world, org: world.calls[org][f"{org}-1100"],
             "recording_id": lambda world, org: world.recordings[org][f"{org}-1100"]}
OBJECT_EXTENSION = {"a": "101", "b": "201"}
AGENT_EXTENSION = {("agent_a", "a"): "101", ("agent_b", "b"): "201", ("both", "b"): "202"}
# What a route answers when the caller reaches its object. The world's recording links lead nowhere,
# so the audio route proves it reached the provider by failing there (502), not by a 404.
REACHED = {"api.get_recording_audio": (502,)}


def _api_rules(app):
    return sorted((rule for rule in app.url_map.iter_rules() if rule.rule.startswith("/api/v1/")
                   and "GET" in rule.methods), key=lambda rule: rule.rule)


def _urls(app, world):
    """(url, org of the URL, owner of the object in it, endpoint) for every GET route."""
    for rule in _api_rules(app):
        objects = [name for name in rule.arguments if name != "org"]
        assert all(name in OBJECT_OF for name in objects), f"{rule.rule}: give the matrix a way to fill its arguments"
        query = WINDOW if rule.endpoint in TRAFFIC_LISTS else ""
        if "<org>" not in rule.rule:
            assert not rule.arguments, f"{rule.rule}: give the matrix a way to fill its other arguments"
            yield rule.rule, None, None, rule.endpoint
            continue
        for org in ("a", "b"):
            url = rule.rule.replace("<org>", f"org-{org}")
            if not objects:
                yield url + query, org, None, rule.endpoint
                continue
            for owner in ("a", "b"):
                filled = url
                for name in objects:
                    filled = filled.replace(f"<int:{name}>", str(OBJECT_OF[name](world, owner)))
                yield filled, org, owner, rule.endpoint


def _least_role(app, endpoint: str) -> str | None:
    access = getattr(app.view_functions[endpoint], "_apidoc", {}).get("manual_doc", {}).get("x-access", {})
    return access.get("role") if access.get("role") in ROLE_RANK else None


def _expected(app, principal: str, url_org: str | None, owner: str | None, endpoint: str) -> tuple[int, ...]:
    role = None if url_org is None else REACH[principal]["ab".index(url_org)]
    if endpoint in PUBLIC_ENDPOINTS:
        return 200, 503
    if principal == "anonymous":
        return (401,)
    if url_org is not None and role is None:
        return (404,)
    least = _least_role(app, endpoint)
    if least is not None and ROLE_RANK[role] < ROLE_RANK[least]:
        return (403,)
    if owner is not None and (owner != url_org or (
            role == "agent" and AGENT_EXTENSION[principal, url_org] != OBJECT_EXTENSION[owner])):
        return (404,)
    return REACHED.get(endpoint, (200,))


@pytest.mark.parametrize("principal", sorted(REACH))
def test_every_api_route_answers_each_principal_only_for_the_orgs_it_can_reach(app, world, principal):
    client = api_as(app.test_client(), principal, world)
    reaches_b = REACH[principal][1] is not None
    for url, org, owner, endpoint in _urls(app, world):
        response = client.get(url)
        expected = _expected(app, principal, org, owner, endpoint)
        assert response.status_code in expected, (principal, url, response.status_code)
        if not reaches_b:  # a 404 names the reference the caller sent, as for an org that does not exist
            body = response.get_data(as_text=True).replace("'org-b'", "")
            assert not [m for m in B_MARKERS if m in body], (principal, url)
