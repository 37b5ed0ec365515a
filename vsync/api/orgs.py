"""GET /api/v1/orgs and /api/v1/orgs/{org}: the organisations a principal may act in.

`{org}` is a slug or an id. Every route with `<org>` in its URL acts in that org's tenant scope,
entered by `vsync.auth` from the resolver's answer before the view runs (`g.org_access`).
"""
from __future__ import annotations

from flask import g, jsonify, request
from flask_login import current_user

from vsync.api import bp
from vsync.api.me import org_access_json
from vsync.auth.principals import reachable_orgs
from vsync.errors import ValidationError
from vsync.extensions import db
from vsync.models import Organization

DEFAULT_LIMIT, MAX_LIMIT = 100, 1000


def _int_arg(name: str, default: int | None, low: int, high: int) -> int | None:
    raw = request.args.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise ValidationError(f"{name} must be a whole number from {low} to {high}.", field=name)
    return int(raw)


@bp.get("/orgs")
def list_orgs():
    """The orgs the principal may act in, by id; `cursor` is the last id of the previous page."""
    unknown = set(request.args) - {"limit", "cursor"}
    if unknown:
        raise ValidationError(f"Unknown parameter {sorted(unknown)[0]!r}.", field=sorted(unknown)[0])
    limit = _int_arg("limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    after = _int_arg("cursor", None, 0, 2**63 - 1)
    page = reachable_orgs(current_user._get_current_object(), after_id=after, limit=limit + 1)
    more = len(page) > limit
    page = page[:limit]
    return jsonify(data=[org_access_json(access) for access in page],
                   next_cursor=str(page[-1].org_id) if more else None)


@bp.get("/orgs/<org>")
def get_org(org: str):
    record = db.session.get(Organization, g.org_access.org_id)
    return jsonify(id=record.id, slug=record.slug, name=record.name, timezone=record.timezone,
                   service_level_target=record.service_level_target,
                   service_level_threshold_seconds=record.service_level_threshold_seconds,
                   short_abandon_seconds=record.short_abandon_seconds,
                   role=g.org_access.role, extension=g.org_access.extension)
