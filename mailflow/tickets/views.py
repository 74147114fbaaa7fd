"""Named ticket lists behind `mailflow tickets --view`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Select, and_, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from mailflow.config import Config
from mailflow.db.models import Ticket


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
class TicketRow:
    number: int
    type: str
    status: str
    priority: str
    subject: str
    customer: str
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
            assignee=ticket.assignee.email if ticket.assignee else "",
            updated=ticket.updated_at.isoformat(timespec="seconds"),
        )


def view_query(
    config: Config, name: str, *, ticket_type: str | None = None, limit: int | None = None
) -> Select[Ticket]:
    query = (
        select(Ticket)
        .where(VIEWS[name](config))
        .order_by(Ticket.updated_at.desc(), Ticket.id.desc())
    )
    if ticket_type:
        query = query.where(Ticket.type == ticket_type)
    return query.limit(limit) if limit else query


async def rows(
    session: AsyncSession,
    config: Config,
    name: str,
    *,
    ticket_type: str | None = None,
    limit: int | None = None,
) -> list[TicketRow]:
    tickets = await session.scalars(view_query(config, name, ticket_type=ticket_type, limit=limit))
    return [TicketRow.of(t) for t in tickets.unique().all()]
