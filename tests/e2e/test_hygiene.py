"""Mail hygiene over real SMTP: machines get no answers, bounces find our mail, duplicates
change nothing, and nobody becomes an agent or joins a ticket by naming it."""

from __future__ import annotations

from datetime import timedelta

from mailflow.clock import ManualClock
from mailflow.db.models import (
    History,
    InboundMessage,
    InboundState,
    Message,
    OutboxMessage,
    OutboxState,
    Ticket,
)
from tests.conftest import RelaySink, Running, StartDaemon
from tests.support import (
    add_agent,
    all_rows,
    build_message,
    get_ticket,
    smtp_send,
    wait_until,
)


async def _actions(running: Running, ticket_id: int) -> list[str]:
    return [h.action for h in await all_rows(running.app, History) if h.ticket_id == ticket_id]


async def _outbox_count(running: Running) -> int:
    return len(await all_rows(running.app, OutboxMessage))


# ---------------------------------------------------------------------------- automatic mail


async def test_out_of_office_reply_is_stored_and_changes_nothing(
    start_daemon: StartDaemon, relay_sink: RelaySink
) -> None:
    running = await start_daemon()
    await smtp_send(running.port, build_message(message_id="<q1@customer.test>"))
    (auto_reply,) = await relay_sink.wait_for(1)
    ooo = build_message(
        subject="Automatic reply: " + auto_reply.message["Subject"],
        body="I am away until Monday.",
        in_reply_to=auto_reply.message["Message-ID"],
        headers={"Auto-Submitted": "auto-replied", "X-Auto-Response-Suppress": "All"},
    )
    assert (await smtp_send(running.port, ooo, mail_from="<>"))[0] == 250
    ticket = await get_ticket(running.app, 1)
    assert ticket.status == "open", "an out-of-office reply flips no status"
    messages = await all_rows(running.app, Message)
    assert [m.automatic for m in messages] == [None, "auto_reply"]
    assert messages[1].ticket_id == 1
    assert await _outbox_count(running) == 1, "and triggers no mail"
    inbound = (await all_rows(running.app, InboundMessage))[-1]
    assert inbound.state is InboundState.STORED_ONLY


async def test_machine_mail_opens_a_ticket_but_gets_no_auto_reply(
    start_daemon: StartDaemon, relay_sink: RelaySink
) -> None:
    running = await start_daemon()
    await add_agent(running.app, "alice@staff.test", "Alice")
    cases = [
        {"Auto-Submitted": "auto-generated"},
        {"Precedence": "bulk"},
        {"List-Id": "<announce.lists.example.org>"},
    ]
    for number, headers in enumerate(cases, start=1):
        message = build_message(subject=f"Report {number}", headers=headers)
        assert (await smtp_send(running.port, message))[0] == 250
    tickets = await all_rows(running.app, Ticket)
    assert len(tickets) == 3
    sent = await all_rows(running.app, OutboxMessage)
    assert {tuple(row.rcpt_tos) for row in sent} == {("alice@staff.test",)}, (
        "the agent hears of each; the machine is not answered"
    )
    assert "automatic_mail_suppressed" in await _actions(running, 1)


async def test_mail_from_our_own_address_is_discarded(start_daemon: StartDaemon) -> None:
    running = await start_daemon()
    looped = build_message(sender="Example Support <support@example.com>")
    assert (await smtp_send(running.port, looped))[0] == 250
    (inbound,) = await all_rows(running.app, InboundMessage)
    assert inbound.state is InboundState.DISCARDED
    assert inbound.reason == "loop: mail from our own support@example.com"
    assert await all_rows(running.app, Ticket) == []


async def test_our_own_message_coming_back_is_discarded(
    start_daemon: StartDaemon, relay_sink: RelaySink
) -> None:
    running = await start_daemon()
    await smtp_send(running.port, build_message())
    (auto_reply,) = await relay_sink.wait_for(1)
    forwarded = auto_reply.raw.replace(b"To: Bob Customer", b"X-Was-To: Bob", 1)
    raw = b"To: support@example.com\r\n" + forwarded
    raw = raw.replace(b"From: Example Support <support@example.com>", b"From: bob@customer.test")
    assert (await smtp_send(running.port, raw))[0] == 250
    inbound = (await all_rows(running.app, InboundMessage))[-1]
    assert (inbound.state, inbound.reason) == (
        InboundState.DISCARDED,
        "loop: our own message came back",
    )


async def test_automatic_mail_to_one_address_is_capped(
    start_daemon: StartDaemon, relay_sink: RelaySink, clock: ManualClock
) -> None:
    running = await start_daemon({"hygiene": {"automatic_mail_limit": 3}}, clock=clock)
    for number in range(5):
        await smtp_send(running.port, build_message(subject=f"Question {number}"))
    assert len(await all_rows(running.app, Ticket)) == 5
    assert await _outbox_count(running) == 3
    suppressed = [
        h for h in await all_rows(running.app, History) if h.action == "automatic_mail_suppressed"
    ]
    assert [h.ticket_id for h in suppressed] == [4, 5]
    assert suppressed[0].details["reason"] == "per-address limit on automatic mail"

    await running.daemon.stop()
    restarted = await start_daemon({"hygiene": {"automatic_mail_limit": 3}}, clock=clock)
    await smtp_send(restarted.port, build_message(subject="Question 6"))
    assert await _outbox_count(restarted) == 3, "the count survives a restart"
    clock.advance(timedelta(hours=1, seconds=1))
    await smtp_send(restarted.port, build_message(subject="Question 7"))
    assert await _outbox_count(restarted) == 4, "and frees up after the window"


# ---------------------------------------------------------------------------- bounces


def _dsn(to: str, original_message_id: str, status: str = "5.1.1") -> bytes:
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.customer.test>\r\n"
        f"To: {to}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\nI'm sorry to have to inform you...\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.customer.test\r\n\r\n"
        "Final-Recipient: rfc822; bob@customer.test\r\n"
        f"Action: {'failed' if status.startswith('5') else 'delayed'}\r\n"
        f"Status: {status}\r\n"
        f"Diagnostic-Code: smtp; 550 {status} <bob@customer.test>: User unknown\r\n\r\n"
        "--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"Message-ID: <{original_message_id}>\r\nSubject: whatever\r\n\r\n"
        "--B--\r\n"
    ).encode()


async def test_bounce_to_the_return_path_fails_that_mail_and_tells_the_agents(
    start_daemon: StartDaemon, relay_sink: RelaySink
) -> None:
    running = await start_daemon()
    await add_agent(running.app, "alice@staff.test", "Alice")
    await smtp_send(running.port, build_message())
    await relay_sink.wait_for(2)
    (auto_reply,) = relay_sink.to("bob@customer.test")
    bounce = _dsn(auto_reply.mail_from, "not-the-real-id@elsewhere")
    code, _ = await smtp_send(running.port, bounce, mail_from="<>", rcpt_tos=[auto_reply.mail_from])
    assert code == 250
    assert len(await all_rows(running.app, Ticket)) == 1, "a bounce never opens a ticket"
    row = next(
        r for r in await all_rows(running.app, OutboxMessage) if r.rcpt_tos == ["bob@customer.test"]
    )
    assert row.state is OutboxState.FAILED
    assert "User unknown" in row.last_error
    assert "delivery_failed" in await _actions(running, 1)
    await relay_sink.wait_for(3)
    (_, notice) = relay_sink.to("alice@staff.test")
    assert "could not be delivered" in notice.text
    assert "User unknown" in notice.text
    inbound = (await all_rows(running.app, InboundMessage))[-1]
    assert inbound.state is InboundState.STORED_ONLY
    assert inbound.automatic == "bounce"


async def test_bounce_with_a_rewritten_return_path_is_matched_by_message_id(
    start_daemon: StartDaemon, relay_sink: RelaySink
) -> None:
    running = await start_daemon()
    await smtp_send(running.port, build_message())
    (auto_reply,) = await relay_sink.wait_for(1)
    original_id = auto_reply.message["Message-ID"].strip("<>")
    bounce = _dsn("support@example.com", original_id)
    assert (await smtp_send(running.port, bounce, mail_from="<>"))[0] == 250
    (row,) = await all_rows(running.app, OutboxMessage)
    assert row.state is OutboxState.FAILED
    decisions = (await all_rows(running.app, InboundMessage))[-1].decisions
    assert any("by quoted Message-ID" in d for d in decisions)


async def test_bounce_in_prose_is_recognised(
    start_daemon: StartDaemon, relay_sink: RelaySink
) -> None:
    running = await start_daemon()
    await smtp_send(running.port, build_message())
    (auto_reply,) = await relay_sink.wait_for(1)
    prose = (
        "From: MAILER-DAEMON@mail.customer.test\r\nTo: support@example.com\r\n"
        "Subject: failure notice\r\n\r\n"
        "Hi. This is the qmail-send program. I'm afraid I wasn't able to deliver your message.\r\n"
        "<bob@customer.test>:\r\nSorry, no mailbox here by that name. (#5.1.1)\r\n\r\n"
        "--- Below this line is a copy of the message.\r\n\r\n"
        f"Message-ID: {auto_reply.message['Message-ID']}\r\nSubject: x\r\n"
    ).encode()
    assert (await smtp_send(running.port, prose, mail_from="<>"))[0] == 250
    (row,) = await all_rows(running.app, OutboxMessage)
    assert row.state is OutboxState.FAILED
    assert len(await all_rows(running.app, Ticket)) == 1


async def test_delay_report_records_but_does_not_fail(
    start_daemon: StartDaemon, relay_sink: RelaySink
) -> None:
    running = await start_daemon()
    await smtp_send(running.port, build_message())
    (auto_reply,) = await relay_sink.wait_for(1)
    await wait_until(lambda: _settled(running))  # the relay's 250 is recorded a moment later
    delayed = _dsn(auto_reply.mail_from, "x@y", status="4.4.7")
    await smtp_send(running.port, delayed, mail_from="<>", rcpt_tos=[auto_reply.mail_from])
    (row,) = await all_rows(running.app, OutboxMessage)
    assert row.state is OutboxState.SENT
    assert "delivery_delayed" in await _actions(running, 1)


# ---------------------------------------------------------------------------- duplicates


async def test_the_same_message_delivered_twice_is_one_ticket_message(
    start_daemon: StartDaemon,
) -> None:
    running = await start_daemon()
    message = build_message(message_id="<once@customer.test>")
    assert (await smtp_send(running.port, message))[0] == 250
    assert (await smtp_send(running.port, message))[0] == 250
    copy = build_message(message_id="<once@customer.test>", to="suggestion@example.com")
    assert (await smtp_send(running.port, copy))[0] == 250
    assert len(await all_rows(running.app, Message)) == 1
    first, second, third = await all_rows(running.app, InboundMessage)
    assert (second.state, second.reason) == (
        InboundState.DISCARDED,
        f"duplicate of inbound {first.id}",
    )
    assert third.state is InboundState.DISCARDED
    assert await _outbox_count(running) == 1


async def test_duplicates_without_message_id_are_found_by_content(
    start_daemon: StartDaemon,
) -> None:
    running = await start_daemon()
    raw = (
        b"From: bob@customer.test\r\nTo: support@example.com\r\nSubject: no id\r\n"
        b"Date: Mon, 05 Jan 2026 09:00:00 +0000\r\n\r\nSame words.\r\n"
    )
    await smtp_send(running.port, raw)
    await smtp_send(running.port, b"Received: from relay2\r\n" + raw)
    different = raw.replace(b"Same words.", b"Other words.")
    await smtp_send(running.port, different)
    assert len(await all_rows(running.app, Message)) == 2


async def test_one_transaction_to_two_types_opens_one_ticket_of_the_first(
    start_daemon: StartDaemon,
) -> None:
    running = await start_daemon()
    message = build_message(to="suggestion@example.com, support@example.com")
    rcpts = ["suggestion@example.com", "support@example.com"]
    assert (await smtp_send(running.port, message, rcpt_tos=rcpts))[0] == 250
    (ticket,) = await all_rows(running.app, Ticket)
    assert ticket.type == "suggestion"


# ---------------------------------------------------------------------------- identity


async def _ticket_with_agent_notice(running: Running, relay_sink: RelaySink) -> tuple[str, str]:
    """Open ticket 1; return the agent's signed reply address and the notice's Message-ID."""
    await add_agent(running.app, "alice@staff.test", "Alice Agent")
    await smtp_send(running.port, build_message(message_id="<t1@customer.test>"))
    await relay_sink.wait_for(2)
    (notice,) = relay_sink.to("alice@staff.test")
    return notice.message["Reply-To"].addresses[0].addr_spec, notice.message["Message-ID"]


async def test_forged_agent_from_is_an_unverified_note_and_is_recorded(
    start_daemon: StartDaemon, relay_sink: RelaySink
) -> None:
    running = await start_daemon()
    _, notice_id = await _ticket_with_agent_notice(running, relay_sink)
    forged = build_message(
        sender="Alice Agent <alice@staff.test>",
        subject="Re: [#1] Printer is on fire",
        body="Refund approved, send us your card number.",
        in_reply_to=notice_id,
    )
    assert (await smtp_send(running.port, forged, mail_from="alice@staff.test"))[0] == 250
    messages = await all_rows(running.app, Message)
    assert (messages[-1].author_kind.value, messages[-1].public) == ("unverified", False)
    assert messages[-1].agent_id is None
    assert "agent_identity_refused" in await _actions(running, 1)
    ticket = await get_ticket(running.app, 1)
    assert ticket.status == "open"
    assert ticket.assignee_id is None
    await wait_until(lambda: _settled(running))
    assert [r.rcpt_tos for r in await all_rows(running.app, OutboxMessage)] == [
        ["bob@customer.test"],
        ["alice@staff.test"],
    ], "nothing was relayed to the customer, nor told to the address it claims"


async def _settled(running: Running) -> bool:
    rows = await all_rows(running.app, OutboxMessage)
    return all(r.state is OutboxState.SENT for r in rows)


async def test_signed_agent_address_used_by_someone_else_does_not_act(
    start_daemon: StartDaemon, relay_sink: RelaySink
) -> None:
    running = await start_daemon()
    reply_to, _ = await _ticket_with_agent_notice(running, relay_sink)
    stolen = build_message(sender="mallory@evil.test", to=reply_to, subject="Re: hi", body="x")
    assert (await smtp_send(running.port, stolen, mail_from="mallory@evil.test"))[0] == 250
    last = (await all_rows(running.app, Message))[-1]
    assert (last.ticket_id, last.author_kind.value) == (1, "unverified")
    history = [
        h for h in await all_rows(running.app, History) if h.action == "agent_identity_refused"
    ]
    assert (
        "mallory@evil.test wrote to the signed reply address of alice@staff.test"
        in (history[0].details["reason"])
    )


async def test_tampered_signature_is_not_a_signed_address(
    start_daemon: StartDaemon, relay_sink: RelaySink
) -> None:
    running = await start_daemon()
    reply_to, _ = await _ticket_with_agent_notice(running, relay_sink)
    local, domain = reply_to.split("@")
    tampered = local[:-1] + ("a" if local[-1] != "a" else "b") + "@" + domain
    message = build_message(
        sender="Alice Agent <alice@staff.test>", to=tampered, subject="Re: hi", body="Unplug it."
    )
    await smtp_send(running.port, message, mail_from="alice@staff.test")
    assert (await all_rows(running.app, Message))[-1].author_kind.value == "customer"


async def test_our_mta_authentication_lets_an_agent_write_to_the_plain_address(
    start_daemon: StartDaemon, relay_sink: RelaySink
) -> None:
    running = await start_daemon({"identity": {"trusted_authserv_ids": ["mx.example.com"]}})
    await _ticket_with_agent_notice(running, relay_sink)
    trusted = build_message(
        sender="Alice Agent <alice@staff.test>",
        subject="Re: [#1] Printer is on fire",
        body="Unplug it.",
        headers={
            "Authentication-Results": "mx.example.com; dkim=pass header.d=staff.test; "
            "spf=pass smtp.mailfrom=alice@staff.test"
        },
    )
    assert (await smtp_send(running.port, trusted, mail_from="alice@staff.test"))[0] == 250
    assert (await all_rows(running.app, Message))[-1].author_kind.value == "agent"
    await relay_sink.wait_for(3)
    assert len(relay_sink.to("bob@customer.test")) == 2, "the answer reached the customer"

    forged = build_message(
        sender="Alice Agent <alice@staff.test>",
        subject="Re: [#1] Printer is on fire",
        body="Forged.",
        headers={"Authentication-Results": "mx.evil.test; dkim=pass header.d=staff.test"},
    )
    await smtp_send(running.port, forged, mail_from="alice@staff.test")
    assert (await all_rows(running.app, Message))[-1].author_kind.value == "unverified"


# ---------------------------------------------------------------------------- threading


async def test_stranger_naming_a_ticket_opens_a_new_one(
    start_daemon: StartDaemon, relay_sink: RelaySink
) -> None:
    running = await start_daemon()
    await smtp_send(running.port, build_message())
    hijack = build_message(
        sender="mallory@evil.test",
        subject="Re: [#1] Printer is on fire",
        to="support+1@example.com",
    )
    assert (await smtp_send(running.port, hijack, mail_from="mallory@evil.test"))[0] == 250
    tickets = await all_rows(running.app, Ticket)
    assert [t.customer.email for t in tickets] == ["bob@customer.test", "mallory@evil.test"]
    assert "join_refused" in await _actions(running, 1)
    assert "opened_instead_of_joining" in await _actions(running, 2)
    assert (await get_ticket(running.app, 1)).status == "open"


async def test_someone_in_cc_may_join_by_the_subject_tag(start_daemon: StartDaemon) -> None:
    running = await start_daemon()
    first = build_message(headers={"Cc": "Carol <carol@customer.test>"})
    await smtp_send(running.port, first)
    carol = build_message(
        sender="carol@customer.test", subject="Re: [#1] Printer is on fire", body="Same here."
    )
    await smtp_send(running.port, carol, mail_from="carol@customer.test")
    assert [m.ticket_id for m in await all_rows(running.app, Message)] == [1, 1]


async def test_signed_customer_address_threads_without_references(
    start_daemon: StartDaemon, relay_sink: RelaySink
) -> None:
    """Outlook and SES rewrite Message-IDs and drop References; the Reply-To still works."""
    running = await start_daemon()
    await smtp_send(running.port, build_message())
    (auto_reply,) = await relay_sink.wait_for(1)
    reply_to = auto_reply.message["Reply-To"].addresses[0].addr_spec
    assert reply_to.startswith("support+1-c1-")
    answer = build_message(to=reply_to, subject="Another matter entirely", body="More info.")
    await smtp_send(running.port, answer)
    assert [m.ticket_id for m in await all_rows(running.app, Message)] == [1, 1]


# ---------------------------------------------------------------------------- headers


async def test_names_cannot_inject_headers_into_our_mail(
    start_daemon: StartDaemon, relay_sink: RelaySink
) -> None:
    running = await start_daemon()
    raw = (
        b"From: =?utf-8?q?Eve=0D=0ABcc=3A_victim=40else=2Etest?= <eve@customer.test>\r\n"
        b"To: support@example.com\r\n"
        b"Subject: =?utf-8?q?hi=0D=0ABcc=3A_victim2=40else=2Etest?=\r\n\r\nbody\r\n"
    )
    assert (await smtp_send(running.port, raw, mail_from="eve@customer.test"))[0] == 250
    (auto_reply,) = await relay_sink.wait_for(1)
    headers = auto_reply.raw.split(b"\r\n\r\n", 1)[0]
    assert b"\r\nBcc:" not in headers
    assert auto_reply.message["Bcc"] is None
    assert auto_reply.rcpt_tos == ["eve@customer.test"]


async def test_non_ascii_names_are_encoded(
    start_daemon: StartDaemon, relay_sink: RelaySink
) -> None:
    running = await start_daemon({"instance": {"name": "Überstunden Süd"}})
    await smtp_send(running.port, build_message(sender="Zoë Ångström <zoe@customer.test>"))
    (auto_reply,) = await relay_sink.wait_for(1)
    headers = auto_reply.raw.split(b"\r\n\r\n", 1)[0]
    assert headers.isascii()
    assert b"=?utf-8?" in headers
    assert str(auto_reply.message["To"]) == "Zoë Ångström <zoe@customer.test>"
    assert auto_reply.message["From"].addresses[0].display_name == "Überstunden Süd"


async def test_unmarked_mail_to_our_return_path_opens_no_ticket(
    start_daemon: StartDaemon, relay_sink: RelaySink
) -> None:
    """RFC 3834 §4 sends auto-replies to the return path; only machines write there."""
    running = await start_daemon()
    await smtp_send(running.port, build_message(message_id="<q@customer.test>"))
    (auto_reply,) = await relay_sink.wait_for(1)
    away = build_message(subject="Away until Monday", message_id="<away@customer.test>")
    assert (await smtp_send(running.port, away, rcpt_tos=[auto_reply.mail_from]))[0] == 250
    assert len(await all_rows(running.app, Ticket)) == 1
    assert len(await all_rows(running.app, OutboxMessage)) == 1
    kept = (await all_rows(running.app, Message))[-1]
    assert (kept.ticket_id, kept.automatic) == (1, "auto_reply")
