"""The working record of one message on its way through the pipeline."""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from mailflow.config import Config
from mailflow.db.models import Agent, Customer, InboundMessage, InboundState, Message, Ticket
from mailflow.db.record import Approval
from mailflow.ingest.envelope import Envelope
from mailflow.mail.addresses import Mailbox
from mailflow.mail.automatic import Verdict
from mailflow.mail.parse import ParsedMessage
from mailflow.outbox.mailer import Mailer
from mailflow.pipeline.addressbook import AddressBook, Route
from mailflow.tickets.events import Event
from mailflow.tokens import ReplyToken, Signer

# A checked command, ready to apply: what it changes returns the events it caused.
Apply = Callable[[], Awaitable[list[Event]]]


class Quarantine(Exception):
    """A message the pipeline must not act on; kept for a person with this reason."""


class Joined(enum.StrEnum):
    """How a message found its ticket: what that proves of its sender."""

    NONE = ""  # no ticket (yet)
    RETURN_PATH = "return path"  # only machines write there
    SIGNED = "signed reply address"  # bound to the ticket and the one it was given to
    REFERENCES = "references"  # the sender saw the ticket's mail
    PLUS_ADDRESS = "plus-address"  # anyone can type these two
    SUBJECT_TAG = "subject tag"


class Disposition(enum.Enum):
    CONTINUE = "continue"
    STOP = "stop"  # the message is done with: its state and reason say why


@dataclass(frozen=True, slots=True)
class Services:
    session: AsyncSession
    config: Config
    mailer: Mailer
    addresses: AddressBook
    signer: Signer


@dataclass(slots=True)
class Intake:
    inbound: InboundMessage
    parsed: ParsedMessage
    envelope: Envelope
    now: datetime
    sender: Mailbox | None = None
    route: Route | None = None
    automatic: Verdict | None = None
    token: ReplyToken | None = None
    agent: Agent | None = None
    # Why a From naming an agent was not allowed to act as one; recorded on the ticket.
    impersonation: str | None = None
    # Why the sender is not who they claim to be on the ticket (an agent's address without
    # proof, a signed address given to someone else, a participant's address with nothing
    # to show for it) or takes no part in it: their mail is only a note for the agents.
    unverified: str | None = None
    ticket: Ticket | None = None
    joined_by: Joined = Joined.NONE
    # The stored message; holding it keeps it in the session for the rules that follow.
    message: Message | None = None
    # Set on the inbound row when it is kept, in the same UPDATE as the decisions.
    dedupe_key: str | None = None
    # A ticket the message named but was not allowed to join, and why not.
    refused_ticket: Ticket | None = None
    refused_because: str = ""
    # A customer supervising the ticket's usergroup, writing on their signed address.
    supervisor: Customer | None = None
    # An approval whose approver answers on its signed address, and why their answer
    # decided nothing (a question, or too late), for whoever asked.
    approval: Approval | None = None
    undecided: str | None = None
    # Checked commands from the top of an agent's or supervisor's mail, and their names.
    commands: list[Apply] = field(default_factory=list)
    command_names: set[str] = field(default_factory=set)
    # The text after the commands: what an agent's public reply says to the customer.
    body: str | None = None
    # Addresses added with #cc, copied on the agent's answer.
    cc: list[str] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    # Events for the rules once the sender's commands are applied (a note shared with the
    # agents the same message assigns).
    after_commands: list[Event] = field(default_factory=list)
    decisions: list[str] = field(default_factory=list)

    def decide(self, step: str, text: str) -> None:
        self.decisions.append(f"{step}: {text}")

    def finish(self, state: InboundState, reason: str) -> Disposition:
        self.inbound.state = state
        self.inbound.reason = reason
        return Disposition.STOP
