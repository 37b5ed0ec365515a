"""Alembic's environment under Flask-Migrate: the app's engine and metadata, and the options that
`vsync.extensions.migrate` sets (`compare_type`, `render_as_batch` for SQLite)."""

import logging
import warnings
from logging.config import fileConfig

from alembic import context
from flask import current_app

config = context.config
fileConfig(config.config_file_name, disable_existing_loggers=False)
logger = logging.getLogger("alembic.env")
# SQLite's reflection (batch mode copies tables, and reads the tables their keys refer to) cannot read
# the index on `lower(name)` of organisations and says so on every batch; the migration that needs the
# index makes it again (0018), so the warning tells an operator nothing.
warnings.filterwarnings("ignore", message="Skipped unsupported reflection of expression-based index")

target_db = current_app.extensions["migrate"].db
# `%` would be read as interpolation by the ini parser that holds the URL.
config.set_main_option("sqlalchemy.url", target_db.engine.url.render_as_string(hide_password=False).replace("%", "%%"))


def render_item(type_, obj, autogen_context):
    """Render vsync's column types as plain SQLAlchemy types, so migrations never import the app."""
    if type_ == "type" and type(obj).__name__ == "UtcDateTime":
        return "sa.DateTime(timezone=True)"
    return False


def run_migrations_offline():
    """`flask db upgrade --sql`: the SQL is written out from the URL alone, with no connection."""
    context.configure(
        url=config.get_main_option("sqlalchemy.url"), target_metadata=target_db.metadata, literal_binds=True
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    def process_revision_directives(migration_context, revision, directives):
        """`flask db migrate` writes no empty revision when the models match the schema."""
        if getattr(config.cmd_opts, "autogenerate", False) and directives[0].upgrade_ops.is_empty():
            directives[:] = []
            logger.info("No changes in schema detected.")

    conf_args = current_app.extensions["migrate"].configure_args
    conf_args.setdefault("render_item", render_item)
    if conf_args.get("process_revision_directives") is None:
        conf_args["process_revision_directives"] = process_revision_directives
    with target_db.engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_db.metadata, **conf_args)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
