"""Who wrote a message, in words: the notices name the real author and their role, not
the ticket's customer."""

from __future__ import annotations

from dataclasses import dataclass

from mailflow.db.models import ActorKind, Message, Ticket

ROLES = {
    ActorKind.CUSTOMER: "customer",
    ActorKind.SUPERVISOR: "supervisor",
    ActorKind.APPROVER: "approver",
    ActorKind.UNVERIFIED: "unverified sender",
    ActorKind.AGENT: "agent",
    ActorKind.AUTOMATION: "rule",
    ActorKind.SYSTEM: "mailflow",
}


@dataclass(frozen=True, slots=True)
class Author:
    name: str
    address: str
    role: str  # customer, in Cc, supervisor, approver, unverified sender, agent, rule

    def __str__(self) -> str:
        return f"{self.name} <{self.address}>" if self.name else self.address


def author_of(message: Message, ticket: Ticket) -> Author:
    """Someone on the customer's side other than the ticket's customer is in Cc."""
    role = ROLES.get(message.author_kind, message.author_kind.value)
    if message.author_kind is ActorKind.CUSTOMER and message.from_address != ticket.customer.email:
        role = "in Cc"
    return Author(message.from_name, message.from_address, role)
