"""The whole cycle a new user sees, over real SMTP: customer → ticket → agent → customer."""

from __future__ import annotations

from sqlalchemy import select

from mailflow.db.models import Blob, History, InboundMessage, Message
from tests.conftest import RelaySink, StartDaemon
from tests.support import add_agent, all_rows, build_message, get_ticket, smtp_send


async def test_full_cycle_of_a_ticket(start_daemon: StartDaemon, relay_sink: RelaySink) -> None:
    running = await start_daemon()
    app = running.app
    await add_agent(app, "alice@staff.test", "Alice Agent")

    # 1. A customer writes to support@: a ticket opens, the customer gets an auto-reply.
    code, reply = await smtp_send(running.port, build_message(message_id="<first@customer.test>"))
    assert code == 250
    assert reply.startswith(b"2.0.0 Queued as ")
    ticket = await get_ticket(app, 1)
    assert (ticket.type, ticket.status, ticket.assignee_id) == ("ticket", "open", None)
    assert ticket.subject == "Printer is on fire"
    assert ticket.customer.email == "bob@customer.test"
    assert ticket.customer.name == "Bob Customer"

    await relay_sink.wait_for(2)
    (auto_reply,) = relay_sink.to("bob@customer.test")
    headers = auto_reply.message
    assert headers["Subject"] == "[#1] Re: Printer is on fire"
    assert headers["In-Reply-To"] == "<first@customer.test>"
    assert "<first@customer.test>" in headers["References"]
    assert headers["Auto-Submitted"] == "auto-replied"
    assert headers["From"] == "Example Support <support@example.com>"
    assert "now ticket [#1]" in auto_reply.text
    assert auto_reply.html is not None
    assert "<strong>[#1]</strong>" in auto_reply.html
    assert auto_reply.mail_from.startswith("support+bounce-1-"), "VERP return path"

    # The agent hears about the new ticket, with a reply address that finds it.
    (notification,) = relay_sink.to("alice@staff.test")
    assert notification.message["Subject"].startswith("[#1]")
    reply_to = notification.message["Reply-To"].addresses[0]
    assert reply_to.display_name == "Example Support"
    assert reply_to.addr_spec.startswith("support+1-a1-")
    assert "Help, my printer is on fire." in notification.text

    # 2. The agent answers the notification: the customer gets it from the support address.
    answer = build_message(
        sender="Alice Agent <alice@staff.test>",
        to=reply_to.addr_spec,
        subject="Re: " + notification.message["Subject"],
        body="Unplug it and step away.\n\nAlice\n\nOn Mon, Bob wrote:\n> Help, my printer",
        in_reply_to=notification.message["Message-ID"],
    )
    code, _ = await smtp_send(running.port, answer, mail_from="alice@staff.test")
    assert code == 250
    await relay_sink.wait_for(3)
    (_, relayed) = relay_sink.to("bob@customer.test")
    assert relayed.message["From"] == "Alice Agent <support@example.com>"
    assert "alice@staff.test" not in relayed.raw.decode()
    assert "Unplug it and step away." in relayed.text
    assert "> Help, my printer" not in relayed.text
    assert relayed.message["In-Reply-To"] == "<first@customer.test>"
    assert relayed.message["Auto-Submitted"] is None
    ticket = await get_ticket(app, 1)
    assert ticket.status == "customer waiting"
    assert ticket.assignee is not None
    assert ticket.assignee.email == "alice@staff.test"

    # 3. The customer answers the agent's mail: same ticket, agent waiting, assignee notified.
    followup = build_message(
        subject="Re: " + relayed.message["Subject"],
        body="Done, it stopped burning.",
        message_id="<second@customer.test>",
        in_reply_to=relayed.message["Message-ID"],
    )
    assert (await smtp_send(running.port, followup))[0] == 250
    await relay_sink.wait_for(4)
    ticket = await get_ticket(app, 1)
    assert ticket.status == "agent waiting"
    (_, told) = relay_sink.to("alice@staff.test")
    assert "Done, it stopped burning." in told.text
    assert told.message["Subject"].startswith("[#1]")

    messages = await all_rows(app, Message)
    assert [(m.ticket_id, m.author_kind.value) for m in messages] == [
        (1, "customer"),
        (1, "agent"),
        (1, "customer"),
    ]
    assert messages[1].text == "Unplug it and step away.\n\nAlice"
    actions = [(h.actor_kind.value, h.action) for h in await all_rows(app, History)]
    assert ("customer", "created") in actions
    assert ("automation", "status_changed") in actions
    assert ("automation", "assigned") in actions
    inbound = await all_rows(app, InboundMessage)
    assert [i.ticket_id for i in inbound] == [1, 1, 1]
    assert "thread: In-Reply-To/References name ticket 1" in inbound[2].decisions


async def test_suggestion_address_opens_a_suggestion(
    start_daemon: StartDaemon, relay_sink: RelaySink
) -> None:
    running = await start_daemon()
    message = build_message(to="suggestion@example.com", subject="Dark mode please")
    assert (await smtp_send(running.port, message))[0] == 250
    ticket = await get_ticket(running.app, 1)
    assert (ticket.type, ticket.status) == ("suggestion", "new")
    (auto_reply,) = await relay_sink.wait_for(1)
    assert "Thank you for your suggestion" in auto_reply.text
    assert auto_reply.message["Subject"] == "[#1] Re: Dark mode please"


async def test_mail_by_plus_address_or_subject_tag_joins_its_ticket_as_an_unverified_note(
    start_daemon: StartDaemon, relay_sink: RelaySink
) -> None:
    """Anyone can type a tag or a plus-address and the customer's From: it threads, but only
    as a note for the agents, which moves nothing."""
    running = await start_daemon()
    await smtp_send(running.port, build_message(subject="First"))
    await smtp_send(running.port, build_message(subject="Second"))
    by_plus = build_message(to="support+2@example.com", subject="no tag here")
    by_tag = build_message(subject="Re: [#1] First")
    assert (await smtp_send(running.port, by_plus))[0] == 250
    assert (await smtp_send(running.port, by_tag))[0] == 250
    inbound = await all_rows(running.app, InboundMessage)
    assert [i.ticket_id for i in inbound] == [1, 2, 2, 1]
    assert (await get_ticket(running.app, 2)).status == "open"
    notes = (await all_rows(running.app, Message))[2:]
    assert [(m.author_kind.value, m.public) for m in notes] == [("unverified", False)] * 2


async def test_unknown_ticket_number_opens_a_new_ticket(start_daemon: StartDaemon) -> None:
    running = await start_daemon()
    assert (await smtp_send(running.port, build_message(subject="Re: [#77] lost")))[0] == 250
    (inbound,) = await all_rows(running.app, InboundMessage)
    assert inbound.ticket_id == 1
    assert "thread: subject tag names ticket 77, which does not exist" in inbound.decisions


async def test_html_body_and_attachments_are_kept(start_daemon: StartDaemon) -> None:
    running = await start_daemon()
    message = build_message(body="plain version")
    message.make_mixed()
    message.add_attachment(
        b"%PDF-1.4 invoice", maintype="application", subtype="pdf", filename="invoice 2026.pdf"
    )
    html_only = build_message(subject="HTML only", body="")
    html_only.set_content(
        "<html><body><h1>Order</h1><p>It <b>never</b> came.</p></body></html>", subtype="html"
    )
    assert (await smtp_send(running.port, message))[0] == 250
    assert (await smtp_send(running.port, html_only))[0] == 250
    first, second = await all_rows(running.app, Message)
    assert first.text == "plain version"
    assert [(a.filename, a.content_type, a.size) for a in first.attachments] == [
        ("invoice 2026.pdf", "application/pdf", 16)
    ]
    assert second.html is not None
    assert "<b>never</b>" in second.html
    assert "Order" in second.text
    assert "It never came." in second.text


async def test_an_attachment_sent_twice_is_stored_once(start_daemon: StartDaemon) -> None:
    running = await start_daemon()
    for subject in ("first", "second"):
        message = build_message(subject=subject)
        message.add_attachment(
            b"same bytes", maintype="application", subtype="octet-stream", filename="log.txt"
        )
        await smtp_send(running.port, message)
    attachments = [a for m in await all_rows(running.app, Message) for a in m.attachments]
    assert len(attachments) == 2
    async with running.app.db.transaction() as session:
        assert len((await session.scalars(select(Blob))).all()) == 1
