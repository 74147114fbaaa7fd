"""What happened to a ticket: the values that rules trigger on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True, slots=True)
class Event:
    trigger: ClassVar[str]
    ticket_id: int


@dataclass(frozen=True, slots=True)
class TicketCreated(Event):
    trigger: ClassVar[str] = "ticket_created"
    message_id: int
    # The usergroups the customer is in when none could be chosen: the notice names them.
    usergroups_to_choose: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CustomerReplied(Event):
    trigger: ClassVar[str] = "customer_replied"
    message_id: int


@dataclass(frozen=True, slots=True)
class UnverifiedMessage(Event):
    """Mail on the ticket from someone who is not who they claim, or takes no part in it:
    kept as a note, it fires this and no other trigger."""

    trigger: ClassVar[str] = "unverified_message"
    message_id: int
    reason: str  # why the sender is not taken for who they claim


@dataclass(frozen=True, slots=True)
class AgentReplied(Event):
    trigger: ClassVar[str] = "agent_replied"
    message_id: int
    agent_id: int


@dataclass(frozen=True, slots=True)
class StatusChanged(Event):
    trigger: ClassVar[str] = "status_changed"
    old: str
    new: str


@dataclass(frozen=True, slots=True)
class Assigned(Event):
    """The assignee or the group changed (or both); unchanged sides have old == new."""

    trigger: ClassVar[str] = "assigned"
    old_agent_id: int | None
    new_agent_id: int | None
    old_group_id: int | None = None
    new_group_id: int | None = None


@dataclass(frozen=True, slots=True)
class NoteAdded(Event):
    trigger: ClassVar[str] = "note_added"
    message_id: int
    agent_id: int


@dataclass(frozen=True, slots=True)
class TypeChanged(Event):
    trigger: ClassVar[str] = "type_changed"
    old: str
    new: str


@dataclass(frozen=True, slots=True)
class UsergroupChanged(Event):
    trigger: ClassVar[str] = "usergroup_changed"
    old_usergroup_id: int | None
    new_usergroup_id: int | None


@dataclass(frozen=True, slots=True)
class ProjectChanged(Event):
    trigger: ClassVar[str] = "project_changed"
    old: str | None
    new: str | None


@dataclass(frozen=True, slots=True)
class DeliveryFailed(Event):
    trigger: ClassVar[str] = "delivery_failed"
    outbox_id: int
    diagnostic: str


@dataclass(frozen=True, slots=True)
class ApprovalDecided(Event):
    trigger: ClassVar[str] = "approval_decided"
    approval_id: int
    decision: str  # approved, rejected or expired


@dataclass(frozen=True, slots=True)
class ActivityDue(Event):
    trigger: ClassVar[str] = "activity_due"
    activity_id: int


@dataclass(frozen=True, slots=True)
class TimeReached(Event):
    """A time-based rule's moment came (its own trigger names which: status_for, due…)."""

    trigger: ClassVar[str] = "time"
    rule: str


TRIGGERS: dict[str, type[Event]] = {
    cls.trigger: cls
    for cls in (
        TicketCreated,
        CustomerReplied,
        UnverifiedMessage,
        AgentReplied,
        NoteAdded,
        StatusChanged,
        Assigned,
        TypeChanged,
        UsergroupChanged,
        ProjectChanged,
        DeliveryFailed,
        ApprovalDecided,
        ActivityDue,
    )
}
