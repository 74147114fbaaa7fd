"""Named ticket lists behind `mailflow tickets --view`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, Select, and_, func, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from mailflow.automation.conditions import ConditionProblem, parse_condition
from mailflow.automation.sql import NotInSql, to_sql
from mailflow.config import Config, ConfigError
from mailflow.db.models import Agent, Ticket
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

    def apply(self, query: Select[Ticket]) -> Select[Ticket]:
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
    def of(cls, ticket: Ticket) -> TicketRow:
        return cls(
            number=ticket.id,
            type=ticket.type,
            status=ticket.status,
            priority=ticket.priority,
            subject=ticket.subject,
            customer=ticket.customer.email,
            usergroup=ticket.usergroup.name if ticket.usergroup else "",
            group=ticket.group.name if ticket.group else "",
            project=ticket.project or "",
            assignee=ticket.assignee.email if ticket.assignee else "",
            due=ticket.due_at.isoformat(timespec="minutes") if ticket.due_at else "",
            updated=ticket.updated_at.isoformat(timespec="seconds"),
        )


def view_query(
    config: Config,
    name: str,
    now: datetime,
    filters: Filters = Filters(),
    limit: int | None = None,
    agent: str | None = None,
) -> Select[Ticket]:
    query = (
        select(Ticket)
        .where(condition(config, name, now, agent))
        .order_by(Ticket.updated_at.desc(), Ticket.id.desc())
    )
    query = filters.apply(query)
    return query.limit(limit) if limit else query


async def rows(
    session: AsyncSession,
    config: Config,
    name: str,
    now: datetime,
    filters: Filters = Filters(),
    limit: int | None = None,
    agent: str | None = None,
) -> list[TicketRow]:
    tickets = await session.scalars(view_query(config, name, now, filters, limit, agent))
    return [TicketRow.of(t) for t in tickets.unique().all()]
