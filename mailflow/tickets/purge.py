"""Removing tickets for good, with everything that hangs off them. Only ever on request."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, Table, delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from mailflow.db.base import Base
from mailflow.db.models import Attachment, Blob, Ticket  # models holds every table


async def purge_tickets(session: AsyncSession, ticket_ids: Sequence[int]) -> None:
    """Delete the tickets and every row that depends on them, found through the schema's
    foreign keys (messages and their attachments, history, time, approvals and their
    nonces…), so that a table added later cannot make a purge fail half-way."""
    if not ticket_ids:
        return
    owned = _owned_rows(list(ticket_ids))
    for table in reversed(Base.metadata.sorted_tables):  # children before their parents
        if table.name in owned:
            await session.execute(delete(table).where(owned[table.name]))
    # Content no attachment refers to any more.
    await session.execute(delete(Blob).where(Blob.sha256.not_in(select(Attachment.sha256))))


def _owned_rows(ticket_ids: list[int]) -> dict[str, ColumnElement[bool]]:
    """Table name → which of its rows belong to these tickets: a foreign key to a ticket, or
    to a row that itself belongs to one."""
    tickets: Table = Ticket.__table__  # type: ignore[assignment]
    owned: dict[str, ColumnElement[bool]] = {tickets.name: tickets.c.id.in_(ticket_ids)}
    for table in Base.metadata.sorted_tables:  # parents before their children
        links = [
            fk.parent.in_(select(fk.column).where(owned[fk.column.table.name]))
            if fk.column.table is not tickets
            else fk.parent.in_(ticket_ids)
            for fk in table.foreign_keys
            if fk.column.table.name in owned and fk.column.table is not table
        ]
        if links and table is not tickets:
            owned[table.name] = or_(*links)
    return owned
