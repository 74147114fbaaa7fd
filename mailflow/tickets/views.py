"""Named ticket lists behind `mailflow tickets --view`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Select, and_, func, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from mailflow.config import Config
from mailflow.db.models import Ticket
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


VIEWS: dict[str, Callable[[Config], ColumnElement[bool]]] = {
    "unassigned": lambda c: and_(Ticket.assignee_id.is_(None), _not_closed(c)),
    "customer-waiting": lambda c: Ticket.status == "customer waiting",
    "agent-waiting": lambda c: Ticket.status == "agent waiting",
    "open": _not_closed,
    "all": lambda c: true(),
}


@dataclass(frozen=True, slots=True)
class Filters:
    """Narrowing any view: by type, status, group or usergroup (by name)."""

    ticket_type: str | None = None
    status: str | None = None
    group: str | None = None
    usergroup: str | None = None

    def apply(self, query: Select[Ticket]) -> Select[Ticket]:
        if self.ticket_type:
            query = query.where(Ticket.type == self.ticket_type)
        if self.status:
            query = query.where(Ticket.status == self.status)
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
    assignee: str
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
            assignee=ticket.assignee.email if ticket.assignee else "",
            updated=ticket.updated_at.isoformat(timespec="seconds"),
        )


def view_query(
    config: Config, name: str, filters: Filters = Filters(), limit: int | None = None
) -> Select[Ticket]:
    query = (
        select(Ticket)
        .where(VIEWS[name](config))
        .order_by(Ticket.updated_at.desc(), Ticket.id.desc())
    )
    query = filters.apply(query)
    return query.limit(limit) if limit else query


async def rows(
    session: AsyncSession,
    config: Config,
    name: str,
    filters: Filters = Filters(),
    limit: int | None = None,
) -> list[TicketRow]:
    tickets = await session.scalars(view_query(config, name, filters, limit))
    return [TicketRow.of(t) for t in tickets.unique().all()]
