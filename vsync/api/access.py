"""Per-route authorisation for /api/v1: key scopes and org roles, answered as JSON 403."""
from __future__ import annotations

import functools

from flask_login import current_user

from vsync.auth.permissions import has_role, has_scope
from vsync.http import error_response


def requires(*, scope: str = "read", role: str | None = None):
    """Refuse with 403 unless the principal's key has `scope` and, in the org of the URL, at least `role`.

    Authentication itself (401) is handled before any view runs (`vsync.auth`).
    """
    def decorate(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            principal = current_user._get_current_object()
            if not has_scope(principal, scope):
                return error_response(403, "forbidden", f"This API key lacks the '{scope}' scope.",
                                      {"scope": f"requires '{scope}'"})
            if role is not None and not has_role(role):
                return error_response(403, "forbidden", f"This needs the {role.replace('_', ' ')} role.",
                                      {"role": f"requires '{role}'"})
            return view(*args, **kwargs)
        return wrapper
    return decorate
