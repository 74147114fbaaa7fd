"""Find the ticket a message belongs to: its references, the plus-address, the subject tag."""

from __future__ import annotations

from mailflow.db.models import Ticket
from mailflow.pipeline.intake import Intake, Services
from mailflow.tickets.messages import tickets_referenced
from mailflow.tickets.numbers import find_tag, number_from_tag


async def find_ticket(services: Services, intake: Intake) -> None:
    assert intake.route is not None
    session = services.session
    referenced = await tickets_referenced(session, intake.parsed.thread_ids)
    if referenced:
        intake.ticket = await session.get(Ticket, referenced[0])
        intake.decide("thread", f"In-Reply-To/References name ticket {referenced[0]}")
        return
    for source, number in (
        ("plus-address", number_from_tag(intake.route.tag)),
        ("subject tag", find_tag(intake.parsed.subject)),
    ):
        if number is None:
            continue
        ticket = await session.get(Ticket, number)
        if ticket is not None:
            intake.ticket = ticket
            intake.decide("thread", f"{source} names ticket {number}")
            return
        intake.decide("thread", f"{source} names ticket {number}, which does not exist")
    intake.decide("thread", "no existing ticket; opening one")
