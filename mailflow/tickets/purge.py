"""Removing tickets for good, with everything that hangs off them. Only ever on request."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from mailflow.db.models import (
    Attachment,
    Blob,
    History,
    InboundMessage,
    Message,
    MessageRef,
    OutboxMessage,
    Participant,
    Ticket,
)


async def purge_tickets(session: AsyncSession, ticket_ids: Sequence[int]) -> None:
    if not ticket_ids:
        return
    ids = list(ticket_ids)
    messages = select(Message.id).where(Message.ticket_id.in_(ids))
    await session.execute(delete(Attachment).where(Attachment.message_id.in_(messages)))
    for model in (Message, MessageRef, Participant, History, OutboxMessage, InboundMessage):
        await session.execute(delete(model).where(model.ticket_id.in_(ids)))
    await session.execute(delete(Ticket).where(Ticket.id.in_(ids)))
    # Content no attachment refers to any more.
    await session.execute(delete(Blob).where(Blob.sha256.not_in(select(Attachment.sha256))))
