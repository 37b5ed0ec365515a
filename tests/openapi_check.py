"""Every API answer the suite receives, checked against the OpenAPI document as it is served.

`install(app)` adds an `after_request` hook to the suite's app: a JSON answer of an /api/v1 route
must match the schema its operation declares for its status (or the operation's `default`), and a
status the operation does not declare at all is a failure too. The app runs with TESTING, so the
`AssertionError` reaches the test that made the request.
"""

from __future__ import annotations

import re
from functools import cache

from flask import Flask, request
from jsonschema import Draft202012Validator

from vsync.api import api

_ARGUMENT = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


def openapi_path(rule: str) -> str:
    return _ARGUMENT.sub(r"{\1}", rule)


def install(app: Flask) -> None:
    with app.app_context():
        spec = api.spec.to_dict()

    @cache
    def validator(path: str, method: str, status: str) -> Draft202012Validator | None:
        operation = spec["paths"].get(path, {}).get(method)
        assert operation is not None, f"{method.upper()} {path} is not in the OpenAPI document"
        responses = operation.get("responses", {})
        response = responses.get(status) or responses.get("default")
        assert response is not None, f"{method.upper()} {path} answered {status}, which it does not declare"
        while "$ref" in response:
            response = spec["components"]["responses"][response["$ref"].rsplit("/", 1)[-1]]
        schema = response.get("content", {}).get("application/json", {}).get("schema")
        if schema is None:
            return None
        return Draft202012Validator({**schema, "components": spec["components"]})

    @app.after_request
    def _check(response):
        rule = request.url_rule
        if (
            rule is None
            or not request.path.startswith("/api/v1/")
            or response.mimetype != "application/json"
            or rule.endpoint.startswith("api-docs.")
            or request.method == "HEAD"
        ):
            return response
        check = validator(openapi_path(rule.rule), request.method.lower(), str(response.status_code))
        if check is not None:
            errors = sorted(check.iter_errors(response.get_json()), key=lambda e: list(e.path))
            assert not errors, (
                f"{request.method} {request.path} -> {response.status_code} does not match "
                f"its OpenAPI schema: {errors[0].message} at {list(errors[0].path)}"
            )
        return response
