"""SQLAlchemy models: tickets and their conversation, people, inbound mail, the outbox."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mailflow.db import record as _record  # noqa: F401  (its tables are part of the schema)
from mailflow.db.base import (
    LANGUAGE_LENGTH,
    NAME_LENGTH,
    ZONE_LENGTH,
    Base,
    UTCDateTime,
    enum_column,
)
from mailflow.db.people import AgentRole, Group, Team, Usergroup

__all__ = ["NAME_LENGTH", "Base", "UTCDateTime"]


class ActorKind(enum.StrEnum):
    CUSTOMER = "customer"
    SUPERVISOR = "supervisor"  # a customer supervising the ticket's usergroup
    APPROVER = "approver"  # whoever was asked to decide an approval
    UNVERIFIED = "unverified"  # a sender who is not who they claim, or takes no part
    AGENT = "agent"
    AUTOMATION = "automation"
    SYSTEM = "system"
    ADMINISTRATOR = "administrator"  # a person on the command line, by their Unix name


class Direction(enum.StrEnum):
    IN = "in"
    OUT = "out"


class InboundState(enum.StrEnum):
    PROCESSED = "processed"
    QUARANTINED = "quarantined"
    STORED_ONLY = "stored_only"
    DISCARDED = "discarded"


class OutboxState(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH), default="")
    created_at: Mapped[datetime]
    # Set by a person (`mailflow customer set`); outranks every other way of choosing.
    language: Mapped[str | None] = mapped_column(String(LANGUAGE_LENGTH))
    # What their first confidently recognised mail was written in; kept for later mail.
    detected_language: Mapped[str | None] = mapped_column(String(LANGUAGE_LENGTH))
    # For the dates in their mail; else their usergroup's, else [business_hours] timezone.
    timezone: Mapped[str | None] = mapped_column(String(ZONE_LENGTH))


class Agent(Base):
    __tablename__ = "agents"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    notify: Mapped[bool] = mapped_column(Boolean, default=True)
    # Ticket types whose unassigned tickets this agent hears about; empty means all.
    types: Mapped[list[str]] = mapped_column(default=list)
    created_at: Mapped[datetime]
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id"), index=True)
    role: Mapped[AgentRole] = mapped_column(enum_column(AgentRole), default=AgentRole.OPERATOR)

    team: Mapped[Team] = relationship(lazy="joined", innerjoin=True)

    def serves(self, type_name: str) -> bool:
        return not self.types or type_name in self.types


class Ticket(Base):
    __tablename__ = "tickets"
    __table_args__ = (
        Index("ix_tickets_status", "status"),
        Index("ix_tickets_assignee_status", "assignee_id", "status"),
        Index("ix_tickets_type_status", "type", "status"),
        # Every view lists the newest first: its first page walks this index.
        Index("ix_tickets_updated", "updated_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    type: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(Text, default="")
    priority: Mapped[str] = mapped_column(String(32), default="normal")
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    group_id: Mapped[int | None] = mapped_column(ForeignKey("groups.id"), index=True)
    usergroup_id: Mapped[int | None] = mapped_column(ForeignKey("usergroups.id"), index=True)
    # Private: kept from the usergroup's supervisors and other members.
    private: Mapped[bool] = mapped_column(Boolean, default=False)
    project: Mapped[str | None] = mapped_column(String(100), index=True)
    due_at: Mapped[datetime | None] = mapped_column(index=True)
    # Custom fields declared in the configuration ([[ticket_fields]]).
    fields: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]
    # When the ticket entered its status, and the last word of each side: the clocks that
    # time-based rules read.
    status_since: Mapped[datetime] = mapped_column(index=True)
    last_customer_at: Mapped[datetime | None]
    last_agent_at: Mapped[datetime | None]

    customer: Mapped[Customer] = relationship(lazy="joined", innerjoin=True)
    assignee: Mapped[Agent | None] = relationship(lazy="joined")
    group: Mapped[Group | None] = relationship(lazy="joined")
    usergroup: Mapped[Usergroup | None] = relationship(lazy="joined")

    @property
    def number(self) -> int:
        return self.id


_KEPT = "state IN ('processed', 'stored_only')"


class InboundMessage(Base):
    """Every message as it arrived, stored before anything else happens to it."""

    __tablename__ = "inbound_messages"
    __table_args__ = (
        Index("ix_inbound_state", "state"),
        # One kept copy per message: a concurrent second delivery fails here and is retried,
        # then found to be a duplicate.
        Index(
            "uq_inbound_dedupe_key",
            "dedupe_key",
            unique=True,
            sqlite_where=text(_KEPT),
            postgresql_where=text(_KEPT),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    received_at: Mapped[datetime]
    channel: Mapped[str] = mapped_column(String(16))
    mail_from: Mapped[str] = mapped_column(String(320), default="")
    rcpt_tos: Mapped[list[str]] = mapped_column(default=list)
    message_id: Mapped[str | None] = mapped_column(String(998), index=True)
    size: Mapped[int] = mapped_column(Integer)
    state: Mapped[InboundState] = mapped_column(enum_column(InboundState))
    reason: Mapped[str] = mapped_column(Text, default="")
    error: Mapped[str] = mapped_column(Text, default="")
    # How the pipeline decided: one line per step, for `inbound show` and `ticket show`.
    decisions: Mapped[list[str]] = mapped_column(default=list)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    # "mid:<Message-ID>", or "sha:<hash of sender, date, subject and text>" without one.
    dedupe_key: Mapped[str | None] = mapped_column(String(1000))
    # Set when a machine sent it (mailflow.mail.automatic.AutoKind).
    automatic: Mapped[str | None] = mapped_column(String(24))
    # Last in the row, so that SQLite can write a large message into it a megabyte at a time
    # (db/large_values.py). SQLite adds a new column after it: move it last again then, as
    # migration 0002_faults does.
    raw: Mapped[bytes] = mapped_column(LargeBinary)


class Message(Base):
    """One message of a ticket's conversation."""

    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    inbound_id: Mapped[int | None] = mapped_column(ForeignKey("inbound_messages.id"))
    direction: Mapped[Direction] = mapped_column(enum_column(Direction))
    author_kind: Mapped[ActorKind] = mapped_column(enum_column(ActorKind))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    public: Mapped[bool] = mapped_column(Boolean, default=True)
    # Set when a machine sent it: nothing automatic is ever sent back to its sender.
    automatic: Mapped[str | None] = mapped_column(String(24))
    from_address: Mapped[str] = mapped_column(String(320))
    from_name: Mapped[str] = mapped_column(String(NAME_LENGTH), default="")
    subject: Mapped[str] = mapped_column(Text, default="")
    message_id: Mapped[str | None] = mapped_column(String(998))
    # The new text only; `full_text` keeps quotes and signature as received.
    text: Mapped[str] = mapped_column(Text, default="")
    full_text: Mapped[str] = mapped_column(Text, default="")
    html: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]

    attachments: Mapped[list[Attachment]] = relationship(lazy="selectin", order_by="Attachment.id")


class Blob(Base):
    """Attachment content, stored once per SHA-256."""

    __tablename__ = "blobs"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(Integer)
    # Empty while `size` is not: the content is a file in [database] attachment_dir, named
    # by the digest (tickets/attachment_files.py).
    data: Mapped[bytes] = mapped_column(LargeBinary)


class Attachment(Base):
    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(ForeignKey("blobs.sha256"))
    inline: Mapped[bool] = mapped_column(Boolean, default=False)
    content_id: Mapped[str | None] = mapped_column(String(255))


class MessageRef(Base):
    """Message-IDs that belong to a ticket, ours and theirs, for threading replies."""

    __tablename__ = "message_refs"
    __table_args__ = (UniqueConstraint("message_id", "ticket_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[str] = mapped_column(String(998), index=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    created_at: Mapped[datetime]


class ParticipantRole(enum.StrEnum):
    CUSTOMER = "customer"
    CC = "cc"
    AGENT = "agent"


class Participant(Base):
    """Who takes part in a ticket: only they may join it by subject tag or bare plus-address."""

    __tablename__ = "participants"
    __table_args__ = (UniqueConstraint("ticket_id", "address"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    address: Mapped[str] = mapped_column(String(320))
    role: Mapped[ParticipantRole] = mapped_column(enum_column(ParticipantRole))
    created_at: Mapped[datetime]


class AutomaticMail(Base):
    """Automatic mail sent, for the per-address caps and the per-ticket ceiling that bound
    mail loops."""

    __tablename__ = "automatic_mail"
    __table_args__ = (
        Index("ix_automatic_mail_address_sent", "address", "sent_at"),
        Index("ix_automatic_mail_ticket_sent", "ticket_id", "sent_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    address: Mapped[str] = mapped_column(String(320))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    sent_at: Mapped[datetime]


class Suppression(Base):
    """An address no automatic mail goes to: it complained of our mail, or an administrator
    said so. Mail an agent writes still goes."""

    __tablename__ = "suppressions"

    id: Mapped[int] = mapped_column(primary_key=True)
    address: Mapped[str] = mapped_column(String(320), unique=True)
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]


class ImapFolder(Base):
    """Where reading an IMAP folder got to: committed with each message it took."""

    __tablename__ = "imap_folders"
    __table_args__ = (UniqueConstraint("account", "folder"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account: Mapped[str] = mapped_column(String(100))
    folder: Mapped[str] = mapped_column(String(500))
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger, default=0)
    # A message that could not be fetched, and how often: given up on after a few tries.
    failing_uid: Mapped[int | None] = mapped_column(BigInteger)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime]


class RuleFiring(Base):
    """A time-based rule fired for a ticket in one episode (e.g. one stay in a status):
    it fires once per episode, across restarts and several daemons."""

    __tablename__ = "rule_firings"
    __table_args__ = (UniqueConstraint("rule", "ticket_id", "episode_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    rule: Mapped[str] = mapped_column(String(200))
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    # When the episode began: the status change, the last message, the due date.
    episode_at: Mapped[datetime]
    fired_at: Mapped[datetime]


class History(Base):
    __tablename__ = "history"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    at: Mapped[datetime]
    actor_kind: Mapped[ActorKind] = mapped_column(enum_column(ActorKind))
    actor: Mapped[str] = mapped_column(String(320))
    action: Mapped[str] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)


class OutboxMessage(Base):
    """A mail to send, written in the transaction of the change that caused it."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    created_at: Mapped[datetime]
    purpose: Mapped[str] = mapped_column(String(64))
    mail_from: Mapped[str] = mapped_column(String(320))
    rcpt_tos: Mapped[list[str]] = mapped_column()
    message_id: Mapped[str] = mapped_column(String(998), index=True)
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    state: Mapped[OutboxState] = mapped_column(enum_column(OutboxState))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    locked_until: Mapped[datetime | None]
    last_error: Mapped[str] = mapped_column(Text, default="")
    sent_at: Mapped[datetime | None]
