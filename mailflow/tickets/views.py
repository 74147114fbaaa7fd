"""Named ticket lists behind `mailflow tickets --view`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, and_, func, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from mailflow.automation.conditions import ConditionProblem, parse_condition
from mailflow.automation.sql import NotInSql, to_sql
from mailflow.config import Config, ConfigError
from mailflow.db.models import Agent, Customer, Ticket
from mailflow.db.paging import AnyRow, AnySelect, Keyset
from mailflow.db.people import Group, Usergroup


def _not_closed(config: Config) -> ColumnElement[bool]:
    return or_(
        *(
            and_(Ticket.type == t.name, Ticket.status.not_in(t.closed))
            if t.closed
            else Ticket.type == t.name
            for t in config.types
        )
    )


def _mine(config: Config, now: datetime, agent: str | None) -> ColumnElement[bool]:
    if not agent:
        raise ViewProblem("the view mine needs --agent ADDRESS")
    return and_(
        Ticket.assignee_id.in_(select(Agent.id).where(Agent.email == agent.lower())),
        _not_closed(config),
    )


# Built in: (config, now, the agent asking) → which tickets.
BUILT_IN: dict[str, Callable[[Config, datetime, str | None], ColumnElement[bool]]] = {
    "unassigned": lambda c, now, a: and_(Ticket.assignee_id.is_(None), _not_closed(c)),
    "customer-waiting": lambda c, now, a: Ticket.status == "customer waiting",
    "agent-waiting": lambda c, now, a: Ticket.status == "agent waiting",
    "overdue": lambda c, now, a: and_(Ticket.due_at < now, _not_closed(c)),
    "mine": _mine,
    "open": lambda c, now, a: _not_closed(c),
    "all": lambda c, now, a: true(),
}


class ViewProblem(Exception):
    """An unknown view, or a view that cannot be run as asked."""


def names(config: Config) -> list[str]:
    return [*BUILT_IN, *(view.name for view in config.views)]


def condition(
    config: Config, name: str, now: datetime, agent: str | None = None
) -> ColumnElement[bool]:
    if name in BUILT_IN:
        return BUILT_IN[name](config, now, agent)
    for view in config.views:
        if view.name == name:
            return to_sql(parse_condition(view.where), now)
    raise ViewProblem(f"no view {name!r}; views: {', '.join(names(config))}")


def check_views(config: Config) -> None:
    """At start-up: every configured view must compile to SQL, and not shadow a built-in."""
    for index, view in enumerate(config.views):
        key = f"views[{index}]"
        if view.name in BUILT_IN:
            raise ConfigError(config.source, f"{key}.name", f"{view.name!r} is a built-in view")
        try:
            to_sql(parse_condition(view.where), datetime.now(UTC))
        except (ConditionProblem, NotInSql) as exc:
            raise ConfigError(config.source, f"{key}.if", str(exc)) from None


@dataclass(frozen=True, slots=True)
class Filters:
    """Narrowing any view: by type, status, group or usergroup (by name)."""

    ticket_type: str | None = None
    status: str | None = None
    group: str | None = None
    usergroup: str | None = None
    project: str | None = None

    def apply(self, query: AnySelect) -> AnySelect:
        if self.ticket_type:
            query = query.where(Ticket.type == self.ticket_type)
        if self.status:
            query = query.where(Ticket.status == self.status)
        if self.project:
            query = query.where(func.lower(Ticket.project) == self.project.lower())
        if self.group:
            query = query.where(
                Ticket.group_id.in_(
                    select(Group.id).where(func.lower(Group.name) == self.group.lower())
                )
            )
        if self.usergroup:
            query = query.where(
                Ticket.usergroup_id.in_(
                    select(Usergroup.id).where(func.lower(Usergroup.name) == self.usergroup.lower())
                )
            )
        return query


@dataclass(frozen=True, slots=True)
class TicketRow:
    number: int
    type: str
    status: str
    priority: str
    subject: str
    customer: str
    usergroup: str
    group: str
    project: str
    assignee: str
    due: str
    updated: str

    @classmethod
    def of(cls, row: AnyRow) -> TicketRow:
        return cls(
            number=row.id,
            type=row.type,
            status=row.status,
            priority=row.priority,
            subject=row.subject,
            customer=row.customer,
            usergroup=row.usergroup or "",
            group=row.group or "",
            project=row.project or "",
            assignee=row.assignee or "",
            due=row.due_at.isoformat(timespec="minutes") if row.due_at else "",
            updated=row.updated_at.isoformat(timespec="seconds"),
        )


# Every view lists the latest change first, paged on the index (updated_at, id).
ORDER = Keyset((Ticket.updated_at, Ticket.id), descending=True)


def listing(
    config: Config,
    name: str,
    now: datetime,
    filters: Filters = Filters(),
    agent: str | None = None,
) -> AnySelect:
    """The columns a list shows, in one statement: no ticket is loaded as an object. The
    joined tables are aliases, so that a view's own subqueries on them stay independent."""
    customer, assignee = aliased(Customer), aliased(Agent)
    group, usergroup = aliased(Group), aliased(Usergroup)
    query = (
        select(
            Ticket.id,
            Ticket.type,
            Ticket.status,
            Ticket.priority,
            Ticket.subject,
            customer.email.label("customer"),
            usergroup.name.label("usergroup"),
            group.name.label("group"),
            Ticket.project,
            assignee.email.label("assignee"),
            Ticket.due_at,
            Ticket.updated_at,
        )
        .join(customer, customer.id == Ticket.customer_id)
        .outerjoin(usergroup, usergroup.id == Ticket.usergroup_id)
        .outerjoin(group, group.id == Ticket.group_id)
        .outerjoin(assignee, assignee.id == Ticket.assignee_id)
        .where(condition(config, name, now, agent))
    )
    return filters.apply(query)


async def rows(
    session: AsyncSession,
    config: Config,
    name: str,
    now: datetime,
    filters: Filters = Filters(),
    limit: int | None = None,
    agent: str | None = None,
) -> list[TicketRow]:
    statement = ORDER.statement(listing(config, name, now, filters, agent), None, limit)
    found = await session.execute(statement)
    return [TicketRow.of(row) for row in found]
