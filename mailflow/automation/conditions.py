"""Rule conditions: fields of a ticket and its message, compared by named operators."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from mailflow.calendar import in_business_hours, weekday
from mailflow.config import BusinessHoursConfig, duration_or_none
from mailflow.db.models import Agent, Message, Ticket
from mailflow.tickets.events import (
    ApprovalDecided,
    Assigned,
    Event,
    ProjectChanged,
    StatusChanged,
    TypeChanged,
)

CHANGES = (StatusChanged, TypeChanged, ProjectChanged)  # the events with an old and a new value


class ConditionProblem(Exception):
    """A condition that cannot be understood; the rule loader adds file and rule."""


@dataclass(slots=True)
class Facts:
    """What a condition may look at, for one event on one ticket."""

    ticket: Ticket
    event: Event
    message: Message | None = None
    agent: Agent | None = None
    # Whom no rule mail about this event reaches: the author of the mail that caused it,
    # when they are an agent (authenticated or not) or a sender we could not verify.
    spared: str | None = None
    now: datetime | None = None
    hours: BusinessHoursConfig = field(default_factory=BusinessHoursConfig)

    def since(self, moment: datetime | None) -> timedelta | None:
        """How long ago `moment` was, for the `older_than` and `newer_than` operators."""
        return None if moment is None or self.now is None else self.now - moment

    def business_hours(self, moment: datetime | None) -> bool | None:
        return None if moment is None else in_business_hours(self.hours, moment)


def _domain(address: str | None) -> str | None:
    return address.rpartition("@")[2] if address else None


CUSTOM_FIELD = "ticket.fields."  # ticket.fields.<name>: a custom field of the ticket


def getter(name: str) -> Callable[[Facts], object] | None:
    """The field of that name, or None when there is none."""
    if name.startswith(CUSTOM_FIELD) and len(name) > len(CUSTOM_FIELD):
        custom = name.removeprefix(CUSTOM_FIELD)
        return lambda f: f.ticket.fields.get(custom)
    return FIELDS.get(name)


FIELDS: dict[str, Callable[[Facts], object]] = {
    "ticket.number": lambda f: f.ticket.id,
    "ticket.type": lambda f: f.ticket.type,
    "ticket.status": lambda f: f.ticket.status,
    "ticket.priority": lambda f: f.ticket.priority,
    "ticket.subject": lambda f: f.ticket.subject,
    "ticket.assignee": lambda f: f.ticket.assignee.email if f.ticket.assignee else None,
    "ticket.group": lambda f: f.ticket.group.name if f.ticket.group else None,
    "ticket.usergroup": lambda f: f.ticket.usergroup.name if f.ticket.usergroup else None,
    "ticket.private": lambda f: f.ticket.private,
    "ticket.project": lambda f: f.ticket.project,
    "ticket.closed": lambda f: f.ticket.closed_at is not None,
    # Ages, compared with older_than / newer_than: e.g. {ticket.age: {older_than: 2d}}
    "ticket.age": lambda f: f.since(f.ticket.created_at),
    "ticket.idle": lambda f: f.since(f.ticket.updated_at),
    "ticket.in_status_for": lambda f: f.since(f.ticket.status_since),
    "ticket.customer_silent_for": lambda f: f.since(f.ticket.last_customer_at),
    "ticket.agent_silent_for": lambda f: f.since(f.ticket.last_agent_at),
    "ticket.overdue_by": lambda f: f.since(f.ticket.due_at),
    "ticket.opened_in_business_hours": lambda f: f.business_hours(f.ticket.created_at),
    "now.business_hours": lambda f: f.business_hours(f.now),
    "now.weekday": lambda f: weekday(f.hours, f.now) if f.now else None,
    "customer.usergroup": lambda f: f.ticket.usergroup.name if f.ticket.usergroup else None,
    "customer.email": lambda f: f.ticket.customer.email,
    "customer.name": lambda f: f.ticket.customer.name,
    "customer.domain": lambda f: _domain(f.ticket.customer.email),
    "message.subject": lambda f: f.message.subject if f.message else None,
    "message.text": lambda f: f.message.text if f.message else None,
    "message.from": lambda f: f.message.from_address if f.message else None,
    "message.has_attachments": lambda f: bool(f.message and f.message.attachments),
    "agent.email": lambda f: f.agent.email if f.agent else None,
    "assigned.agent_changed": lambda f: (
        isinstance(f.event, Assigned) and f.event.old_agent_id != f.event.new_agent_id
    ),
    "assigned.group_changed": lambda f: (
        isinstance(f.event, Assigned) and f.event.old_group_id != f.event.new_group_id
    ),
    "approval.decision": lambda f: (
        f.event.decision if isinstance(f.event, ApprovalDecided) else None
    ),
    "change.old": lambda f: f.event.old if isinstance(f.event, CHANGES) else None,
    "change.new": lambda f: f.event.new if isinstance(f.event, CHANGES) else None,
}


@dataclass(frozen=True, slots=True)
class Operator:
    prepare: Callable[[Any], Any]
    test: Callable[[object, Any], bool]


OPERATORS: dict[str, Operator] = {}


def operator(
    name: str, prepare: Callable[[Any], Any] = lambda v: v
) -> Callable[[Callable[[object, Any], bool]], Callable[[object, Any], bool]]:
    """Register a comparison under `name`; `prepare` checks and converts its operand at load."""

    def register(test: Callable[[object, Any], bool]) -> Callable[[object, Any], bool]:
        if name in OPERATORS:
            raise ValueError(f"operator {name!r} registered twice")
        OPERATORS[name] = Operator(prepare, test)
        return test

    return register


def _a_list(value: Any) -> list[Any]:
    if not isinstance(value, list) or not value:
        raise ConditionProblem(f"expects a non-empty list, got {value!r}")
    return value


def _a_value(value: Any) -> Any:
    # A field holds one value, so a list could never be equal to it: the rule would never fire.
    if isinstance(value, list | dict):
        raise ConditionProblem(f"compares with one value, got {value!r}; for a list use `in`")
    return value


def _a_text(value: Any) -> str:
    # str() would turn null into "None" and match the word.
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ConditionProblem(f"expects text, got {value!r}")
    return str(value)


def _a_regex(value: Any) -> re.Pattern[str]:
    try:
        return re.compile(_a_text(value), re.IGNORECASE)
    except re.error as exc:
        raise ConditionProblem(f"{value!r} is not a valid regular expression: {exc}") from None


def _a_number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConditionProblem(f"expects a number, got {value!r}")
    return float(value)


def _a_duration(value: Any) -> timedelta:
    parsed = duration_or_none(value)
    if parsed is None:
        raise ConditionProblem(f"expects a duration such as 90m, 4h or 2d, got {value!r}")
    return parsed


@operator("older_than", _a_duration)
def _older(value: object, operand: Any) -> bool:
    return isinstance(value, timedelta) and value > operand


@operator("newer_than", _a_duration)
def _newer(value: object, operand: Any) -> bool:
    return isinstance(value, timedelta) and value <= operand


def _same(value: object, operand: Any) -> bool:
    if isinstance(value, str) and isinstance(operand, str):
        return value.casefold() == operand.casefold()
    return bool(value == operand)


@operator("equals", _a_value)
def _equals(value: object, operand: Any) -> bool:
    return _same(value, operand)


@operator("not_equals", _a_value)
def _not_equals(value: object, operand: Any) -> bool:
    return not _same(value, operand)


@operator("in", _a_list)
def _in(value: object, operand: Any) -> bool:
    return any(_same(value, item) for item in operand)


@operator("not_in", _a_list)
def _not_in(value: object, operand: Any) -> bool:
    return not _in(value, operand)


@operator("contains", _a_text)
def _contains(value: object, operand: Any) -> bool:
    return isinstance(value, str) and operand.casefold() in value.casefold()


@operator("matches", _a_regex)
def _matches(value: object, operand: Any) -> bool:
    return isinstance(value, str) and operand.search(value) is not None


@operator("greater_than", _a_number)
def _greater(value: object, operand: Any) -> bool:
    return isinstance(value, int | float) and value > operand


@operator("less_than", _a_number)
def _less(value: object, operand: Any) -> bool:
    return isinstance(value, int | float) and value < operand


class Condition(Protocol):
    def holds(self, facts: Facts) -> bool: ...


@dataclass(frozen=True, slots=True)
class Compare:
    field: str
    name: str
    operand: Any

    def holds(self, facts: Facts) -> bool:
        get = getter(self.field)
        assert get is not None
        return bool(OPERATORS[self.name].test(get(facts), self.operand))


@dataclass(frozen=True, slots=True)
class AllOf:
    parts: tuple[Condition, ...]

    def holds(self, facts: Facts) -> bool:
        return all(part.holds(facts) for part in self.parts)


@dataclass(frozen=True, slots=True)
class AnyOf:
    parts: tuple[Condition, ...]

    def holds(self, facts: Facts) -> bool:
        return any(part.holds(facts) for part in self.parts)


@dataclass(frozen=True, slots=True)
class Not:
    part: Condition

    def holds(self, facts: Facts) -> bool:
        return not self.part.holds(facts)


def custom_fields_in(condition: Condition) -> set[str]:
    """The names of the ticket.fields.NAME a condition reads, to check them at load."""
    if isinstance(condition, AllOf | AnyOf):
        return set().union(*(custom_fields_in(part) for part in condition.parts))
    if isinstance(condition, Not):
        return custom_fields_in(condition.part)
    assert isinstance(condition, Compare)
    field = condition.field
    return {field.removeprefix(CUSTOM_FIELD)} if field.startswith(CUSTOM_FIELD) else set()


def parse_condition(data: Any) -> Condition:
    """A list means all of; a mapping's keys are all/any/not or a field with its operators."""
    if isinstance(data, list):
        return AllOf(tuple(parse_condition(item) for item in data))
    if not isinstance(data, dict) or not data:
        raise ConditionProblem(f"a condition must be a mapping or a list, got {data!r}")
    parts = [_parse_entry(key, value) for key, value in data.items()]
    return parts[0] if len(parts) == 1 else AllOf(tuple(parts))


def _parse_entry(key: str, value: Any) -> Condition:
    if key in ("all", "any"):
        try:
            parts = tuple(parse_condition(item) for item in _a_list(value))
        except ConditionProblem as exc:
            raise ConditionProblem(f"{key}: {exc}") from None
        return AllOf(parts) if key == "all" else AnyOf(parts)
    if key == "not":
        return Not(parse_condition(value))
    if getter(key) is None:
        raise ConditionProblem(f"unknown field {key!r}; known: {', '.join(sorted(FIELDS))}")
    tests = value if isinstance(value, dict) else {"equals": value}
    if not tests:
        raise ConditionProblem(f"{key}: no operator; known: {', '.join(sorted(OPERATORS))}")
    compares: list[Condition] = []
    for name, operand in tests.items():
        if name not in OPERATORS:
            known = ", ".join(sorted(OPERATORS))
            raise ConditionProblem(f"{key}: unknown operator {name!r}; known: {known}")
        try:
            prepared = OPERATORS[name].prepare(operand)
        except ConditionProblem as exc:
            raise ConditionProblem(f"{key}: {name} {exc}") from None
        compares.append(Compare(key, name, prepared))
    return compares[0] if len(compares) == 1 else AllOf(tuple(compares))
