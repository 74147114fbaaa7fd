"""The customers' side: usergroups, their members and supervisors, their custom fields."""

from __future__ import annotations

import re
from datetime import datetime
from urllib.parse import urlparse

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mailflow.config import FieldConfig
from mailflow.db.models import Customer, Ticket
from mailflow.db.people import Usergroup, UsergroupMember
from mailflow.tickets import ops

_PHONE = re.compile(r"^\+?[0-9 ()./-]{5,30}$")


async def usergroup_named(session: AsyncSession, name: str) -> Usergroup | None:
    return await session.scalar(
        select(Usergroup).where(func.lower(Usergroup.name) == name.strip().lower())
    )


async def memberships(
    session: AsyncSession, customer_id: int
) -> list[tuple[Usergroup, UsergroupMember]]:
    rows = await session.execute(
        select(Usergroup, UsergroupMember)
        .join(UsergroupMember, UsergroupMember.usergroup_id == Usergroup.id)
        .where(UsergroupMember.customer_id == customer_id)
        .order_by(Usergroup.name)
    )
    return [(usergroup, member) for usergroup, member in rows]


async def usergroup_for_ticket(
    session: AsyncSession, customer: Customer, address_tag: str | None
) -> Usergroup | tuple[str, ...] | None:
    """The customer's one usergroup; among several, the one the address tag names
    (support+marketing@…), else their default; else the names of those they are in, for
    a person to choose from; None for a customer in no usergroup."""
    found = await memberships(session, customer.id)
    if len(found) == 1:
        return found[0][0]
    tag = (address_tag or "").lower()
    for usergroup, _member in found:
        if usergroup.name == tag:
            return usergroup
    defaults = [usergroup for usergroup, member in found if member.is_default]
    if defaults:
        return defaults[0]
    return tuple(usergroup.name for usergroup, _member in found) or None


def how_to_choose(customer: Customer) -> str:
    """What a person does about a ticket whose usergroup could not be chosen."""
    return (
        f"an agent sets it with #usergroup NAME; for later tickets, make one the default "
        f"(mailflow usergroup add-member NAME {customer.email} --default), or the customer "
        f"writes to the support+NAME@ address"
    )


async def settle_usergroup(
    session: AsyncSession,
    ticket: Ticket,
    customer: Customer,
    address_tag: str | None,
    now: datetime,
) -> tuple[str, ...]:
    """Give a new ticket its customer's usergroup. When several are possible and none is
    chosen, the ticket gets none, its history says so; returns their names, for the
    agents' notice."""
    found = await usergroup_for_ticket(session, customer, address_tag)
    if isinstance(found, Usergroup):
        ticket.usergroup, ticket.usergroup_id = found, found.id
        return ()
    if found:
        ops.record(
            session,
            ticket,
            ops.Actor.system("usergroups"),
            "usergroup_undecided",
            now,
            usergroups=list(found),
            how=how_to_choose(customer),
        )
    return found or ()


async def is_supervisor(session: AsyncSession, customer_id: int, usergroup_id: int) -> bool:
    return bool(
        await session.scalar(
            select(UsergroupMember.id).where(
                UsergroupMember.customer_id == customer_id,
                UsergroupMember.usergroup_id == usergroup_id,
                UsergroupMember.supervisor,
            )
        )
    )


async def supervisors(session: AsyncSession, usergroup_id: int) -> list[Customer]:
    return list(
        (
            await session.scalars(
                select(Customer)
                .join(UsergroupMember, UsergroupMember.customer_id == Customer.id)
                .where(UsergroupMember.usergroup_id == usergroup_id, UsergroupMember.supervisor)
                .order_by(Customer.email)
            )
        ).all()
    )


def checked_value(field: FieldConfig, value: str) -> str:
    """The value as it will be stored, or ValueError saying what is wrong with it."""
    value = value.strip()
    if field.type == "phone" and not _PHONE.match(value):
        raise ValueError(f"{field.name}: {value!r} is not a phone number such as +44 20 7946 0000")
    if field.type == "url":
        parsed = urlparse(value)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"{field.name}: {value!r} is not an http(s) URL")
    if field.type == "choice" and value not in field.choices:
        raise ValueError(f"{field.name}: {value!r} is not one of {', '.join(field.choices)}")
    if field.type in ("text", "address") and len(value) > 1000:
        raise ValueError(f"{field.name}: longer than 1000 characters")
    return value
