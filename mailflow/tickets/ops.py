"""Domain operations on tickets. Each writes History and returns the Events it caused."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case
from sqlalchemy.ext.asyncio import AsyncSession

from mailflow.config import TicketTypeConfig
from mailflow.db.models import NAME_LENGTH, ActorKind, Agent, Customer, History, Ticket
from mailflow.db.upsert import upsert_returning
from mailflow.mail.addresses import Mailbox
from mailflow.tickets.events import Assigned, Event, StatusChanged


@dataclass(frozen=True, slots=True)
class Actor:
    """Who did something: shown in the history."""

    kind: ActorKind
    label: str
    agent_id: int | None = None

    @classmethod
    def customer(cls, customer: Customer) -> Actor:
        return cls(ActorKind.CUSTOMER, customer.email)

    @classmethod
    def agent(cls, agent: Agent) -> Actor:
        return cls(ActorKind.AGENT, agent.email, agent.id)

    @classmethod
    def rule(cls, name: str) -> Actor:
        return cls(ActorKind.AUTOMATION, f"rule: {name}")

    @classmethod
    def system(cls, what: str = "mailflow") -> Actor:
        return cls(ActorKind.SYSTEM, what)


class InvalidChange(Exception):
    """A change the ticket's type does not allow, such as an unknown status."""


def record(
    session: AsyncSession, ticket: Ticket, actor: Actor, action: str, now: datetime, **details: Any
) -> None:
    session.add(
        History(
            ticket_id=ticket.id,
            at=now,
            actor_kind=actor.kind,
            actor=actor.label,
            action=action,
            details=details,
        )
    )


def mailbox_of(person: Customer | Agent) -> Mailbox:
    return Mailbox(person.name, person.email)


async def customer_for(session: AsyncSession, mailbox: Mailbox, now: datetime) -> Customer:
    """The customer with this address, created on first contact; safe under concurrency."""
    return await upsert_returning(
        session,
        Customer,
        ["email"],
        # A name learnt later fills a blank one; a known name is never overwritten.
        {"name": lambda new: case((Customer.name == "", new.name), else_=Customer.name)},
        email=mailbox.address,
        name=mailbox.name[:NAME_LENGTH],
        created_at=now,
    )


async def open_ticket(
    session: AsyncSession,
    *,
    ticket_type: TicketTypeConfig,
    customer: Customer,
    subject: str,
    actor: Actor,
    now: datetime,
) -> Ticket:
    ticket = Ticket(
        type=ticket_type.name,
        status=ticket_type.default_status,
        subject=subject,
        customer_id=customer.id,
        customer=customer,
        created_at=now,
        updated_at=now,
    )
    session.add(ticket)
    await session.flush()
    record(session, ticket, actor, "created", now, type=ticket.type, status=ticket.status)
    return ticket


def set_status(
    ticket: Ticket,
    status: str,
    *,
    ticket_type: TicketTypeConfig,
    actor: Actor,
    now: datetime,
    session: AsyncSession,
) -> list[Event]:
    if status not in ticket_type.statuses:
        raise InvalidChange(
            f"{status!r} is not a status of type {ticket_type.name!r} ({ticket_type.statuses})"
        )
    old = ticket.status
    if status == old:
        return []
    ticket.status = status
    ticket.updated_at = now
    ticket.closed_at = now if status in ticket_type.closed else None
    record(session, ticket, actor, "status_changed", now, old=old, new=status)
    return [StatusChanged(ticket_id=ticket.id, old=old, new=status)]


def assign(
    ticket: Ticket, agent: Agent | None, *, actor: Actor, now: datetime, session: AsyncSession
) -> list[Event]:
    old = ticket.assignee
    if (old.id if old else None) == (agent.id if agent else None):
        return []
    ticket.assignee = agent
    ticket.assignee_id = agent.id if agent else None
    ticket.updated_at = now
    record(
        session,
        ticket,
        actor,
        "assigned",
        now,
        old=old.email if old else None,
        new=agent.email if agent else None,
    )
    return [
        Assigned(
            ticket_id=ticket.id,
            old_agent_id=old.id if old else None,
            new_agent_id=agent.id if agent else None,
        )
    ]
