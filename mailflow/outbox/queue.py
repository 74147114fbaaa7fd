"""Outbox rows: written in the caller's transaction, claimed and settled by the sender."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from email import policy
from email.message import EmailMessage

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mailflow.db.models import Agent, OutboxMessage, OutboxState, Ticket
from mailflow.db.session import Database
from mailflow.tickets.events import DeliveryFailed, Event
from mailflow.tickets.messages import add_ref
from mailflow.tickets.ops import Actor, record


@dataclass(frozen=True, slots=True)
class Claimed:
    """An outbox row taken by one sender for one delivery attempt."""

    id: int
    ticket_id: int | None
    mail_from: str
    rcpt_tos: tuple[str, ...]
    message_id: str
    raw: bytes
    attempts: int
    created_at: datetime


async def enqueue(
    session: AsyncSession,
    message: EmailMessage,
    *,
    mail_from: str,
    rcpt_tos: list[str],
    ticket: Ticket | None,
    purpose: str,
    actor: Actor,
    now: datetime,
) -> OutboxMessage:
    message_id = str(message["Message-ID"]).strip().strip("<>")
    row = OutboxMessage(
        ticket_id=ticket.id if ticket else None,
        created_at=now,
        purpose=purpose,
        mail_from=mail_from,
        rcpt_tos=rcpt_tos,
        message_id=message_id,
        raw=message.as_bytes(policy=policy.SMTP),
        state=OutboxState.PENDING,
        attempts=0,
        next_attempt_at=now,
    )
    session.add(row)
    await session.flush()
    if ticket is not None:
        await add_ref(session, ticket.id, message_id, now)
        record(
            session, ticket, actor, "mail_queued", now, outbox=row.id, purpose=purpose, to=rcpt_tos
        )
    return row


def backoff(attempts: int, initial: timedelta, maximum: timedelta) -> timedelta:
    """Exponential: initial, 2×, 4×, … capped at maximum."""
    delay: timedelta = initial * (2 ** max(attempts - 1, 0))
    return min(delay, maximum)


async def claim_due(db: Database, now: datetime, lease: timedelta, limit: int) -> list[Claimed]:
    """Take up to `limit` rows that are due, or whose previous sender's lease ran out."""
    due = or_(
        and_(OutboxMessage.state == OutboxState.PENDING, OutboxMessage.next_attempt_at <= now),
        and_(OutboxMessage.state == OutboxState.SENDING, OutboxMessage.locked_until <= now),
    )
    async with db.transaction() as session:
        rows = (
            await session.scalars(
                select(OutboxMessage)
                .where(due)
                .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        ).all()
        for row in rows:
            row.state = OutboxState.SENDING
            row.locked_until = now + lease
            row.attempts += 1
        return [
            Claimed(
                id=row.id,
                ticket_id=row.ticket_id,
                mail_from=row.mail_from,
                rcpt_tos=tuple(row.rcpt_tos),
                message_id=row.message_id,
                raw=row.raw,
                attempts=row.attempts,
                created_at=row.created_at,
            )
            for row in rows
        ]


async def next_due(db: Database) -> datetime | None:
    async with db.transaction() as session:
        return await session.scalar(
            select(OutboxMessage.next_attempt_at)
            .where(OutboxMessage.state == OutboxState.PENDING)
            .order_by(OutboxMessage.next_attempt_at)
            .limit(1)
        )


async def mark_sent(session: AsyncSession, claimed: Claimed, now: datetime, note: str) -> None:
    await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == claimed.id)
        .values(state=OutboxState.SENT, sent_at=now, locked_until=None, last_error=note)
    )


async def mark_retry(
    session: AsyncSession, claimed: Claimed, error: str, next_attempt_at: datetime
) -> None:
    await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == claimed.id)
        .values(
            state=OutboxState.PENDING,
            next_attempt_at=next_attempt_at,
            locked_until=None,
            last_error=error,
        )
    )


async def mark_failed(
    session: AsyncSession, outbox_id: int, error: str, actor: Actor, now: datetime
) -> list[Event]:
    """A delivery that will not happen: the row, the ticket's history, and the event."""
    row = await session.get(OutboxMessage, outbox_id)
    assert row is not None
    row.state, row.locked_until, row.last_error = OutboxState.FAILED, None, error
    ticket = await session.get(Ticket, row.ticket_id) if row.ticket_id else None
    if ticket is None:
        return []
    record(
        session, ticket, actor, "delivery_failed", now, outbox=row.id, to=row.rcpt_tos, error=error
    )
    to_agent = await session.scalar(select(Agent.id).where(Agent.email.in_(row.rcpt_tos)))
    if to_agent is not None:
        return []  # telling the agents that mail to an agent failed could loop on its own
    return [DeliveryFailed(ticket_id=ticket.id, outbox_id=row.id, diagnostic=error)]
