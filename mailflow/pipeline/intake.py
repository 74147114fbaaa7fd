"""The working record of one message on its way through the pipeline."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from mailflow.config import Config
from mailflow.db.models import Agent, InboundMessage, Ticket
from mailflow.ingest.envelope import Envelope
from mailflow.mail.addresses import Mailbox
from mailflow.mail.parse import ParsedMessage
from mailflow.outbox.mailer import Mailer
from mailflow.pipeline.addressbook import AddressBook, Route
from mailflow.tickets.events import Event


class Quarantine(Exception):
    """A message the pipeline must not act on; kept for a person with this reason."""


@dataclass(frozen=True, slots=True)
class Services:
    session: AsyncSession
    config: Config
    mailer: Mailer
    addresses: AddressBook


@dataclass(slots=True)
class Intake:
    inbound: InboundMessage
    parsed: ParsedMessage
    envelope: Envelope
    now: datetime
    sender: Mailbox | None = None
    route: Route | None = None
    agent: Agent | None = None
    ticket: Ticket | None = None
    events: list[Event] = field(default_factory=list)
    decisions: list[str] = field(default_factory=list)

    def decide(self, step: str, text: str) -> None:
        self.decisions.append(f"{step}: {text}")
