"""Column types shared by the models."""

from datetime import UTC, datetime

from sqlalchemy import JSON, CheckConstraint, DateTime
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator

# JSONB on PostgreSQL (indexable, compact), plain JSON text on SQLite.
JSONType = JSON().with_variant(JSONB(), "postgresql")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator):
    """`timestamptz` on PostgreSQL; on SQLite, UTC stored naive and handed back aware.

    Naive datetimes are refused on the way in: a naive time is a bug waiting for a DST change.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: vsync stores aware UTC times only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def one_of(column: str, values: tuple[str, ...], *, name: str | None = None) -> CheckConstraint:
    """A CHECK that `column` holds one of `values`: built from the tuple the code validates with."""
    return CheckConstraint(f"{column} IN ({', '.join(repr(v) for v in values)})", name=name or column)
