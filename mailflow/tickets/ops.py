"""Domain operations on tickets. Each writes History and returns the Events it caused."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case
from sqlalchemy.ext.asyncio import AsyncSession

from mailflow.config import Config, TicketTypeConfig
from mailflow.db.models import NAME_LENGTH, ActorKind, Agent, Customer, History, Ticket
from mailflow.db.people import Group, Usergroup
from mailflow.db.upsert import upsert_returning
from mailflow.mail.addresses import Mailbox
from mailflow.tickets.events import (
    Assigned,
    Event,
    StatusChanged,
    TypeChanged,
    UsergroupChanged,
)

PRIORITIES = ("low", "normal", "high", "urgent")


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
    def supervisor(cls, supervisor: Customer) -> Actor:
        return cls(ActorKind.SUPERVISOR, supervisor.email)

    @classmethod
    def approver(cls, address: str) -> Actor:
        return cls(ActorKind.APPROVER, address)

    @classmethod
    def unverified(cls, address: str) -> Actor:
        """Someone whose mail claims an address it cannot prove, or who takes no part."""
        return cls(ActorKind.UNVERIFIED, address)

    @classmethod
    def agent(cls, agent: Agent) -> Actor:
        return cls(ActorKind.AGENT, agent.email, agent.id)

    @classmethod
    def rule(cls, name: str) -> Actor:
        return cls(ActorKind.AUTOMATION, f"rule: {name}")

    @classmethod
    def system(cls, what: str = "mailflow") -> Actor:
        return cls(ActorKind.SYSTEM, what)

    @classmethod
    def administrator(cls, user: str) -> Actor:
        return cls(ActorKind.ADMINISTRATOR, f"{user} (cli)")


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


def is_closed(config: Config, ticket: Ticket) -> bool:
    return ticket.status in config.ticket_type(ticket.type).closed


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
        status_since=now,
        last_customer_at=now,
        fields={},
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
    previous: str | None = None,
) -> list[Event]:
    """`previous`: the status before a change of type, which blanks the ticket's status."""
    if status not in ticket_type.statuses:
        raise InvalidChange(
            f"{status!r} is not a status of type {ticket_type.name!r} ({ticket_type.statuses})"
        )
    if status == ticket.status:
        return []
    old = ticket.status if previous is None else previous
    ticket.status = status
    ticket.updated_at = ticket.status_since = now
    ticket.closed_at = now if status in ticket_type.closed else None
    record(session, ticket, actor, "status_changed", now, old=old, new=status)
    return [StatusChanged(ticket_id=ticket.id, old=old, new=status)]


def assign(
    ticket: Ticket, agent: Agent | None, *, actor: Actor, now: datetime, session: AsyncSession
) -> list[Event]:
    old = ticket.assignee
    if (old.id if old else None) == (agent.id if agent else None):
        return []
    ticket.assignee, ticket.assignee_id = agent, agent.id if agent else None
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
    group = ticket.group_id
    return [Assigned(ticket.id, old.id if old else None, ticket.assignee_id, group, group)]


def assign_group(
    ticket: Ticket, group: Group | None, *, actor: Actor, now: datetime, session: AsyncSession
) -> list[Event]:
    old = ticket.group
    if (old.id if old else None) == (group.id if group else None):
        return []
    ticket.group, ticket.group_id = group, group.id if group else None
    ticket.updated_at = now
    record(
        session,
        ticket,
        actor,
        "group_assigned",
        now,
        old=old.name if old else None,
        new=group.name if group else None,
    )
    agent = ticket.assignee_id
    return [Assigned(ticket.id, agent, agent, old.id if old else None, ticket.group_id)]


def change_type(
    ticket: Ticket,
    new_type: TicketTypeConfig,
    *,
    status: str | None,
    actor: Actor,
    now: datetime,
    session: AsyncSession,
) -> list[Event]:
    """Move the ticket to another type; its status becomes `status`, else what the new type's
    status_map makes of the old one, else the new type's default."""
    old = ticket.type
    if old == new_type.name:
        return []
    ticket.type = new_type.name
    record(
        session,
        ticket,
        actor,
        "type_changed",
        now,
        old=old,
        new=new_type.name,
        old_status=ticket.status,
    )
    events: list[Event] = [TypeChanged(ticket.id, old, new_type.name)]
    target = status or new_type.status_for(ticket.status)
    previous, ticket.status = ticket.status, ""  # the old status means nothing in the new type
    events += set_status(
        ticket,
        target,
        ticket_type=new_type,
        actor=actor,
        now=now,
        session=session,
        previous=previous,
    )
    return events


def set_usergroup(
    ticket: Ticket,
    usergroup: Usergroup | None,
    *,
    actor: Actor,
    now: datetime,
    session: AsyncSession,
) -> list[Event]:
    old = ticket.usergroup
    if (old.id if old else None) == (usergroup.id if usergroup else None):
        return []
    ticket.usergroup, ticket.usergroup_id = usergroup, usergroup.id if usergroup else None
    ticket.updated_at = now
    record(
        session,
        ticket,
        actor,
        "usergroup_changed",
        now,
        old=old.name if old else None,
        new=usergroup.name if usergroup else None,
    )
    return [UsergroupChanged(ticket.id, old.id if old else None, ticket.usergroup_id)]


def set_priority(
    ticket: Ticket, priority: str, *, actor: Actor, now: datetime, session: AsyncSession
) -> list[Event]:
    if priority not in PRIORITIES:
        raise InvalidChange(f"{priority!r} is not a priority ({', '.join(PRIORITIES)})")
    old = ticket.priority
    if old != priority:
        ticket.priority = priority
        record(session, ticket, actor, "priority_changed", now, old=old, new=priority)
    return []


def make_private(ticket: Ticket, *, actor: Actor, now: datetime, session: AsyncSession) -> None:
    if not ticket.private:
        ticket.private = True
        record(session, ticket, actor, "made_private", now)
