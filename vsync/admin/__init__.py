"""The Flask-Admin console at /admin. Views that act in an org get its tenant scope from `vsync.auth`
(the org resolver), so their queries see that org only without filtering of their own."""
from __future__ import annotations

from flask import Flask
from flask_admin import Admin, AdminIndexView, expose
from flask_admin.theme import Bootstrap4Theme
from flask_login import current_user

from vsync.auth.principals import reachable_orgs


class HomeView(AdminIndexView):
    def is_accessible(self) -> bool:
        return current_user.is_authenticated and not current_user.is_api_key

    @expose("/")
    def index(self):
        orgs = [] if current_user.is_platform else reachable_orgs(current_user._get_current_object())
        return self.render("admin/home.html", orgs=orgs)


def init_app(app: Flask) -> None:
    admin = Admin(name="vsync", index_view=HomeView(), theme=Bootstrap4Theme(base_template="admin/vsync_base.html"))
    admin.init_app(app)
