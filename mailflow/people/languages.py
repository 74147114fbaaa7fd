"""A person's language and time zone: set by a person, or learnt from a customer's first
mail, and chosen for each reader of a mail or a page."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mailflow.config import PERSONAL_SETTINGS, Config, TicketTypeConfig, language_code, zone_name
from mailflow.db.models import Customer, Ticket
from mailflow.db.people import Usergroup, UsergroupMember
from mailflow.i18n.choice import STAFF, Speech, first_served, served
from mailflow.i18n.detect import detect
from mailflow.people.usergroups import usergroup_for_ticket
from mailflow.tickets import ops
from mailflow.tokens import Role

LEARNT_BY = ops.Actor.system("languages")


def speech_of(
    config: Config,
    available: Collection[str],
    customer: Customer | None,
    usergroup: Usergroup | None,
    ticket_type: TicketTypeConfig | None,
) -> Speech:
    """Their own language, their usergroup's, the type's, the language of their first mail,
    the instance's; their own time zone, their usergroup's, the business hours' zone."""
    language = first_served(
        (
            customer.language if customer else None,
            usergroup.language if usergroup else None,
            ticket_type.language if ticket_type else None,
            customer.detected_language if customer else None,
            config.instance.language,
        ),
        available,
    )
    zone = (customer.timezone if customer else None) or (usergroup.timezone if usergroup else None)
    return Speech(language, zone or config.business_hours.timezone)


async def reader_speech(
    session: AsyncSession,
    config: Config,
    available: Collection[str],
    ticket: Ticket,
    role: Role,
    address: str,
) -> Speech:
    """How a mail about this ticket speaks to its reader; agents read English."""
    if role is Role.AGENT:
        return STAFF
    return await person_speech(session, config, available, address, ticket)


async def person_speech(
    session: AsyncSession,
    config: Config,
    available: Collection[str],
    address: str,
    ticket: Ticket | None = None,
) -> Speech:
    """The speech of whoever has this address: a customer (on this ticket, with its
    usergroup), a supervisor or an approver known as a customer, or someone unknown."""
    ticket_type = config.ticket_type(ticket.type) if ticket else None
    if ticket is not None and ticket.customer.email == address:
        return speech_of(config, available, ticket.customer, ticket.usergroup, ticket_type)
    customer = await session.scalar(select(Customer).where(Customer.email == address))
    usergroup = None
    if customer is not None:
        usergroup = await _their_usergroup(session, customer, ticket)
    return speech_of(config, available, customer, usergroup, ticket_type)


async def _their_usergroup(
    session: AsyncSession, customer: Customer, ticket: Ticket | None
) -> Usergroup | None:
    """The ticket's usergroup when they belong to it (a supervisor), else their own one."""
    if ticket is not None and ticket.usergroup is not None:
        member = await session.scalar(
            select(UsergroupMember.id).where(
                UsergroupMember.customer_id == customer.id,
                UsergroupMember.usergroup_id == ticket.usergroup.id,
            )
        )
        if member is not None:
            return ticket.usergroup
    found = await usergroup_for_ticket(session, customer, None)
    return found if isinstance(found, Usergroup) else None


async def learn_language(
    session: AsyncSession, customer: Customer, ticket: Ticket, text: str, now: datetime
) -> None:
    """The language of a customer's first confidently recognised mail, kept for their later
    mail; the ticket's history says what was recognised. Nothing when a person set one."""
    if customer.language or customer.detected_language:
        return
    found = await detect(text)
    if found is None:
        return
    customer.detected_language = found.language
    ops.record(
        session,
        ticket,
        LEARNT_BY,
        "language_detected",
        now,
        language=found.language,
        confidence=found.confidence,
    )


def checked_settings(
    assignments: Iterable[str], available: Collection[str]
) -> dict[str, str | None]:
    """language=fr, timezone=Europe/Warsaw (nothing after = clears one), each checked; a
    language needs a catalog. ValueError says what is wrong."""
    settings: dict[str, str | None] = {}
    for assignment in assignments:
        key, equals, value = assignment.partition("=")
        if not equals or key not in PERSONAL_SETTINGS:
            raise ValueError(f"{assignment!r} is not language=CODE or timezone=ZONE")
        value = value.strip()
        if not value:
            settings[key] = None
        elif key == "timezone":
            settings[key] = zone_name(value)
        else:
            settings[key] = _available(language_code(value), available)
    return settings


def _available(language: str, available: Collection[str]) -> str:
    if served(language, available) is None:
        raise ValueError(
            f"no catalog for {language!r} (there are {', '.join(sorted(available))}); "
            f"add locale/{language}/LC_MESSAGES/mailflow.po to the templates"
        )
    return language


async def set_language(
    session: AsyncSession,
    person: Customer | Usergroup,
    actor: ops.Actor,
    now: datetime,
    **settings: str | None,
) -> dict[str, str | None]:
    """Set `language` and/or `timezone` (None clears) on a customer or a usergroup; each of
    their open tickets records the change, since its later mail speaks differently."""
    changed = {key: value for key, value in settings.items() if getattr(person, key) != value}
    for key, value in changed.items():
        setattr(person, key, value)
    if not changed:
        return changed
    who = {"customer": person.email} if isinstance(person, Customer) else {"usergroup": person.name}
    for ticket in await _open_tickets(session, person):
        ops.record(session, ticket, actor, "language_set", now, **who, **changed)
    return changed


async def _open_tickets(session: AsyncSession, person: Customer | Usergroup) -> list[Ticket]:
    whose = (
        Ticket.customer_id == person.id
        if isinstance(person, Customer)
        else Ticket.usergroup_id == person.id
    )
    found = await session.scalars(
        select(Ticket).where(whose, Ticket.closed_at.is_(None)).order_by(Ticket.id)
    )
    return list(found.all())
