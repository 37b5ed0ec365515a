"""Every registered /api/v1 route, for every principal of the two-org world, against org A's and
org B's URLs: 401, 404 or 200 exactly as the resolver decides, and no trace of an org the principal
cannot reach in any answer. A new route joins the walk by being registered."""
from __future__ import annotations

import pytest

from tests.test_org_resolver import REACH
from tests.world import api_as
from vsync.auth import PUBLIC_ENDPOINTS

# What org B's data looks like in a body; none of it may reach a principal that cannot act in B.
B_MARKERS = ("org-b", "admin@b.test", "manager@b.test", "agent@b.test", "b-1100", "b-1300", "moved-after")


def _api_rules(app):
    return sorted((rule for rule in app.url_map.iter_rules() if rule.rule.startswith("/api/v1/")
                   and "GET" in rule.methods), key=lambda rule: rule.rule)


def _urls(app):
    for rule in _api_rules(app):
        if "<org>" in rule.rule:
            for org in ("a", "b"):
                yield rule.rule.replace("<org>", f"org-{org}"), org, rule.endpoint
        else:
            assert not rule.arguments, f"{rule.rule}: give the matrix a way to fill its other arguments"
            yield rule.rule, None, rule.endpoint


@pytest.mark.parametrize("principal", sorted(REACH))
def test_every_api_route_answers_each_principal_only_for_the_orgs_it_can_reach(app, world, principal):
    client = api_as(app.test_client(), principal, world)
    reaches_b = REACH[principal][1] is not None
    for url, org, endpoint in _urls(app):
        response = client.get(url)
        role = None if org is None else REACH[principal]["ab".index(org)]
        if endpoint in PUBLIC_ENDPOINTS:
            expected = (200, 503)
        elif principal == "anonymous":
            expected = (401,)
        elif org is not None and role is None:
            expected = (404,)
        else:
            expected = (200,)
        assert response.status_code in expected, (principal, url, response.status_code)
        if not reaches_b:  # a 404 names the reference the caller sent, as for an org that does not exist
            body = response.get_data(as_text=True).replace("'org-b'", "")
            assert not [m for m in B_MARKERS if m in body], (principal, url)
