"""The rest of a ticket's record: approvals, its resolution, activities and time spent."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from mailflow.db.base import Base, enum_column


class ApprovalState(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"


class Approval(Base):
    """An approver's yes or no on a ticket, given through a link or a reply."""

    __tablename__ = "approvals"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    approver: Mapped[str] = mapped_column(String(320))
    reason: Mapped[str] = mapped_column(Text, default="")
    # What the requester wrote below #approval: for the approver's eyes, with the reason.
    details: Mapped[str] = mapped_column(Text, default="", server_default="")
    requested_by: Mapped[str] = mapped_column(String(320))
    requested_by_agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    # Only the hash of the link's token is kept: the database cannot decide anything.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)
    state: Mapped[ApprovalState] = mapped_column(enum_column(ApprovalState), index=True)
    decided_at: Mapped[datetime | None]
    decided_via: Mapped[str] = mapped_column(String(16), default="")
    decided_from: Mapped[str] = mapped_column(String(100), default="")  # the client's address
    decided_agent: Mapped[str] = mapped_column(String(500), default="")  # its user agent
    comment: Mapped[str] = mapped_column(Text, default="")
    # Until then the approver may change the decision through the same link.
    changeable_until: Mapped[datetime | None]


class ApprovalNonce(Base):
    """Issued with each view of the decision page; a POST spends one, and not too soon."""

    __tablename__ = "approval_nonces"

    id: Mapped[int] = mapped_column(primary_key=True)
    approval_id: Mapped[int] = mapped_column(ForeignKey("approvals.id"), index=True)
    nonce_hash: Mapped[str] = mapped_column(String(64), unique=True)
    issued_at: Mapped[datetime]
    used: Mapped[bool] = mapped_column(Boolean, default=False)


class Resolution(Base):
    """How a ticket was solved: one per ticket, edited in place, optionally published."""

    __tablename__ = "resolutions"

    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    author: Mapped[str] = mapped_column(String(320))
    updated_at: Mapped[datetime]
    published: Mapped[bool] = mapped_column(Boolean, default=False)
    # The help centre's address of the article: /kb/<slug>.
    slug: Mapped[str | None] = mapped_column(String(200), unique=True)
    title: Mapped[str] = mapped_column(Text, default="")


class ActivityKind(enum.StrEnum):
    TASK = "task"
    CALL = "call"
    EVENT = "event"


class Activity(Base):
    __tablename__ = "activities"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    kind: Mapped[ActivityKind] = mapped_column(enum_column(ActivityKind))
    title: Mapped[str] = mapped_column(String(500))
    details: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime]
    # Whoever created it owns it, until someone hands it on explicitly.
    owner_id: Mapped[int] = mapped_column(ForeignKey("agents.id"))
    remind_at: Mapped[datetime | None] = mapped_column(index=True)
    reminded_at: Mapped[datetime | None]
    done_at: Mapped[datetime | None]
    created_at: Mapped[datetime]


class TimeEntry(Base):
    __tablename__ = "time_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id"), index=True)
    minutes: Mapped[int] = mapped_column(Integer)
    billable: Mapped[bool] = mapped_column(Boolean, default=False)
    note: Mapped[str] = mapped_column(Text, default="")
    spent_at: Mapped[datetime] = mapped_column(index=True)
