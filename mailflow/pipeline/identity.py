"""Who sent the message: a known agent, or a customer."""

from __future__ import annotations

from sqlalchemy import select

from mailflow.db.models import Agent
from mailflow.mail.addresses import Mailbox, parse_mailbox
from mailflow.pipeline.intake import Intake, Quarantine, Services


async def sender(services: Services, intake: Intake) -> None:
    """From, else the envelope sender; a message with neither cannot be answered."""
    mailbox = intake.parsed.sender or parse_mailbox(intake.envelope.mail_from)
    if mailbox is None:
        raise Quarantine("no sender address in From or the envelope")
    if intake.parsed.sender is None:
        intake.decide("sender", f"no usable From; using envelope sender {mailbox.address}")
    intake.sender = Mailbox(mailbox.name, mailbox.address)


async def identify(services: Services, intake: Intake) -> None:
    assert intake.sender is not None
    agent = await services.session.scalar(
        select(Agent).where(Agent.email == intake.sender.address, Agent.active)
    )
    intake.agent = agent
    who = f"agent {agent.email}" if agent else f"customer {intake.sender.address}"
    intake.decide("identity", who)
