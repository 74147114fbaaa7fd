"""People at work by email, over SMTP: operators and their groups, commands, notes,
usergroups with supervisors, private tickets, and commands that are refused whole."""

from __future__ import annotations

from sqlalchemy import select

from mailflow.db.models import Customer, History, Message, Ticket
from mailflow.db.people import AgentRole
from tests.conftest import Received, RelaySink, Running, StartDaemon
from tests.support import (
    add_agent,
    add_group,
    add_usergroup,
    all_rows,
    answer_notice,
    build_message,
    get_ticket,
    history_actions,
    reply_address,
    smtp_send,
)


async def _staffed(start_daemon: StartDaemon, relay_sink: RelaySink) -> tuple[Running, Received]:
    """Alice, Bob and Carol (Bob and Carol in billing); ticket 1 from Bob Customer; Alice's
    new-ticket notice."""
    running = await start_daemon()
    app = running.app
    await add_agent(app, "alice@staff.test", "Alice", role=AgentRole.ADMIN)
    await add_agent(app, "bob@staff.test", "Bob")
    await add_agent(app, "carol@staff.test", "Carol", notify=True)
    await add_group(app, "billing", "bob@staff.test", "carol@staff.test")
    await smtp_send(running.port, build_message(message_id="<t1@customer.test>"))
    await relay_sink.wait_for(4)
    (notice,) = relay_sink.to("alice@staff.test")
    return running, notice


async def test_group_assignment_notifies_the_group(
    start_daemon: StartDaemon, relay_sink: RelaySink
) -> None:
    running, notice = await _staffed(start_daemon, relay_sink)
    await answer_notice(running, notice, "alice@staff.test", "#group billing\n\nWe are on it.")
    await relay_sink.wait_for(7)  # the answer to the customer, a notice to each of billing
    ticket = await get_ticket(running.app, 1)
    assert ticket.group is not None
    assert ticket.group.name == "billing"
    answer = relay_sink.to("bob@customer.test")[-1]
    assert answer.text.startswith("We are on it."), "the command is not in the customer's copy"
    assert "#group" not in answer.text
    for member in ("bob@staff.test", "carol@staff.test"):
        told = relay_sink.to(member)[-1]
        assert "is now with your group billing" in told.text
        assert reply_address(told).startswith("support+1-a")
    assert len(relay_sink.to("alice@staff.test")) == 1, "Alice is not told what she did"


async def test_an_operator_takes_a_ticket_with_assign_me(
    start_daemon: StartDaemon, relay_sink: RelaySink
) -> None:
    running, _ = await _staffed(start_daemon, relay_sink)
    (bobs_notice,) = relay_sink.to("bob@staff.test")
    sent_before = len(relay_sink.received)
    await answer_notice(running, bobs_notice, "bob@staff.test", "#assign me")
    ticket = await get_ticket(running.app, 1)
    assert ticket.assignee is not None
    assert ticket.assignee.email == "bob@staff.test"
    assert ticket.status == "open", "commands alone are no answer to the customer"
    assert len(relay_sink.received) == sent_before, "nothing sent: not to the customer, not to Bob"


async def test_a_note_stays_between_agents(
    start_daemon: StartDaemon, relay_sink: RelaySink
) -> None:
    running, notice = await _staffed(start_daemon, relay_sink)
    await answer_notice(running, notice, "alice@staff.test", "#group billing\n\nHello Bob.")
    await relay_sink.wait_for(7)
    (bobs, *_) = relay_sink.to("bob@staff.test")[-1:]
    await answer_notice(running, bobs, "bob@staff.test", "#note\nThe customer owes us 40 EUR.")
    await relay_sink.wait_for(9)  # to Alice (the assignee) and Carol (billing), not Bob
    note = (await all_rows(running.app, Message))[-1]
    assert (note.public, note.text) == (False, "The customer owes us 40 EUR.")
    for colleague in ("alice@staff.test", "carol@staff.test"):
        assert "The customer owes us 40 EUR." in relay_sink.to(colleague)[-1].text
    assert all("owes us" not in r.text for r in relay_sink.to("bob@customer.test"))
    assert (await get_ticket(running.app, 1)).status == "customer waiting"


async def test_cc_copies_the_answer(start_daemon: StartDaemon, relay_sink: RelaySink) -> None:
    running, notice = await _staffed(start_daemon, relay_sink)
    await answer_notice(running, notice, "alice@staff.test", "#cc boss@customer.test\nDone.")
    await relay_sink.wait_for(5)
    answer = relay_sink.to("bob@customer.test")[-1]
    assert answer.rcpt_tos == ["bob@customer.test", "boss@customer.test"]
    assert answer.message["Cc"] == "boss@customer.test"


async def test_an_invalid_command_changes_nothing_and_answers_the_agent(
    start_daemon: StartDaemon, relay_sink: RelaySink
) -> None:
    running, notice = await _staffed(start_daemon, relay_sink)
    before = len(relay_sink.received)
    body = "#status nonsense\n#assign zed\n#frobnicate\n#priority high\n\nHello customer."
    await answer_notice(running, notice, "alice@staff.test", body)
    await relay_sink.wait_for(before + 1)
    (error,) = relay_sink.received[before:]
    assert error.rcpt_tos == ["alice@staff.test"]
    assert error.message["Auto-Submitted"] == "auto-replied"
    assert "#status nonsense: 'nonsense' is not a status of ticket tickets" in error.text
    assert "#assign zed: there is no active agent 'zed'" in error.text
    assert "#frobnicate: unknown command" in error.text
    ticket = await get_ticket(running.app, 1)
    assert (ticket.status, ticket.priority, ticket.assignee_id) == ("open", "normal", None)
    assert len(await all_rows(running.app, Message)) == 1, "the answer was not sent or kept"
    assert "commands_refused" in await history_actions(running.app, 1)


async def test_a_forged_agent_from_with_commands_does_nothing(
    start_daemon: StartDaemon, relay_sink: RelaySink
) -> None:
    running, notice = await _staffed(start_daemon, relay_sink)
    forged = build_message(
        sender="Alice <alice@staff.test>",
        to="support+1@example.com",
        subject="Re: [#1]",
        body="#status closed\n#assign alice",
        in_reply_to=notice.message["Message-ID"],
    )
    await smtp_send(running.port, forged, mail_from="alice@staff.test")
    ticket = await get_ticket(running.app, 1)
    assert ticket.status == "open", "a note from an unverified sender moves nothing"
    assert ticket.assignee_id is None
    assert "agent_identity_refused" in await history_actions(running.app, 1)


async def _supervised(
    start_daemon: StartDaemon, relay_sink: RelaySink, subject: str = "Printer is on fire"
) -> tuple[Running, Ticket]:
    running = await start_daemon()
    await add_agent(running.app, "alice@staff.test", "Alice")
    await add_agent(running.app, "bob@staff.test", "Bob")
    await add_usergroup(running.app, "acme", {"mia@acme.test": False, "sam@acme.test": True})
    await smtp_send(
        running.port,
        build_message(sender="Mia <mia@acme.test>", subject=subject),
        mail_from="mia@acme.test",
    )
    return running, await get_ticket(running.app, 1)


async def test_a_supervisor_closes_a_members_ticket_by_email(
    start_daemon: StartDaemon, relay_sink: RelaySink
) -> None:
    running, ticket = await _supervised(start_daemon, relay_sink)
    assert ticket.usergroup is not None
    assert ticket.usergroup.name == "acme"
    await relay_sink.wait_for(4)
    (told,) = relay_sink.to("sam@acme.test")
    assert "of Acme opened [#1]" in told.text
    assert reply_address(told).startswith("support+1-s")
    await answer_notice(running, told, "sam@acme.test", "#status closed\n#assign bob")
    ticket = await get_ticket(running.app, 1)
    assert ticket.status == "closed"
    assert ticket.assignee is not None
    assert ticket.assignee.email == "bob@staff.test"
    history = [h for h in await all_rows(running.app, History) if h.action == "status_changed"]
    assert history[-1].actor == "sam@acme.test"


async def test_a_supervisor_may_not_write_notes(
    start_daemon: StartDaemon, relay_sink: RelaySink
) -> None:
    running, _ = await _supervised(start_daemon, relay_sink)
    await relay_sink.wait_for(4)
    (told,) = relay_sink.to("sam@acme.test")
    await answer_notice(running, told, "sam@acme.test", "#note\n#status open\nsecret")
    await relay_sink.wait_for(5)
    error = relay_sink.to("sam@acme.test")[-1]
    assert "#note: not allowed for a supervisor" in error.text
    assert "#status open" not in error.text, "reopening is a supervisor's to do"


async def test_a_private_ticket_is_kept_from_the_supervisor(
    start_daemon: StartDaemon, relay_sink: RelaySink
) -> None:
    running, ticket = await _supervised(start_daemon, relay_sink, "[private] About my salary")
    assert ticket.private
    assert ticket.subject == "About my salary"
    await relay_sink.wait_for(3)
    assert relay_sink.to("sam@acme.test") == []
    # Nor can the supervisor join it by naming it.
    await smtp_send(
        running.port,
        build_message(sender="sam@acme.test", subject="Re: [#1] salary", body="Let me see."),
        mail_from="sam@acme.test",
    )
    assert [t.customer.email for t in await all_rows(running.app, Ticket)] == [
        "mia@acme.test",
        "sam@acme.test",
    ]


async def test_the_address_tag_picks_among_several_usergroups(start_daemon: StartDaemon) -> None:
    running = await start_daemon()
    await add_usergroup(running.app, "acme", {"kim@both.test": False}, default=True)
    await add_usergroup(running.app, "marketing", {"kim@both.test": False})
    await smtp_send(
        running.port,
        build_message(sender="kim@both.test", to="support@example.com"),
        mail_from="kim@both.test",
    )
    await smtp_send(
        running.port,
        build_message(sender="kim@both.test", subject="Ads", to="support+marketing@example.com"),
        mail_from="kim@both.test",
    )
    usergroups = [
        t.usergroup.name if t.usergroup else None for t in await all_rows(running.app, Ticket)
    ]
    assert usergroups == ["acme", "marketing"]


async def test_customers_are_not_agents_when_they_write_commands(start_daemon: StartDaemon) -> None:
    running = await start_daemon()
    await smtp_send(running.port, build_message(body="#status closed\nPlease help."))
    ticket = await get_ticket(running.app, 1)
    assert ticket.status == "open"
    (message,) = await all_rows(running.app, Message)
    assert message.text.startswith("#status closed")
    async with running.app.db.transaction() as session:
        assert await session.scalar(select(Customer.id)) is not None
