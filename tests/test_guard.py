"""Deny by default: every URL is on the short public list or refuses an anonymous caller."""

from __future__ import annotations

import re

import pytest

from vsync.auth import PUBLIC_ENDPOINTS


def _sample_url(rule) -> str:
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", "1", rule.rule)


def test_every_url_rule_is_public_or_refuses_anonymous_access(app, client):
    checked = 0
    for rule in app.url_map.iter_rules():
        if rule.endpoint in PUBLIC_ENDPOINTS:
            continue
        url = _sample_url(rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            response = client.open(url, method=method)
            if url.startswith("/api/"):
                assert response.status_code == 401, (method, url)
                assert response.get_json()["error"]["code"] == "unauthorized"
            else:
                assert response.status_code == 302, (method, url, response.status_code)
                assert response.headers["Location"].startswith("/login"), (method, url)
            checked += 1
    assert checked >= 3


@pytest.mark.parametrize("url", ["/api/v1/health", "/login"])
def test_public_endpoints_answer_anonymous_callers(client, url):
    assert client.get(url).status_code == 200
