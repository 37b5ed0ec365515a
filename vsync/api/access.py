"""Per-route authorisation for /api/v1: key scopes and org roles, answered as JSON 403.

`requires` also writes what it checks into the route's OpenAPI operation (`x-access`), so the
reference says who may call each route.
"""

from __future__ import annotations

import functools
from copy import deepcopy

from vsync.auth.permissions import has_role, has_scope
from vsync.auth.principals import current_principal
from vsync.http import error_response

PLATFORM = "platform"


def requires(*, scope: str = "read", role: str | None = None):
    """Refuse with 403 unless the principal's key has `scope` and, in the org of the URL, at least
    `role` (`"platform"`: a platform admin or platform key). Place it under the route decorator, so
    access is checked before the request is parsed.

    Authentication itself (401) and the org of the URL (404) are handled before any view runs (`vsync.auth`).
    """

    def decorate(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            principal = current_principal()
            if not has_scope(principal, scope):
                return error_response(
                    403, "forbidden", f"This API key lacks the '{scope}' scope.", {"scope": f"requires '{scope}'"}
                )
            if role == PLATFORM and not principal.is_platform:
                return error_response(
                    403,
                    "forbidden",
                    "Only platform admins and platform keys may do this.",
                    {"role": "requires a platform principal"},
                )
            if role not in (None, PLATFORM) and not has_role(role):
                return error_response(
                    403, "forbidden", f"This needs the {role.replace('_', ' ')} role.", {"role": f"requires '{role}'"}
                )
            return view(*args, **kwargs)

        apidoc = deepcopy(getattr(view, "_apidoc", {}))
        manual = apidoc.setdefault("manual_doc", {})
        manual["x-access"] = {"scope": scope, "role": role or "any member"}
        manual.setdefault("responses", {})["403"] = "FORBIDDEN"
        # flask-smorest reads a route's documentation from this attribute, which functools' typing does not know.
        wrapper._apidoc = apidoc  # pyright: ignore[reportAttributeAccessIssue]
        return wrapper

    return decorate
