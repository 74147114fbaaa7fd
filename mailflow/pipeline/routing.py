"""Recipient address → ticket type. Several of ours: the first recipient in envelope order wins."""

from __future__ import annotations

from mailflow.pipeline.intake import Disposition, Intake, Quarantine, Services


async def route(services: Services, intake: Intake) -> Disposition:
    candidates = list(intake.envelope.rcpt_tos) or [
        m.address for m in (*intake.parsed.to, *intake.parsed.cc)
    ]
    found = services.addresses.first(candidates)
    if found is None:
        raise Quarantine(f"none of the recipients {candidates} is a ticket address")
    intake.route = found
    intake.decide("route", f"{found.address} → type {found.ticket_type.name}")
    return Disposition.CONTINUE
