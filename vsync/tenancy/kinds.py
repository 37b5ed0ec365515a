"""The scoped kinds: the model mixins, each with its criterion, and which tables they map.

Each scoped model declares its criterion (`tenant_criterion`), a SQL expression over the row's table (or
an alias of it) for a scope:

- `OrgOwned`: rows with an `org_id` (memberships, integrations, keys, sync runs, audit events,
  webhook events). `NumberPeriods` (number assignments) are org-owned rows that also decide which
  organisation sees which traffic, so a tenant scope never writes them.
- `NumberTraffic`: provider rows (calls, call events, recordings, SMS). They belong to the number they
  happened on: an organisation sees a row while one of its assignment periods of that number covers
  the row's time. An agent sees only the traffic of their own (account, extension) (no SMS).
- `AccountScoped`: agents (a MightyCall account's extensions and their names), seen by the
  organisations with an integration on that account; an agent sees their own row only.
- `SharedNumber`: phone numbers, seen by the organisations that have (or had) a period on them.
- `SelfScoped`: the organisation row, seen by itself only. `MemberScoped`: users, seen by an
  organisation as its members only, and never with their password hash.

Reviewed Core statements add the same criterion themselves (`tenant_criterion_sql`, `traffic_visible_sql`).
"""

from __future__ import annotations

import re
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, ClassVar, TypeVar

from sqlalchemy import ForeignKey, Table, and_, exists, false, or_
from sqlalchemy.orm import Mapped, declared_attr, mapped_column, synonym
from sqlalchemy.sql.selectable import NamedFromClause

from vsync.tenancy import sqla
from vsync.tenancy.errors import TenancyError

if TYPE_CHECKING:
    from vsync.tenancy.scope import Scope


@cache
def named_alias(table: Table, name: str) -> NamedFromClause:
    """One alias per table and name, built once: a criterion's subquery reads its own copy of a table
    (so it never correlates with the statement it narrows), and building it anew costs more than the
    rest of the criterion."""
    alias = table.alias(name)
    CRITERION_ALIASES.add(alias)
    return alias


CRITERION_ALIASES: set[NamedFromClause] = set()


class TenantScoped:
    """Every scoped model. A subclass's `tenant_criterion(table, scope)` says which rows a scope sees."""

    if TYPE_CHECKING:
        __table__: ClassVar[Table]  # each mapped subclass's (`scoped_models`)

    @classmethod
    def tenant_criterion(cls, table, scope: Scope):
        return false()  # a kind that says nothing shows nothing


class OrgOwned(TenantScoped):
    """`__append_only__` rows (the audit log) are never changed or deleted from a tenant scope."""

    __append_only__ = False

    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)

    @classmethod
    def tenant_criterion(cls, table, scope: Scope):
        return table.c.org_id == scope.org_id


class NumberPeriods(OrgOwned):
    """The periods in which an organisation has a number. Written only by platform operations."""

    @classmethod
    def covering(cls, number_id, time, org_id: int):
        """An EXISTS: `org_id` has a period of the number `number_id` that covers `time`."""
        periods = named_alias(cls.__table__, "visible_period")
        return (
            exists()
            .where(
                periods.c.phone_number_id == number_id,
                periods.c.org_id == org_id,
                periods.c.assigned_at <= time,
                or_(periods.c.unassigned_at.is_(None), periods.c.unassigned_at > time),
            )
            .correlate_except(periods)
        )

    @classmethod
    def any_period(cls, number_id, org_id: int):
        periods = named_alias(cls.__table__, "visible_period")
        return (
            exists().where(periods.c.phone_number_id == number_id, periods.c.org_id == org_id).correlate_except(periods)
        )


class NumberTraffic(TenantScoped):
    """Provider rows: scoped through number periods and the row's time (`__tenant_time__`).

    `__agent_extension__` names the column with the extension that handled the row; a kind without
    one is invisible to agents unless it overrides `agent_criterion`.
    """

    __tenant_time__ = "started_at"
    __agent_extension__: str | None = None

    phone_number_id: Mapped[int] = mapped_column(ForeignKey("phone_numbers.id", ondelete="RESTRICT"))

    @declared_attr
    def tenant_time(cls) -> Mapped[datetime]:
        return synonym(cls.__tenant_time__)

    @classmethod
    def tenant_criterion(cls, table, scope: Scope):
        visible = _periods().covering(table.c.phone_number_id, table.c[cls.__tenant_time__], scope.tenant_org_id)
        if scope.own_traffic_only:
            return and_(visible, cls.agent_criterion(table, scope))
        return visible

    @classmethod
    def agent_criterion(cls, table, scope: Scope):
        """The rows of the scope's agent: their extension, in one of the scope's accounts."""
        if scope.extension is None or not scope.accounts or cls.__agent_extension__ is None:
            return false()
        return and_(table.c.account_id.in_(scope.accounts), table.c[cls.__agent_extension__] == scope.extension)


class AccountScoped(TenantScoped):
    """Rows of a MightyCall account (`account_id`): seen by the organisations with an integration on
    the account. An agent sees only their own extension's row."""

    @classmethod
    def tenant_criterion(cls, table, scope: Scope):
        integrations = named_alias(_integrations().__table__, "account_integration")
        visible = (
            exists()
            .where(integrations.c.account_id == table.c.account_id, integrations.c.org_id == scope.org_id)
            .correlate_except(integrations)
        )
        if scope.own_traffic_only:
            if scope.extension is None or not scope.accounts:
                return false()
            return and_(visible, table.c.account_id.in_(scope.accounts), table.c.extension == scope.extension)
        return visible


class SharedNumber(TenantScoped):
    """Phone numbers: platform rows, seen by the organisations they are (or were) assigned to."""

    id: Mapped[int] = mapped_column(primary_key=True)

    @classmethod
    def tenant_criterion(cls, table, scope: Scope):
        return _periods().any_period(table.c.id, scope.tenant_org_id)


class SelfScoped(TenantScoped):
    """The organisation row: an organisation sees itself only."""

    id: Mapped[int] = mapped_column(primary_key=True)

    @classmethod
    def tenant_criterion(cls, table, scope: Scope):
        return table.c.id == scope.org_id


class MemberScoped(TenantScoped):
    """Users: an organisation sees its members. `__secret_columns__` are never read in a tenant scope."""

    __secret_columns__: tuple[str, ...] = ()


_Kind = TypeVar("_Kind", bound=TenantScoped)


def _mapped_subclasses(base: type[_Kind]) -> list[type[_Kind]]:
    found, todo = [], [base]
    while todo:
        for sub in todo.pop().__subclasses__():
            todo.append(sub)
            if "__table__" in sub.__dict__:
                found.append(sub)
    return found


@cache
def _periods() -> type[NumberPeriods]:
    (model,) = _mapped_subclasses(NumberPeriods)
    return model


@cache
def _integrations() -> type[OrgOwned]:
    """The integrations model: what connects an organisation to a MightyCall account."""
    (model,) = [kind for kind in _mapped_subclasses(OrgOwned) if kind.__table__.name == "integrations"]
    return model


def scoped_models() -> list[type[TenantScoped]]:
    """Every mapped scoped model: the catalogue tests walk this, so a new model joins by being scoped."""
    return _mapped_subclasses(TenantScoped)


_SCOPED_TABLES: dict[Table, type[TenantScoped]] = {}


def kind_of(table) -> type[TenantScoped] | None:
    """The scoped model mapped to `table` (a Table, an annotated copy of one, or an alias of one)."""
    table = sqla.plain_table(table)
    if not isinstance(table, Table):
        return None
    if not _SCOPED_TABLES:
        _SCOPED_TABLES.update({model.__table__: model for model in scoped_models()})
    return _SCOPED_TABLES.get(table)


@cache
def scoped_names() -> frozenset[str]:
    return frozenset(model.__table__.name for model in scoped_models())


def tenant_criterion_sql(table, scope: Scope):
    """The criterion of `table`'s kind for `scope`: for reviewed Core statements, which add it themselves."""
    kind = kind_of(table)
    if kind is None:
        raise TenancyError(f"{table} is not a tenant-scoped table.")
    return kind.tenant_criterion(table, scope)


def traffic_visible_sql(table, scope: Scope):
    """The provider-row criterion for a Core statement on `table` (calls, events, recordings, SMS)."""
    if not issubclass(kind_of(table) or object, NumberTraffic):
        raise TenancyError(f"{table} holds no provider rows.")
    return tenant_criterion_sql(table, scope)


@cache
def _scoped_name_pattern() -> re.Pattern:
    return re.compile(r"\b(" + "|".join(sorted(scoped_names())) + r")\b", re.IGNORECASE)


def scoped_names_in_text(sql: str) -> set[str]:
    return {name.lower() for name in _scoped_name_pattern().findall(sql)}
