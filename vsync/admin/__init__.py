"""The Flask-Admin console at /admin. Every view is reached only after `vsync.auth` has resolved
the principal and entered its tenant scope, so a view's queries see one org, or all orgs for a
platform admin, without filtering of their own."""
from __future__ import annotations

from flask import Flask, g
from flask_admin import Admin, AdminIndexView, expose
from flask_admin.theme import Bootstrap4Theme
from flask_login import current_user


class HomeView(AdminIndexView):
    def is_accessible(self) -> bool:
        return current_user.is_authenticated and not getattr(current_user, "is_api_key", False)

    @expose("/")
    def index(self):
        return self.render("admin/home.html", memberships=g.get("memberships", []),
                           membership=g.get("membership"))


def init_app(app: Flask) -> None:
    admin = Admin(name="vsync", index_view=HomeView(), theme=Bootstrap4Theme(base_template="admin/vsync_base.html"))
    admin.init_app(app)
