"""Extension instances, unbound; `create_app` binds them. Nothing here does work at import time."""

from typing import ClassVar

from flask_login import LoginManager
from flask_mailman import Mail
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_sqlalchemy.session import Session as FlaskSession
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import MetaData, Table
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.sql.dml import UpdateBase

from vsync.tenancy import TenantSession

# Stable constraint names, so Alembic autogenerate and downgrades work the same on PostgreSQL and SQLite.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    # Every model maps one table; DeclarativeBase types it as any FromClause, which insert() and update() refuse.
    __table__: ClassVar[Table]


class _SQLAlchemy(SQLAlchemy):
    # With a DeclarativeBase as `model_class`, `db.Model` is a subclass of it; Flask-SQLAlchemy's annotations
    # type it as their own `Model` instead, which hides the columns' keyword arguments and `__table__`.
    Model: type[Base]


# `session.info` key: the engine a session's reads go to while `vsync.services.replica.kpi_reads` is active.
READ_ENGINE_KEY = "vsync.read_engine"


class Session(TenantSession, FlaskSession):
    """The app's session: Flask-SQLAlchemy's, with the tenant filter's refusal of legacy bulk methods.

    While a read engine is set in `info` (`READ_ENGINE_KEY`), every statement but a write (INSERT,
    UPDATE, DELETE, and the flush, which asks with no statement) runs there: the same session, so its
    tenant scope and every tenancy hook apply to what the replica answers."""

    def get_bind(self, mapper=None, clause=None, bind=None, **kwargs):
        engine = self.info.get(READ_ENGINE_KEY)
        if engine is not None and bind is None and clause is not None and not isinstance(clause, UpdateBase):
            return engine
        return super().get_bind(mapper=mapper, clause=clause, bind=bind, **kwargs)


db = _SQLAlchemy(model_class=Base, session_options={"class_": Session})
migrate = Migrate(compare_type=True, render_as_batch=True)
login_manager = LoginManager()
csrf = CSRFProtect()
mail = Mail()
