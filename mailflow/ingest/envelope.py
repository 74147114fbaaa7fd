"""What arrived with a message, and what became of it."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime


class Channel(enum.StrEnum):
    SMTP = "smtp"
    LMTP = "lmtp"
    IMAP = "imap"
    PIPE = "pipe"
    INJECT = "inject"


@dataclass(frozen=True, slots=True)
class Envelope:
    channel: Channel
    mail_from: str
    rcpt_tos: tuple[str, ...]
    received_at: datetime


class Fate(enum.Enum):
    ACCEPTED = "accepted"
    QUARANTINED = "quarantined"
    DEFERRED = "deferred"


@dataclass(frozen=True, slots=True)
class Outcome:
    fate: Fate
    inbound_id: int | None = None
    ticket_id: int | None = None
    reason: str = ""

    @property
    def owned(self) -> bool:
        """True once the message is committed: the sender may forget it."""
        return self.fate is not Fate.DEFERRED
