"""Find the ticket a message belongs to. References and signed reply addresses prove the
sender received our mail; a subject tag or a bare plus-address proves nothing, so it joins
a ticket only for someone claiming to take part in it (and then only as a note, unless the
sender proves the claim: see identity.verify)."""

from __future__ import annotations

from sqlalchemy import select

from mailflow.db.models import Participant, Ticket
from mailflow.pipeline.intake import Disposition, Intake, Joined, Services
from mailflow.tickets.messages import tickets_referenced
from mailflow.tickets.numbers import find_tag, number_from_tag
from mailflow.tokens import Role


async def find_ticket(services: Services, intake: Intake) -> Disposition:
    assert intake.route is not None
    session = services.session
    if intake.ticket is not None:  # named by the return path it was sent to
        intake.joined_by = Joined.RETURN_PATH
        intake.decide("thread", f"the return path names ticket {intake.ticket.id}")
        return Disposition.CONTINUE
    # The signed address first: it is bound to one ticket and to the person it was given
    # to, while References are whatever the sender writes (a supervisor must not steer
    # another usergroup's ticket by quoting its Message-ID).
    if intake.token is not None:
        ticket = await session.get(Ticket, intake.token.ticket_id)
        if ticket is not None and _kept_from(ticket, intake):
            intake.refused_ticket, intake.refused_because = ticket, "the ticket is private"
            intake.decide("thread", f"ticket {ticket.id} is private; opening one instead")
            return Disposition.CONTINUE
        if ticket is not None:
            intake.ticket, intake.joined_by = ticket, Joined.SIGNED
            intake.decide("thread", f"signed reply address of ticket {ticket.id}")
            return Disposition.CONTINUE
    referenced = await tickets_referenced(session, intake.parsed.thread_ids)
    if referenced:
        intake.ticket = await session.get(Ticket, referenced[0])
        intake.joined_by = Joined.REFERENCES
        intake.decide("thread", f"In-Reply-To/References name ticket {referenced[0]}")
        return Disposition.CONTINUE
    for source, number in (
        (Joined.PLUS_ADDRESS, number_from_tag(intake.route.tag)),
        (Joined.SUBJECT_TAG, find_tag(intake.parsed.subject)),
    ):
        if number is not None and await _join_unsigned(services, intake, source, number):
            return Disposition.CONTINUE
    intake.decide("thread", "no existing ticket; opening one")
    return Disposition.CONTINUE


def _kept_from(ticket: Ticket, intake: Intake) -> bool:
    """A supervisor's old notice answered after the ticket was made private: the answer
    must not join it (nor make the supervisor a participant who gets its mail)."""
    assert intake.sender is not None
    assert intake.token is not None
    return (
        intake.token.role is Role.SUPERVISOR
        and ticket.private
        and ticket.customer.email != intake.sender.address
    )


async def _join_unsigned(services: Services, intake: Intake, source: Joined, number: int) -> bool:
    assert intake.sender is not None
    ticket = await services.session.get(Ticket, number)
    if ticket is None:
        intake.decide("thread", f"{source} names ticket {number}, which does not exist")
        return False
    # Agents take part in every ticket: one that only claims an agent's address leaves
    # a note on it for the others to see.
    claimed = intake.agent is not None or intake.impersonation is not None
    if claimed or await is_participant(services, ticket, intake.sender.address):
        intake.ticket, intake.joined_by = ticket, source
        intake.decide("thread", f"{source} names ticket {number}")
        return True
    intake.refused_ticket = ticket
    intake.refused_because = f"{intake.sender.address} takes no part in ticket {number}"
    intake.decide(
        "thread",
        f"{source} names ticket {number}, but {intake.sender.address} takes no part in it",
    )
    return False


async def is_participant(services: Services, ticket: Ticket, address: str) -> bool:
    if ticket.customer.email == address or (ticket.assignee and ticket.assignee.email == address):
        return True
    found = await services.session.scalar(
        select(Participant.id).where(
            Participant.ticket_id == ticket.id, Participant.address == address
        )
    )
    return found is not None
