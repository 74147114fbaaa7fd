"""People and agents at work by email, attacked at the edges, over real SMTP: commands in odd
shapes, quoted history under commands, #cc and #type corner cases, supervisors reaching past
their usergroup or into private tickets, forged identities and the all-or-nothing rule."""

from __future__ import annotations

from sqlalchemy import update

from mailflow.app import App
from mailflow.db.models import Agent, Message, OutboxMessage, Participant, Ticket
from mailflow.db.people import AgentRole
from mailflow.people import directory
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

# ---------------------------------------------------------------------------- helpers


async def _outbox(app: App, purpose: str | None = None) -> list[OutboxMessage]:
    rows = await all_rows(app, OutboxMessage)
    return [r for r in rows if purpose is None or r.purpose == purpose]


async def _staffed(start_daemon: StartDaemon, relay_sink: RelaySink) -> tuple[Running, Received]:
    """Alice (admin), Bob and Carol (operators, both in billing); ticket 1 from Bob Customer;
    Alice's new-ticket notice."""
    running = await start_daemon()
    app = running.app
    await add_agent(app, "alice@staff.test", "Alice", role=AgentRole.ADMIN)
    await add_agent(app, "bob@staff.test", "Bob")
    await add_agent(app, "carol@staff.test", "Carol")
    await add_group(app, "billing", "bob@staff.test", "carol@staff.test")
    await smtp_send(running.port, build_message(message_id="<t1@customer.test>"))
    await relay_sink.wait_for(4)
    (notice,) = relay_sink.to("alice@staff.test")
    return running, notice


async def _supervised(
    start_daemon: StartDaemon, relay_sink: RelaySink, subject: str = "Printer is on fire"
) -> tuple[Running, Received]:
    """Alice and Bob (agents); acme with Mia (member) and Sam (supervisor); ticket 1 from Mia;
    Sam's supervisor notice."""
    running = await start_daemon()
    await add_agent(running.app, "alice@staff.test", "Alice")
    await add_agent(running.app, "bob@staff.test", "Bob")
    await add_usergroup(running.app, "acme", {"mia@acme.test": False, "sam@acme.test": True})
    await smtp_send(
        running.port,
        build_message(sender="Mia <mia@acme.test>", subject=subject, message_id="<t1@acme.test>"),
        mail_from="mia@acme.test",
    )
    await relay_sink.wait_for(4)
    (told,) = relay_sink.to("sam@acme.test")
    return running, told


def _quoted(received: Received, who: str = "Example Support <support@example.com>") -> str:
    """How a mail client quotes the mail it answers: an attribution line and `> ` lines."""
    lines = "\n".join("> " + line for line in received.text.splitlines())
    return f"On Fri, 27 Nov 2026 at 12:00, {who} wrote:\n{lines}\n"


# ---------------------------------------------------------------------------- command syntax


async def test_commands_in_odd_case_and_spacing_still_apply(
    start_daemon: StartDaemon, relay_sink: RelaySink
) -> None:
    running, notice = await _staffed(start_daemon, relay_sink)
    body = "  #STATUS   Resolved  \n#Priority URGENT\n\t#group BILLING\n\nAll sorted."
    await answer_notice(running, notice, "alice@staff.test", body)
    ticket = await get_ticket(running.app, 1)
    assert (ticket.status, ticket.priority) == ("resolved", "urgent")
    assert ticket.group is not None
    assert ticket.group.name == "billing"
    (answer,) = await _outbox(running.app, "agent_reply")
    await relay_sink.wait_for(len(await _outbox(running.app)))
    sent = relay_sink.to("bob@customer.test")[-1]
    assert sent.text.startswith("All sorted.")
    assert "#" not in sent.text.split("--")[0], "no command reaches the customer"
    assert answer.rcpt_tos == ["bob@customer.test"]


async def test_commands_below_the_text_are_just_text(
    start_daemon: StartDaemon, relay_sink: RelaySink
) -> None:
    """Commands belong on the first lines; a #status further down is part of the answer."""
    running, notice = await _staffed(start_daemon, relay_sink)
    body = "Please try turning it off.\n#status closed\n"
    await answer_notice(running, notice, "alice@staff.test", body)
    ticket = await get_ticket(running.app, 1)
    assert ticket.status == "customer waiting"
    assert "commands_refused" not in await history_actions(running.app, 1)
    await relay_sink.wait_for(5)
    assert "#status closed" in relay_sink.to("bob@customer.test")[-1].text


async def test_a_quoted_status_command_under_the_reply_changes_nothing(
    start_daemon: StartDaemon, relay_sink: RelaySink
) -> None:
    """The customer wrote '#status closed'; the agent's reply quotes it below the answer."""
    running = await start_daemon()
    await add_agent(running.app, "alice@staff.test", "Alice")
    await smtp_send(
        running.port,
        build_message(body="#status closed\nWhy does my printer burn?", message_id="<q@c.test>"),
    )
    await relay_sink.wait_for(2)
    (notice,) = relay_sink.to("alice@staff.test")
    body = "Because of the toner.\n\n" + _quoted(notice)
    await answer_notice(running, notice, "alice@staff.test", body)
    ticket = await get_ticket(running.app, 1)
    assert ticket.status == "customer waiting"
    await relay_sink.wait_for(3)
    assert relay_sink.to("bob@customer.test")[-1].text.startswith("Because of the toner.")


async def test_an_html_only_agent_reply_gives_commands(
    start_daemon: StartDaemon, relay_sink: RelaySink
) -> None:
    running, notice = await _staffed(start_daemon, relay_sink)
    message = build_message(
        sender="alice@staff.test",
        to=reply_address(notice),
        subject="Re: " + str(notice.message["Subject"]),
        in_reply_to=notice.message["Message-ID"],
    )
    message.set_content(
        "<html><body><div>#priority&nbsp;high</div><div>#group billing<br></div>"
        "<div><br></div><div>We have <b>ordered</b> a new printer.</div></body></html>",
        subtype="html",
    )
    assert (await smtp_send(running.port, message, mail_from="alice@staff.test"))[0] == 250
    ticket = await get_ticket(running.app, 1)
    assert ticket.priority == "high"
    assert ticket.group is not None
    assert ticket.group.name == "billing"
    await relay_sink.wait_for(len(await _outbox(running.app)))
    sent = relay_sink.to("bob@customer.test")[-1]
    assert "ordered a new printer" in sent.text
    assert sent.html is not None
    for command in ("#priority", "#group"):
        assert command not in sent.text
        assert command not in sent.html


# ---------------------------------------------------------------------------- quoted history


async def test_commands_only_reply_quoting_a_note_sends_nothing_to_the_customer(
    start_daemon: StartDaemon, relay_sink: RelaySink
) -> None:
    running, notice = await _staffed(start_daemon, relay_sink)
    await answer_notice(running, notice, "alice@staff.test", "#group billing\n\nWe are on it.")
    await relay_sink.wait_for(7)
    bobs = relay_sink.to("bob@staff.test")[-1]
    await answer_notice(running, bobs, "bob@staff.test", "#note\nThe customer owes us 40 EUR.")
    await relay_sink.wait_for(9)
    carols_note = relay_sink.to("carol@staff.test")[-1]
    assert "owes us 40 EUR" in carols_note.text
    # Carol takes the ticket; her mail client quotes the note under her one command.
    await answer_notice(
        running, carols_note, "carol@staff.test", "#priority high\n\n" + _quoted(carols_note)
    )
    ticket = await get_ticket(running.app, 1)
    assert ticket.priority == "high"
    assert ticket.status == "customer waiting", "unchanged: a command is no answer"
    to_customer = [r for r in await _outbox(running.app) if "bob@customer.test" in r.rcpt_tos]
    assert all(b"owes us" not in r.raw for r in to_customer), "an internal note leaked"
    assert len(await _outbox(running.app, "agent_reply")) == 1


# ---------------------------------------------------------------------------- all or nothing


async def test_one_bad_cc_refuses_the_whole_message(
    start_daemon: StartDaemon, relay_sink: RelaySink
) -> None:
    running, notice = await _staffed(start_daemon, relay_sink)
    before = len(relay_sink.received)
    body = (
        "#priority urgent\n#cc not-an-address\n#cc Support+7@Example.COM\n#assign bob\n\n"
        "Hello customer."
    )
    await answer_notice(running, notice, "alice@staff.test", body)
    await relay_sink.wait_for(before + 1)
    error = relay_sink.received[before]
    assert error.rcpt_tos == ["alice@staff.test"]
    assert "#cc not-an-address: 'not-an-address' is not an email address" in error.text
    assert "is one of our own addresses" in error.text
    ticket = await get_ticket(running.app, 1)
    assert (ticket.priority, ticket.assignee_id) == ("normal", None)
    assert await _outbox(running.app, "agent_reply") == []
    participants = {p.address for p in await all_rows(running.app, Participant)}
    assert "support+7@example.com" not in participants
    assert "not-an-address" not in participants


async def test_assigning_an_inactive_agent_is_refused(
    start_daemon: StartDaemon, relay_sink: RelaySink
) -> None:
    running, notice = await _staffed(start_daemon, relay_sink)
    async with running.app.db.transaction() as session:
        await session.execute(
            update(Agent).where(Agent.email == "carol@staff.test").values(active=False)
        )
    before = len(relay_sink.received)
    await answer_notice(running, notice, "alice@staff.test", "#assign carol\n#status resolved")
    await relay_sink.wait_for(before + 1)
    error = relay_sink.received[before]
    assert "#assign carol: there is no active agent 'carol'" in error.text
    ticket = await get_ticket(running.app, 1)
    assert (ticket.assignee_id, ticket.status) == (None, "open")


async def test_a_name_that_fits_two_agents_is_refused_naming_both(
    start_daemon: StartDaemon, relay_sink: RelaySink
) -> None:
    running, notice = await _staffed(start_daemon, relay_sink)
    await add_agent(running.app, "carol@night.test", "Carol")  # another Carol, another team
    before = len(relay_sink.received)
    await answer_notice(running, notice, "alice@staff.test", "#assign carol")
    await relay_sink.wait_for(before + 1)
    error = relay_sink.received[before].text
    assert "'carol' names several agents (carol@night.test, carol@staff.test)" in error
    assert (await get_ticket(running.app, 1)).assignee_id is None
    await answer_notice(running, notice, "alice@staff.test", "#assign carol@night.test")
    ticket = await get_ticket(running.app, 1)
    assert ticket.assignee is not None
    assert ticket.assignee.email == "carol@night.test", "the address tells them apart"


async def test_an_operator_may_not_change_the_usergroup_but_an_admin_may(
    start_daemon: StartDaemon, relay_sink: RelaySink
) -> None:
    running, notice = await _staffed(start_daemon, relay_sink)
    await add_usergroup(running.app, "acme", {"someone@acme.test": False})
    (bobs,) = relay_sink.to("bob@staff.test")
    before = len(relay_sink.received)
    await answer_notice(running, bobs, "bob@staff.test", "#usergroup acme\n#priority high")
    await relay_sink.wait_for(before + 1)
    assert "#usergroup acme: not allowed for an operator" in relay_sink.received[before].text
    ticket = await get_ticket(running.app, 1)
    assert (ticket.usergroup_id, ticket.priority) == (None, "normal")
    await answer_notice(running, notice, "alice@staff.test", "#usergroup ACME")
    ticket = await get_ticket(running.app, 1)
    assert ticket.usergroup is not None
    assert ticket.usergroup.name == "acme"


async def test_type_and_status_together_never_leave_a_status_of_the_wrong_type(
    start_daemon: StartDaemon, relay_sink: RelaySink
) -> None:
    running, notice = await _staffed(start_daemon, relay_sink)
    await answer_notice(running, notice, "alice@staff.test", "#type suggestion\n#status resolved")
    ticket = await get_ticket(running.app, 1)
    suggestion = running.app.config.ticket_type(ticket.type)
    assert ticket.status in suggestion.statuses, (ticket.type, ticket.status)


# ---------------------------------------------------------------------------- #cc


async def test_cc_alone_copies_later_answers(
    start_daemon: StartDaemon, relay_sink: RelaySink
) -> None:
    running, notice = await _staffed(start_daemon, relay_sink)
    await answer_notice(running, notice, "alice@staff.test", "#cc boss@customer.test")
    assert "commands_refused" not in await history_actions(running.app, 1)
    await answer_notice(running, notice, "alice@staff.test", "The printer is fixed.")
    (answer,) = await _outbox(running.app, "agent_reply")
    assert answer.rcpt_tos == ["bob@customer.test", "boss@customer.test"]


# ---------------------------------------------------------------------------- notes


async def test_a_note_among_other_commands_stays_internal(
    start_daemon: StartDaemon, relay_sink: RelaySink
) -> None:
    running, notice = await _staffed(start_daemon, relay_sink)
    await answer_notice(
        running, notice, "alice@staff.test", "#group billing\n#NOTE\nHe owes us 40 EUR."
    )
    note = (await all_rows(running.app, Message))[-1]
    assert (note.public, note.text) == (False, "He owes us 40 EUR.")
    ticket = await get_ticket(running.app, 1)
    assert ticket.group is not None
    assert ticket.group.name == "billing"
    assert ticket.status == "open"
    await relay_sink.wait_for(len(await _outbox(running.app)))
    assert all(b"owes us" not in r.raw for r in relay_sink.to("bob@customer.test"))
    assert all(b"owes us" not in r.raw for r in relay_sink.to("alice@staff.test"))


async def test_a_note_handing_the_ticket_to_a_group_reaches_the_group(
    start_daemon: StartDaemon, relay_sink: RelaySink
) -> None:
    running, notice = await _staffed(start_daemon, relay_sink)
    await answer_notice(
        running, notice, "alice@staff.test", "#group billing\n#note\nHe owes us 40 EUR."
    )
    await relay_sink.wait_for(len(await _outbox(running.app)))
    for member in ("bob@staff.test", "carol@staff.test"):
        assert any("He owes us 40 EUR." in r.text for r in relay_sink.to(member)), member


# ---------------------------------------------------------------------------- identity


async def test_an_agent_on_a_colleagues_signed_address_does_not_act(
    start_daemon: StartDaemon, relay_sink: RelaySink
) -> None:
    """Carol writes, as herself, to the signed reply address made for Alice."""
    running, notice = await _staffed(start_daemon, relay_sink)
    message = build_message(
        sender="Carol <carol@staff.test>",
        to=reply_address(notice),
        subject="Re: [#1]",
        body="#assign carol\n#priority urgent\n\nDone.",
    )
    await smtp_send(running.port, message, mail_from="carol@staff.test")
    ticket = await get_ticket(running.app, 1)
    assert (ticket.priority, ticket.assignee_id) == ("normal", None)
    assert "agent_identity_refused" in await history_actions(running.app, 1)
    kept = (await all_rows(running.app, Message))[-1]
    assert (kept.from_address, kept.agent_id) == ("carol@staff.test", None)
    assert await _outbox(running.app, "agent_reply") == []


async def test_a_forged_agent_on_the_plain_address_with_a_fake_auth_header_does_nothing(
    start_daemon: StartDaemon, relay_sink: RelaySink
) -> None:
    running, _ = await _staffed(start_daemon, relay_sink)
    forged = build_message(
        sender="Alice <alice@staff.test>",
        to="support@example.com",
        subject="Re: [#1] Printer is on fire",
        body="#status closed\n#assign alice",
        in_reply_to="<t1@customer.test>",
        headers={"Authentication-Results": "mailflow.test; dkim=pass header.d=staff.test"},
    )
    await smtp_send(running.port, forged, mail_from="alice@staff.test")
    ticket = await get_ticket(running.app, 1)
    assert ticket.assignee_id is None
    assert ticket.status != "closed"
    assert "agent_identity_refused" in await history_actions(running.app, 1)


# ---------------------------------------------------------------------------- supervisors


async def test_a_supervisor_may_only_close_reopen_assign_group_and_prioritise(
    start_daemon: StartDaemon, relay_sink: RelaySink
) -> None:
    running, told = await _supervised(start_daemon, relay_sink)
    await add_usergroup(running.app, "globex", {})
    body = (
        "#usergroup globex\n#type suggestion\n#cc boss@acme.test\n#private\n"
        "#assign me\n#status customer waiting\n#priority high\n\nPlease hurry."
    )
    await answer_notice(running, told, "sam@acme.test", body)
    await relay_sink.wait_for(5)
    error = relay_sink.to("sam@acme.test")[-1]
    assert error.message["Auto-Submitted"] == "auto-replied"
    for line in ("#usergroup globex", "#type suggestion", "#cc boss@acme.test", "#private"):
        assert f"{line}: not allowed for a supervisor" in error.text
    assert "#assign me: #assign me is for agents" in error.text
    assert "#status customer waiting: a supervisor may close a ticket" in error.text
    assert "#priority high" not in error.text
    ticket = await get_ticket(running.app, 1)
    assert (ticket.type, ticket.status, ticket.priority) == ("ticket", "open", "normal")
    assert ticket.usergroup is not None
    assert ticket.usergroup.name == "acme"
    assert not ticket.private
    assert len(await all_rows(running.app, Message)) == 1, "Sam's text was not kept either"


async def test_a_supervisor_groups_and_prioritises(
    start_daemon: StartDaemon, relay_sink: RelaySink
) -> None:
    running, told = await _supervised(start_daemon, relay_sink)
    await add_group(running.app, "second-line", "bob@staff.test")
    await answer_notice(
        running, told, "sam@acme.test", "#group second-line\n#priority urgent\n#status resolved"
    )
    ticket = await get_ticket(running.app, 1)
    assert ticket.group is not None
    assert ticket.group.name == "second-line"
    assert (ticket.priority, ticket.status) == ("urgent", "resolved")
    await answer_notice(running, told, "sam@acme.test", "#status open\n#group nobody")
    ticket = await get_ticket(running.app, 1)
    assert (ticket.status, ticket.group_id) == ("open", None)


async def test_a_member_who_is_no_supervisor_gives_no_commands(
    start_daemon: StartDaemon, relay_sink: RelaySink
) -> None:
    running, _ = await _supervised(start_daemon, relay_sink)
    (auto_reply,) = relay_sink.to("mia@acme.test")
    await answer_notice(running, auto_reply, "mia@acme.test", "#status closed\n#assign bob")
    ticket = await get_ticket(running.app, 1)
    assert (ticket.status, ticket.assignee_id) == ("agent waiting", None)
    assert "commands_refused" not in await history_actions(running.app, 1)
    assert (await all_rows(running.app, Message))[-1].text.startswith("#status closed")


async def test_the_supervisors_error_replies_are_capped(
    start_daemon: StartDaemon, relay_sink: RelaySink
) -> None:
    """A supervisor's address answering every error would loop; the cap stops it at 5."""
    running, told = await _supervised(start_daemon, relay_sink)
    for attempt in range(7):
        message = build_message(
            sender="sam@acme.test",
            to=reply_address(told),
            subject="Re: " + str(told.message["Subject"]),
            body=f"#frobnicate {attempt}",
            in_reply_to=told.message["Message-ID"],
        )
        assert (await smtp_send(running.port, message, mail_from="sam@acme.test"))[0] == 250
    errors = await _outbox(running.app, "command_error")
    # The supervisor notice counted as one automatic mail: four error replies go out.
    assert len(errors) == 4
    assert (await history_actions(running.app, 1)).count("commands_refused") == 7
    assert (await history_actions(running.app, 1)).count("automatic_mail_suppressed") == 3


async def test_a_supervisor_cannot_steer_another_usergroups_ticket_via_references(
    start_daemon: StartDaemon, relay_sink: RelaySink
) -> None:
    running, told = await _supervised(start_daemon, relay_sink)
    await add_usergroup(running.app, "globex", {"gus@globex.test": False})
    # Gus of globex opens ticket 2 and copies Sam, who thus knows its Message-ID.
    await smtp_send(
        running.port,
        build_message(
            sender="gus@globex.test",
            subject="Our own trouble",
            message_id="<t2@globex.test>",
            headers={"Cc": "sam@acme.test"},
        ),
        mail_from="gus@globex.test",
    )
    second = await get_ticket(running.app, 2)
    assert second.usergroup is not None
    assert second.usergroup.name == "globex"
    # Sam answers on his acme supervisor address, but In-Reply-To names ticket 2.
    message = build_message(
        sender="sam@acme.test",
        to=reply_address(told),
        subject="Re: Our own trouble",
        body="#status closed\n#priority low\n#assign bob",
        in_reply_to="<t2@globex.test>",
    )
    await smtp_send(running.port, message, mail_from="sam@acme.test")
    second = await get_ticket(running.app, 2)
    assert second.status != "closed"
    assert (second.priority, second.assignee_id) == ("normal", None)


async def test_a_ticket_made_private_by_an_agent_stays_hidden_from_the_supervisor(
    start_daemon: StartDaemon, relay_sink: RelaySink
) -> None:
    running, told = await _supervised(start_daemon, relay_sink)
    (alices,) = relay_sink.to("alice@staff.test")
    await answer_notice(running, alices, "alice@staff.test", "#private\n\nWe are on it, Mia.")
    ticket = await get_ticket(running.app, 1)
    assert ticket.private
    # Sam still has his notice from before; he answers it, and is not a supervisor any more.
    await answer_notice(running, told, "sam@acme.test", "#status closed\nWhat is this about?")
    ticket = await get_ticket(running.app, 1)
    assert ticket.status != "closed"
    await answer_notice(running, alices, "alice@staff.test", "Your salary is 4000 EUR.")
    answers = await _outbox(running.app, "agent_reply")
    assert len(answers) == 2
    assert answers[-1].rcpt_tos == ["mia@acme.test"], "the private answer went to Sam too"


async def test_a_supervisor_is_not_told_of_a_private_ticket_by_header(
    start_daemon: StartDaemon, relay_sink: RelaySink
) -> None:
    running = await start_daemon()
    await add_agent(running.app, "alice@staff.test", "Alice")
    await add_usergroup(running.app, "acme", {"mia@acme.test": False, "sam@acme.test": True})
    await smtp_send(
        running.port,
        build_message(
            sender="mia@acme.test",
            subject="About my manager",
            headers={"X-Mailflow-Private": "Yes"},
        ),
        mail_from="mia@acme.test",
    )
    ticket = await get_ticket(running.app, 1)
    assert ticket.private
    await relay_sink.wait_for(2)
    assert not [r for r in await _outbox(running.app) if "sam@acme.test" in r.rcpt_tos]


# ---------------------------------------------------------------------------- deleting groups


async def _delete_group(app: App, name: str, *, purge_closed: bool) -> tuple[int, int]:
    async with app.db.transaction() as session:
        group = await directory.find_group(session, name)
        assert group is not None
        return await directory.delete_group(
            session, app.config, group, purge_closed=purge_closed, now=app.clock.now()
        )


async def _two_billing_tickets(
    start_daemon: StartDaemon, relay_sink: RelaySink, closing: str
) -> tuple[Running, Received]:
    """Ticket 1 (open) and ticket 2 (closed with `closing`), both with billing; Bob's notice
    that ticket 1 is with billing."""
    running, notice = await _staffed(start_daemon, relay_sink)
    await answer_notice(running, notice, "alice@staff.test", "#group billing\n#assign bob")
    await smtp_send(
        running.port,
        build_message(sender="eve@customer.test", subject="Invoice", message_id="<t2@c.test>"),
        mail_from="eve@customer.test",
    )
    await relay_sink.wait_for(len(await _outbox(running.app)))
    second = [r for r in relay_sink.to("alice@staff.test") if "[#2]" in str(r.message["Subject"])]
    await answer_notice(running, second[0], "alice@staff.test", "#group billing\n" + closing)
    assert (await get_ticket(running.app, 2)).status == "closed"
    await relay_sink.wait_for(len(await _outbox(running.app)))
    bobs = [r for r in relay_sink.to("bob@staff.test") if "[#1]" in str(r.message["Subject"])]
    return running, bobs[-1]


async def test_deleting_a_group_unassigns_open_tickets_and_detaches_closed_ones(
    start_daemon: StartDaemon, relay_sink: RelaySink
) -> None:
    running, bobs = await _two_billing_tickets(start_daemon, relay_sink, "#status closed")
    assert await _delete_group(running.app, "billing", purge_closed=False) == (1, 1)
    first, second = await get_ticket(running.app, 1), await get_ticket(running.app, 2)
    assert (first.group_id, first.assignee_id, first.status) == (None, None, "open")
    assert (second.group_id, second.status) == (None, "closed")
    assert "group_assigned" in await history_actions(running.app, 1)
    # Bob still has the notice that named the group; a #group billing is now refused.
    before = len(relay_sink.received)
    await answer_notice(running, bobs, "bob@staff.test", "#group billing\n#assign me")
    await relay_sink.wait_for(before + 1)
    assert "#group billing: there is no group 'billing'" in relay_sink.received[before].text
    assert (await get_ticket(running.app, 1)).assignee_id is None


async def test_purging_a_groups_closed_ticket_with_time_logged(
    start_daemon: StartDaemon, relay_sink: RelaySink
) -> None:
    running, _ = await _two_billing_tickets(
        start_daemon, relay_sink, "#time 30m billable\n#status closed"
    )
    assert await _delete_group(running.app, "billing", purge_closed=True) == (1, 1)
    assert [t.id for t in await all_rows(running.app, Ticket)] == [1]
