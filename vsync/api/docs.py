"""GET /api/v1/docs: the API reference, rendered by vsync from its own OpenAPI document.

Server-side HTML with no scripts or external assets, so it works offline and always matches
`/api/v1/openapi.json` (both public: they describe the API, they hold no data). Its KPI table is the
KPI registry (`vsync.metrics.FIGURES`), the declarations the API's metrics schemas are built from.
"""

from __future__ import annotations

import json
import re
from functools import cache
from urllib.parse import quote

from flask import Blueprint, Flask, render_template

from vsync import metrics
from vsync.api import api

bp = Blueprint("api_reference", __name__, url_prefix="/api/v1")
METHODS = ("get", "post", "put", "patch", "delete")
_PATH_EXAMPLE = re.compile(r"{(\w+)}")
_PATH_EXAMPLES = {"org": "acme", "e164": "+14155550123"}  # any other argument is an id


def _resolve(spec: dict, node: dict | None) -> dict:
    """A schema with its `$ref` followed (one level; nested schemas stay references by name)."""
    resolved: dict = node or {}
    while "$ref" in resolved:
        resolved = spec["components"]["schemas"][resolved["$ref"].rsplit("/", 1)[-1]]
    return resolved


def _type_of(spec: dict, schema: dict) -> str:
    schema = schema or {}
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if "anyOf" in schema:
        return " or ".join(_type_of(spec, s) for s in schema["anyOf"])
    kind = schema.get("type", "object")
    kinds = kind if isinstance(kind, list) else [kind]
    if "array" in kinds:
        return f"array of {_type_of(spec, schema.get('items', {}))}"
    enum = f" ({', '.join(map(str, schema['enum']))})" if "enum" in schema else ""
    return " or ".join(kinds) + enum


def _fields(spec: dict, schema: dict | None) -> list[dict]:
    schema = _resolve(spec, schema)
    required = set(schema.get("required", []))
    return [
        {
            "name": name,
            "type": _type_of(spec, prop),
            "required": name in required,
            "description": prop.get("description", ""),
        }
        for name, prop in schema.get("properties", {}).items()
    ]


def _example(spec: dict, path: str, method: str, operation: dict) -> str:
    url = _PATH_EXAMPLE.sub(lambda m: _PATH_EXAMPLES.get(m.group(1), "42"), path)
    examples = {
        p["name"]: p.get("example", p.get("schema", {}).get("example"))
        for p in operation.get("parameters", [])
        if p.get("in") == "query"
    }
    query = [f"{name}={quote(str(value), safe='')}" for name, value in examples.items() if value is not None]
    line = "curl" if operation.get("security") == [] else "curl -H 'Authorization: Bearer vsk_…'"
    if method != "get":
        line += f" -X {method.upper()}"
    body = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
    if body is not None:
        example = {
            name: prop["example"]
            for name, prop in _resolve(spec, body).get("properties", {}).items()
            if "example" in prop
        }
        line += f" -H 'Content-Type: application/json' -d '{json.dumps(example, ensure_ascii=False)}'"
    return f"{line} 'https://vsync.example.com{url}{'?' + '&'.join(query) if query else ''}'"


@cache
def _operations(spec_json: str) -> list[dict]:
    spec = json.loads(spec_json)
    operations = []
    for path, item in spec["paths"].items():
        for method in METHODS:
            if method not in item:
                continue
            op = item[method]
            ok = next((code for code in op.get("responses", {}) if str(code).startswith("2")), None)
            response = op["responses"].get(ok, {}) if ok else {}
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            operations.append(
                {
                    "id": f"{method}-{path}".replace("/", "-").replace("{", "").replace("}", ""),
                    "method": method.upper(),
                    "path": path,
                    "summary": op.get("summary", ""),
                    "description": op.get("description", ""),
                    "access": op.get("x-access"),
                    "parameters": [
                        {
                            "name": p["name"],
                            "in": p["in"],
                            "required": p.get("required", False),
                            "type": _type_of(spec, p.get("schema", {})),
                            "description": p.get("description", ""),
                        }
                        for p in item.get("parameters", []) + op.get("parameters", [])
                    ],
                    "body": _fields(spec, body) if body else None,
                    "status": ok,
                    "response": _fields(spec, response.get("content", {}).get("application/json", {}).get("schema")),
                    "example": _example(spec, path, method, op),
                }
            )
    return operations


@bp.get("/docs")
def docs():
    if api.spec is None:
        raise RuntimeError("The API reference needs the API registered (vsync.api.init_app).")
    spec = api.spec.to_dict()
    return render_template(
        "api_docs.html",
        operations=_operations(json.dumps(spec, sort_keys=True)),
        kpis=metrics.FIGURES.values(),
        breakdowns=metrics.BREAKDOWNS,
        schemas=sorted(spec["components"]["schemas"].items()),
        spec=spec,
        fields_of=lambda schema: _fields(spec, schema),
    )


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
