"""The live floor in the consoles: an org's floor for every role, and the platform's floor across orgs.

The page renders the floor once and then polls its JSON twin (`…/floor/data`) every few seconds,
with the console's session, rather than holding a server-sent-events stream open: a poll is one short
request that any gunicorn worker (or machine) answers from the database, where webhook processing
writes each call's state, so nothing lives in a worker's memory and an open wallboard never ties up
a worker. Running durations tick in the browser from the server's timestamps (`since`, `as_of`).

What each role sees is `vsync.services.live`'s: an agent's floor is their own state and the queue's
two figures. `?wallboard=1` shows the same floor full-screen (large type, dark, no navigation) for a
wall display. The platform floor reads each org's floor in that org's own tenant scope, one at a time,
and links into it.
"""

from __future__ import annotations

from flask import jsonify, request, url_for
from flask_admin import expose

from vsync.admin.access import OrgPage, PlatformPage
from vsync.auth.principals import current_principal, reachable_orgs
from vsync.models.orgs import ORG_ADMIN
from vsync.models.types import utcnow
from vsync.services.live import floor_now
from vsync.tenancy import tenant
from vsync.timeutil import isoformat_z

POLL_SECONDS = 3


def floor_data(org_id: int) -> dict:
    """The org's floor now, as the page draws it: the API's floor and the count of agents per state."""
    state = floor_now(org_id)
    return {**state.as_dict(), "counts": state.state_counts()}


class FloorView(OrgPage):
    """Open to every role of the org; an agent sees their own state and the queue's figures."""

    @expose("/")
    def index(self):
        org = self.org
        return self.render(
            "admin/console/floor.html",
            data=floor_data(org.id),
            org=org,
            wallboard=request.args.get("wallboard") == "1",
            poll_seconds=POLL_SECONDS,
        )

    @expose("/data")
    def data(self):
        return jsonify(floor_data(self.org.id))


def _platform_floor() -> dict:
    """Each reachable org's floor counters, read in that org's own scope."""
    rows = []
    for access in reachable_orgs(current_principal()):
        with tenant(access.org_id, role=ORG_ADMIN):
            data = floor_data(access.org_id)
        rows.append(
            {
                "name": access.name,
                "slug": access.slug,
                "url": url_for("org_floor.index", org=access.slug),
                "counts": data["counts"],
                "calls_waiting": data["calls_waiting"],
                "longest_wait_seconds": data["longest_wait_seconds"],
                "as_of": data["as_of"],
            }
        )
    return {"as_of": isoformat_z(utcnow()), "orgs": rows}


class PlatformFloorView(PlatformPage):
    """Every org's floor as counters, each read in that org's own tenant scope, linking into it."""

    own_scope = ("index", "data")

    @expose("/")
    def index(self):
        return self.render("admin/platform/floor.html", data=_platform_floor(), poll_seconds=POLL_SECONDS)

    @expose("/data")
    def data(self):
        return jsonify(_platform_floor())
