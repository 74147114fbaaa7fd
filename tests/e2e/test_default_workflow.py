"""The shipped default workflow (rules/default.yaml) end to end over SMTP, for both shipped
types: a new mail, the agent's answer, the customer's answer; and a copy of the file, edited,
changes what happens."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from mailflow.db.models import History, OutboxMessage, Ticket
from mailflow.resources import rules_dir
from tests.conftest import RelaySink, Running, StartDaemon
from tests.support import add_agent, all_rows, build_message, get_ticket, reply_address, smtp_send

DEFAULT_RULES = (rules_dir() / "default.yaml").read_text(encoding="utf-8")


@dataclass(frozen=True)
class Shipped:
    address: str
    new: str  # the status of a new one
    answered: str  # after the agent's answer
    replied: str  # after the customer's answer to it
    auto_reply: str  # words of its auto-reply


TYPES = {
    "ticket": Shipped(
        "support@example.com", "open", "customer waiting", "agent waiting", "is now ticket [#1]"
    ),
    "suggestion": Shipped(
        "suggestion@example.com", "new", "under review", "under review", "your suggestion"
    ),
}


async def _staffed(running: Running) -> None:
    """Alice and Bob answer everything; Dave only suggestions."""
    await add_agent(running.app, "alice@staff.test", "Alice Agent")
    await add_agent(running.app, "bob@staff.test", "Bob Agent")
    await add_agent(running.app, "dave@staff.test", "Dave Agent", types=["suggestion"])


async def _new_mail(running: Running, address: str) -> None:
    message = build_message(to=address, message_id="<first@customer.test>", subject="Dark mode")
    assert (await smtp_send(running.port, message))[0] == 250


async def _queued(running: Running) -> int:
    """Mail written to the outbox, committed before the SMTP answer: an exact count."""
    return len(await all_rows(running.app, OutboxMessage))


async def _statuses(running: Running) -> list[str]:
    return [
        h.details["new"]
        for h in await all_rows(running.app, History)
        if h.action == "status_changed"
    ]


@pytest.mark.parametrize("type_name", TYPES)
async def test_the_default_workflow_from_first_mail_to_the_customers_answer(
    start_daemon: StartDaemon, relay_sink: RelaySink, type_name: str
) -> None:
    shipped = TYPES[type_name]
    running = await start_daemon()
    await _staffed(running)
    told = {"alice@staff.test", "bob@staff.test"} | (
        {"dave@staff.test"} if type_name == "suggestion" else set()
    )

    # A new mail: the ticket, the customer's auto-reply, the type's agents told.
    await _new_mail(running, shipped.address)
    ticket = await get_ticket(running.app, 1)
    assert (ticket.type, ticket.status, ticket.assignee_id) == (type_name, shipped.new, None)
    assert await _queued(running) == 1 + len(told)
    received = await relay_sink.wait_for(1 + len(told))
    (auto_reply,) = relay_sink.to("bob@customer.test")
    assert shipped.auto_reply in " ".join(auto_reply.text.split())
    assert auto_reply.message["Auto-Submitted"] == "auto-replied"
    assert auto_reply.message["From"].addresses[0].addr_spec == shipped.address
    assert {r for mail in received for r in mail.rcpt_tos} == told | {"bob@customer.test"}
    (notice,) = relay_sink.to("alice@staff.test")
    assert "Dark mode" in notice.text

    # Alice answers: the customer gets it from the type's address; she takes the ticket.
    answer = build_message(
        sender="Alice Agent <alice@staff.test>",
        to=reply_address(notice),
        subject="Re: " + str(notice.message["Subject"]),
        body="We like it and will look into it.",
        in_reply_to=notice.message["Message-ID"],
    )
    assert (await smtp_send(running.port, answer, mail_from="alice@staff.test"))[0] == 250
    ticket = await get_ticket(running.app, 1)
    assert ticket.status == shipped.answered
    assert ticket.assignee is not None
    assert ticket.assignee.email == "alice@staff.test"
    assert await _queued(running) == 2 + len(told), "only the answer: Alice is not told she took it"
    await relay_sink.wait_for(2 + len(told))
    relayed = relay_sink.to("bob@customer.test")[-1]
    assert relayed.text.startswith("We like it and will look into it.")
    assert str(relayed.message["From"]) == f"Alice Agent <{shipped.address}>"

    # The customer answers: the assignee, and only she, is told.
    reply = build_message(
        to=reply_address(relayed),
        subject="Re: " + str(relayed.message["Subject"]),
        body="Thank you! Any idea when?",
        message_id="<second@customer.test>",
        in_reply_to=relayed.message["Message-ID"],
    )
    assert (await smtp_send(running.port, reply))[0] == 250
    assert (await get_ticket(running.app, 1)).status == shipped.replied
    assert await _queued(running) == 3 + len(told)
    await relay_sink.wait_for(3 + len(told))
    told_of_reply = relay_sink.to("alice@staff.test")[-1]
    assert "Thank you! Any idea when?" in told_of_reply.text
    assert "assigned to Alice Agent" in told_of_reply.text
    assert len(relay_sink.to("bob@staff.test")) == 1, "Bob heard only of the new ticket"
    expected = [shipped.answered, shipped.replied]
    assert await _statuses(running) == list(dict.fromkeys(expected))
    assert len(await all_rows(running.app, Ticket)) == 1


async def test_while_unassigned_the_customers_answer_goes_to_the_types_agents(
    start_daemon: StartDaemon, relay_sink: RelaySink
) -> None:
    running = await start_daemon()
    await _staffed(running)
    await _new_mail(running, "support@example.com")
    await relay_sink.wait_for(3)

    more = build_message(
        subject="Re: [#1] Dark mode",
        body="Also, it is on fire.",
        message_id="<more@customer.test>",
        in_reply_to="<first@customer.test>",
    )
    assert (await smtp_send(running.port, more))[0] == 250

    assert await _queued(running) == 5
    received = await relay_sink.wait_for(5)
    told = received[3:]
    assert sorted(r for mail in told for r in mail.rcpt_tos) == [
        "alice@staff.test",
        "bob@staff.test",
    ]
    assert all("unassigned" in mail.text for mail in told)
    assert (await get_ticket(running.app, 1)).status == "agent waiting"


def _copy(tmp_path: Path, text: str) -> dict[str, dict[str, str]]:
    path = tmp_path / "rules"
    path.mkdir()
    (path / "default.yaml").write_text(text, encoding="utf-8")
    return {"rules": {"dir": str(path)}}


async def test_disabling_the_auto_reply_in_a_copy_stops_the_auto_reply(
    start_daemon: StartDaemon, relay_sink: RelaySink, tmp_path: Path
) -> None:
    rule = "  - name: auto-reply to a new ticket\n    trigger: ticket_created\n"
    assert DEFAULT_RULES.count(rule) == 1
    edited = DEFAULT_RULES.replace(rule, rule + "    enabled: false\n")
    running = await start_daemon(_copy(tmp_path, edited))
    await _staffed(running)

    await _new_mail(running, "support@example.com")

    assert await _queued(running) == 2
    received = await relay_sink.wait_for(2)
    assert sorted(r for mail in received for r in mail.rcpt_tos) == [
        "alice@staff.test",
        "bob@staff.test",
    ]
    fired = [h.actor for h in await all_rows(running.app, History) if h.action == "rule_fired"]
    assert "rule: auto-reply to a new ticket" not in fired
    assert "rule: tell the agents about a new ticket" in fired


async def test_editing_a_rule_in_a_copy_changes_the_status_it_sets(
    start_daemon: StartDaemon, relay_sink: RelaySink, tmp_path: Path
) -> None:
    before = "    do:\n      - set_status: customer waiting\n"
    assert DEFAULT_RULES.count(before) == 1
    edited = DEFAULT_RULES.replace(before, before.replace("customer waiting", "resolved"))
    running = await start_daemon(_copy(tmp_path, edited))
    await _staffed(running)
    await _new_mail(running, "support@example.com")
    await relay_sink.wait_for(3)
    (notice,) = relay_sink.to("alice@staff.test")

    answer = build_message(
        sender="alice@staff.test",
        to=reply_address(notice),
        subject="Re: " + str(notice.message["Subject"]),
        body="Done.",
        in_reply_to=notice.message["Message-ID"],
    )
    assert (await smtp_send(running.port, answer, mail_from="alice@staff.test"))[0] == 250

    ticket = await get_ticket(running.app, 1)
    assert (ticket.status, ticket.closed_at is not None) == ("resolved", True)
