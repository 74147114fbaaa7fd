"""Rule conditions: which tickets and messages a rule's `if:` lets through."""

from __future__ import annotations

from typing import Any

import pytest

from mailflow.automation.conditions import ConditionProblem, Facts, parse_condition
from mailflow.db.models import Agent, Attachment, Customer, Message, Ticket
from mailflow.tickets.events import Event, StatusChanged, TicketCreated


def make_facts(
    *,
    status: str = "open",
    priority: str = "normal",
    subject: str = "Printer on fire",
    customer_email: str = "bob@customer.example",
    assignee: str | None = None,
    message_text: str | None = "Please help, the printer is on fire.",
    attachments: int = 0,
    agent: str | None = None,
    event: Event | None = None,
) -> Facts:
    ticket = Ticket(
        id=17,
        type="ticket",
        status=status,
        subject=subject,
        priority=priority,
        customer=Customer(email=customer_email, name="Bob Customer"),
        assignee=Agent(email=assignee, name="Ann Agent") if assignee else None,
    )
    message = (
        Message(
            subject=f"Re: {subject}",
            text=message_text,
            from_address=customer_email,
            attachments=[
                Attachment(filename=f"f{n}.pdf", content_type="application/pdf", size=1)
                for n in range(attachments)
            ],
        )
        if message_text is not None
        else None
    )
    return Facts(
        ticket=ticket,
        event=event or TicketCreated(ticket_id=17, message_id=1),
        message=message,
        agent=Agent(email=agent, name="Replying Agent") if agent else None,
    )


def holds(condition: Any, **facts: Any) -> bool:
    return parse_condition(condition).holds(make_facts(**facts))


# ---------------------------------------------------------------------------- operators


@pytest.mark.parametrize("written", ["open", "OPEN", "Open"])
def test_equals_ignores_case(written: str) -> None:
    assert holds({"ticket.status": {"equals": written}})
    assert holds({"ticket.status": written})  # a bare value means equals


def test_equals_is_false_for_another_value() -> None:
    assert not holds({"ticket.status": {"equals": "closed"}})


def test_equals_null_matches_an_unassigned_ticket_only() -> None:
    condition = {"ticket.assignee": {"equals": None}}

    assert holds(condition)
    assert not holds(condition, assignee="ann@example.com")


def test_not_equals_is_the_opposite_of_equals() -> None:
    assert holds({"ticket.priority": {"not_equals": "urgent"}})
    assert not holds({"ticket.priority": {"not_equals": "NORMAL"}})


def test_in_matches_any_listed_value_ignoring_case() -> None:
    condition = {"ticket.status": {"in": ["New", "OPEN"]}}

    assert holds(condition)
    assert not holds(condition, status="closed")


def test_not_in_matches_values_outside_the_list() -> None:
    condition = {"ticket.status": {"not_in": ["resolved", "closed"]}}

    assert holds(condition)
    assert not holds(condition, status="Closed")


def test_contains_finds_text_ignoring_case() -> None:
    assert holds({"message.text": {"contains": "ON FIRE"}})
    assert not holds({"message.text": {"contains": "water"}})


def test_contains_is_false_when_there_is_no_message() -> None:
    assert not holds({"message.text": {"contains": "fire"}}, message_text=None)


def test_matches_searches_with_a_case_insensitive_regex() -> None:
    assert holds({"ticket.subject": {"matches": r"^printer\b"}})
    assert not holds({"ticket.subject": {"matches": r"^fire"}})


def test_matches_is_false_for_a_missing_value() -> None:
    assert not holds({"ticket.assignee": {"matches": ".*"}})


def test_greater_and_less_than_compare_numbers() -> None:
    assert holds({"ticket.number": {"greater_than": 16}})
    assert not holds({"ticket.number": {"greater_than": 17}})
    assert holds({"ticket.number": {"less_than": 17.5}})
    assert not holds({"ticket.number": {"less_than": 17}})


def test_number_operators_are_false_for_text() -> None:
    assert not holds({"ticket.status": {"greater_than": 0}})


def test_several_operators_on_one_field_must_all_hold() -> None:
    assert holds({"ticket.number": {"greater_than": 10, "less_than": 20}})
    assert not holds({"ticket.number": {"greater_than": 10, "less_than": 15}})


# ------------------------------------------------------------------------------- fields


@pytest.mark.parametrize(
    ("condition", "facts"),
    [
        ({"ticket.type": "ticket"}, {}),
        ({"ticket.priority": "high"}, {"priority": "high"}),
        ({"ticket.assignee": "ann@example.com"}, {"assignee": "ann@example.com"}),
        ({"customer.email": "bob@customer.example"}, {}),
        ({"customer.name": "bob customer"}, {}),
        ({"customer.domain": "customer.example"}, {}),
        ({"message.subject": "Re: Printer on fire"}, {}),
        ({"message.from": "bob@customer.example"}, {}),
        ({"message.has_attachments": True}, {"attachments": 2}),
        ({"message.has_attachments": False}, {}),
        ({"agent.email": "ann@example.com"}, {"agent": "ann@example.com"}),
        ({"agent.email": None}, {}),
    ],
)
def test_each_field_reads_its_fact(condition: dict[str, Any], facts: dict[str, Any]) -> None:
    assert holds(condition, **facts)


def test_has_attachments_is_false_without_a_message() -> None:
    assert holds({"message.has_attachments": False}, message_text=None)


def test_change_fields_read_a_status_change() -> None:
    change = StatusChanged(ticket_id=17, old="open", new="resolved")
    condition = {"change.old": "open", "change.new": {"in": ["resolved", "closed"]}}

    assert holds(condition, event=change)
    assert not holds(condition)  # a TicketCreated event has no change


# --------------------------------------------------------------------------- combining


def test_a_list_means_all_of_its_conditions() -> None:
    condition = [{"ticket.status": "open"}, {"ticket.priority": "normal"}]

    assert holds(condition)
    assert not holds(condition, priority="high")


def test_a_mapping_with_several_fields_means_all_of_them() -> None:
    condition = {"ticket.status": "open", "ticket.priority": "urgent"}

    assert not holds(condition)
    assert holds(condition, priority="urgent")


def test_all_needs_every_part() -> None:
    condition = {"all": [{"ticket.status": "open"}, {"customer.domain": "customer.example"}]}

    assert holds(condition)
    assert not holds(condition, status="closed")


def test_any_needs_one_part() -> None:
    condition = {"any": [{"ticket.priority": "urgent"}, {"message.text": {"contains": "fire"}}]}

    assert holds(condition)
    assert not holds(condition, message_text="All good.")


def test_not_inverts() -> None:
    condition = {"not": {"ticket.status": {"in": ["resolved", "closed"]}}}

    assert holds(condition)
    assert not holds(condition, status="resolved")


def test_combinations_nest() -> None:
    condition = {
        "any": [
            {"all": [{"ticket.priority": "urgent"}, {"not": {"ticket.assignee": None}}]},
            {"customer.domain": {"in": ["vip.example"]}},
        ]
    }

    assert not holds(condition)
    assert holds(condition, priority="urgent", assignee="ann@example.com")
    assert holds(condition, customer_email="ceo@vip.example")


# ------------------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("condition", "problem"),
    [
        ({"ticket.colour": "red"}, "unknown field 'ticket.colour'"),
        ({"ticket.status": {"like": "open"}}, "ticket.status: unknown operator 'like'"),
        ({"ticket.status": {}}, "ticket.status: no operator"),
        ({"ticket.status": {"in": "open"}}, "ticket.status: in expects a non-empty list"),
        ({"ticket.status": {"in": []}}, "ticket.status: in expects a non-empty list"),
        ({"ticket.status": {"not_in": {}}}, "ticket.status: not_in expects a non-empty list"),
        ({"ticket.status": ["open", "new"]}, "for a list use `in`"),
        ({"ticket.status": {"not_equals": ["open"]}}, "for a list use `in`"),
        ({"message.text": {"contains": None}}, "message.text: contains expects text"),
        ({"message.text": {"contains": ["a"]}}, "message.text: contains expects text"),
        ({"message.text": {"matches": None}}, "message.text: matches expects text"),
        ({"message.text": {"matches": "(unclosed"}}, "not a valid regular expression"),
        ({"ticket.number": {"greater_than": "5"}}, "greater_than expects a number"),
        ({"ticket.number": {"less_than": True}}, "less_than expects a number"),
        ({"any": []}, "any: expects a non-empty list"),
        ({"all": {"ticket.status": "open"}}, "all: expects a non-empty list"),
        ({"not": "open"}, "a condition must be a mapping or a list"),
        ({}, "a condition must be a mapping or a list"),
        ("ticket.status == open", "a condition must be a mapping or a list"),
        ({"any": [{"ticket.colour": "red"}]}, "any: unknown field 'ticket.colour'"),
    ],
)
def test_a_condition_that_cannot_work_is_refused_with_the_reason(
    condition: Any, problem: str
) -> None:
    with pytest.raises(ConditionProblem) as caught:
        parse_condition(condition)

    assert problem in str(caught.value)


def test_unknown_names_come_with_the_known_ones() -> None:
    with pytest.raises(ConditionProblem) as field:
        parse_condition({"ticket.colour": "red"})
    with pytest.raises(ConditionProblem) as operator:
        parse_condition({"ticket.status": {"like": "open"}})

    assert "ticket.status" in str(field.value)
    assert "customer.domain" in str(field.value)
    assert "equals" in str(operator.value)
    assert "not_in" in str(operator.value)


def test_numbers_are_accepted_as_text_to_look_for() -> None:
    assert holds({"message.text": {"contains": 42}}, message_text="Order 42 is late")
