"""Outbox rows: written in the caller's transaction, claimed and settled by the sender."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email import policy
from email.message import EmailMessage

from sqlalchemy import ColumnElement, and_, or_, select, update
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
    # zoë@example.com cannot be written in ASCII: such mail goes out as SMTPUTF8 (RFC 6531),
    # its headers in UTF-8, rather than with an encoded word where an address should be.
    international = needs_smtputf8(mail_from, rcpt_tos)
    row = OutboxMessage(
        ticket_id=ticket.id if ticket else None,
        created_at=now,
        purpose=purpose,
        mail_from=mail_from,
        rcpt_tos=rcpt_tos,
        message_id=message_id,
        raw=message.as_bytes(policy=policy.SMTPUTF8 if international else policy.SMTP),
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


def needs_smtputf8(mail_from: str, rcpt_tos: Sequence[str]) -> bool:
    return not all(address.isascii() for address in (mail_from, *rcpt_tos))


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
        return [_claimed(row) for row in rows]


async def still_sending(session: AsyncSession, ids: Sequence[int]) -> dict[int, Claimed]:
    """Rows a sender took and has not settled, by id: those a dead process's journal names."""
    rows = await session.scalars(
        select(OutboxMessage).where(
            OutboxMessage.id.in_(ids), OutboxMessage.state == OutboxState.SENDING
        )
    )
    return {row.id: _claimed(row) for row in rows}


def _claimed(row: OutboxMessage) -> Claimed:
    return Claimed(
        id=row.id,
        ticket_id=row.ticket_id,
        mail_from=row.mail_from,
        rcpt_tos=tuple(row.rcpt_tos),
        message_id=row.message_id,
        raw=row.raw,
        attempts=row.attempts,
        created_at=row.created_at,
    )


async def next_due(db: Database) -> datetime | None:
    async with db.transaction() as session:
        return await session.scalar(
            select(OutboxMessage.next_attempt_at)
            .where(OutboxMessage.state == OutboxState.PENDING)
            .order_by(OutboxMessage.next_attempt_at)
            .limit(1)
        )


def _still_sending(claimed: Claimed) -> ColumnElement[bool]:
    """The row as the sender left it: a bounce that came back while the relay's answer was
    still on its way has marked it failed, and that stands."""
    return and_(OutboxMessage.id == claimed.id, OutboxMessage.state == OutboxState.SENDING)


async def mark_sent(session: AsyncSession, claimed: Claimed, now: datetime, note: str) -> None:
    await session.execute(
        update(OutboxMessage)
        .where(_still_sending(claimed))
        .values(state=OutboxState.SENT, sent_at=now, locked_until=None, last_error=note)
    )


async def put_back(session: AsyncSession, claimed: Claimed) -> None:
    """A delivery a stopping daemon did not start, or gave up half way: due again at once,
    and not counted as an attempt."""
    await session.execute(
        update(OutboxMessage)
        .where(_still_sending(claimed))
        .values(state=OutboxState.PENDING, locked_until=None, attempts=claimed.attempts - 1)
    )


async def mark_retry(
    session: AsyncSession, claimed: Claimed, error: str, next_attempt_at: datetime
) -> None:
    await session.execute(
        update(OutboxMessage)
        .where(_still_sending(claimed))
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
    return await _failure_noted(session, row, row.rcpt_tos, error, actor, now)


async def recipients_failed(
    session: AsyncSession,
    claimed: Claimed,
    refused: list[str],
    error: str,
    actor: Actor,
    now: datetime,
) -> list[Event]:
    """The relay took the mail but refused some recipients for good (a Cc that does not
    exist): the mail is sent, and the ticket says who did not get it."""
    row = await session.get(OutboxMessage, claimed.id)
    assert row is not None
    return await _failure_noted(session, row, refused, error, actor, now)


async def split_off(
    session: AsyncSession, claimed: Claimed, deferred: list[str], error: str, next_at: datetime
) -> None:
    """Recipients the relay put off (4xx) while it took the others: a row of their own, on
    the usual backoff, so that they get the mail once and the others not twice."""
    row = await session.get(OutboxMessage, claimed.id)
    assert row is not None
    session.add(
        OutboxMessage(
            ticket_id=row.ticket_id,
            created_at=row.created_at,
            purpose=row.purpose,
            mail_from=row.mail_from,
            rcpt_tos=deferred,
            message_id=row.message_id,
            raw=row.raw,
            state=OutboxState.PENDING,
            attempts=row.attempts,
            next_attempt_at=next_at,
            last_error=error,
        )
    )


async def _failure_noted(
    session: AsyncSession,
    row: OutboxMessage,
    rcpt_tos: list[str],
    error: str,
    actor: Actor,
    now: datetime,
) -> list[Event]:
    ticket = await session.get(Ticket, row.ticket_id) if row.ticket_id else None
    if ticket is None:
        return []
    record(session, ticket, actor, "delivery_failed", now, outbox=row.id, to=rcpt_tos, error=error)
    to_agent = await session.scalar(select(Agent.id).where(Agent.email.in_(rcpt_tos)))
    if to_agent is not None:
        return []  # telling the agents that mail to an agent failed could loop on its own
    return [DeliveryFailed(ticket_id=ticket.id, outbox_id=row.id, diagnostic=error)]
