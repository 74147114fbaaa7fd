"""Edges of the message path and the outbox, over real SMTP: odd envelopes, odd headers,
relays that answer per recipient or hang up, bounces that name the wrong thing."""

from __future__ import annotations

import asyncio
import smtplib
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from email import policy
from pathlib import Path

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

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
from mailflow.outbox.bounces import return_path
from tests.conftest import Received, RelaySink, Running, StartDaemon
from tests.support import (
    add_agent,
    all_rows,
    answer_notice,
    build_message,
    get_ticket,
    smtp_send,
    wait_until,
)

# ---------------------------------------------------------------------------- helpers


@dataclass
class ScriptedRelay:
    """A relay that can answer each recipient on its own, speaks SMTPUTF8, and can hang up in
    the middle of DATA. `rcpt_replies` maps an address to the answers it gets, in turn."""

    port: int = 0
    received: list[Received] = field(default_factory=list)
    rcpt_replies: dict[str, list[str]] = field(default_factory=dict)
    hang_ups: int = 0  # abort the connection at this many DATA commands, without answering
    hung_up: int = 0
    on_data: Callable[[Received], Awaitable[None]] | None = None

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        scripted = self.rcpt_replies.get(address)
        reply = scripted.pop(0) if scripted else "250 OK"
        if reply.startswith("250"):
            envelope.rcpt_tos.append(address)
        return reply

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.hang_ups > 0:
            self.hang_ups -= 1
            self.hung_up += 1
            assert isinstance(server.transport, asyncio.Transport)
            server.transport.abort()  # the message arrived whole; the answer never leaves
            return "250 OK"
        raw = envelope.original_content or envelope.content
        assert isinstance(raw, bytes)
        got = Received(str(envelope.mail_from), list(envelope.rcpt_tos), raw)
        if self.on_data is not None:
            await self.on_data(got)
        self.received.append(got)
        return "250 OK"

    def to(self, address: str) -> list[Received]:
        return [r for r in self.received if address in r.rcpt_tos]

    @property
    def settings(self) -> dict[str, object]:
        return {"outbox": {"relay": {"port": self.port, "timeout": "5s"}}}


@pytest.fixture
async def scripted_relay() -> AsyncIterator[ScriptedRelay]:
    relay = ScriptedRelay()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(relay, hostname="scripted.test", enable_SMTPUTF8=True, loop=loop),
        "127.0.0.1",
        0,
    )
    relay.port = server.sockets[0].getsockname()[1]
    yield relay
    server.close()
    await server.wait_closed()


async def smtp_raw(
    port: int,
    raw: bytes,
    *,
    mail_from: str,
    rcpt_tos: list[str],
    mail_options: list[str] | None = None,
) -> tuple[int, bytes, list[tuple[int, bytes]]]:
    """One SMTP transaction with every RCPT sent as given (duplicates too): DATA's answer and
    each RCPT's answer."""

    def send() -> tuple[int, bytes, list[tuple[int, bytes]]]:
        with smtplib.SMTP("127.0.0.1", port, timeout=60) as client:
            client.ehlo("client.test")
            code, reply = client.mail(mail_from, mail_options or [])
            assert code == 250, reply
            answers = [client.rcpt(rcpt) for rcpt in rcpt_tos]
            try:
                code, reply = client.data(raw)
            except smtplib.SMTPDataError as exc:
                error = exc.smtp_error
                return exc.smtp_code, error if isinstance(error, bytes) else error.encode(), answers
            return code, reply, answers

    return await asyncio.to_thread(send)


async def outbox(running: Running) -> list[OutboxMessage]:
    return await all_rows(running.app, OutboxMessage)


async def settled(running: Running) -> bool:
    rows = await outbox(running)
    return (
        bool(rows)
        and all(r.state is not OutboxState.PENDING for r in rows)
        and all(r.state is not OutboxState.SENDING for r in rows)
    )


async def actions(running: Running, ticket_id: int) -> list[History]:
    return [h for h in await all_rows(running.app, History) if h.ticket_id == ticket_id]


def header_block(raw: bytes) -> bytes:
    return raw.split(b"\r\n\r\n", 1)[0]


def dsn(to: str, original_message_id: str, recipient: str = "bob@customer.test") -> bytes:
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
        f"Final-Recipient: rfc822; {recipient}\r\n"
        "Action: failed\r\nStatus: 5.1.1\r\n"
        f"Diagnostic-Code: smtp; 550 5.1.1 <{recipient}>: User unknown\r\n\r\n"
        "--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"Message-ID: <{original_message_id}>\r\nSubject: whatever\r\n\r\n"
        "--B--\r\n"
    ).encode()


# ---------------------------------------------------------------------------- envelopes


async def test_same_recipient_twice_and_in_other_cases_is_one_ticket_message(
    start_daemon: StartDaemon, relay_sink: RelaySink
) -> None:
    running = await start_daemon()
    raw = build_message(message_id="<twice@customer.test>").as_bytes(policy=policy.SMTP)
    rcpts = ["support@example.com", "support@example.com", "SUPPORT@Example.COM"]
    code, _, answers = await smtp_raw(
        running.port, raw, mail_from="bob@customer.test", rcpt_tos=rcpts
    )
    assert [a[0] for a in answers] == [250, 250, 250]
    assert code == 250
    assert len(await all_rows(running.app, Ticket)) == 1
    assert len(await all_rows(running.app, Message)) == 1
    await relay_sink.wait_for(1)
    await wait_until(lambda: settled(running))
    assert len(await outbox(running)) == 1, "one auto-reply, not one per RCPT"


async def test_five_hundred_recipients_open_one_ticket(
    start_daemon: StartDaemon, relay_sink: RelaySink
) -> None:
    running = await start_daemon()
    rcpts = [f"support+r{n}@example.com" for n in range(500)]
    raw = build_message(message_id="<many@customer.test>").as_bytes(policy=policy.SMTP)
    code, _, answers = await smtp_raw(
        running.port, raw, mail_from="bob@customer.test", rcpt_tos=rcpts
    )
    assert {a[0] for a in answers} == {250}
    assert code == 250
    (ticket,) = await all_rows(running.app, Ticket)
    assert ticket.type == "ticket"
    (inbound,) = await all_rows(running.app, InboundMessage)
    assert len(inbound.rcpt_tos) == 500
    await relay_sink.wait_for(1)
    assert len(await outbox(running)) == 1


async def test_unknown_recipients_among_known_ones_are_refused_alone(
    start_daemon: StartDaemon,
) -> None:
    running = await start_daemon()
    raw = build_message().as_bytes(policy=policy.SMTP)
    rcpts = ["nobody@example.com", "support+x@example.com", "support@elsewhere.test"]
    code, _, answers = await smtp_raw(
        running.port, raw, mail_from="bob@customer.test", rcpt_tos=rcpts
    )
    assert [a[0] for a in answers] == [550, 250, 550]
    assert answers[0][1].startswith(b"5.1.1")
    assert code == 250
    (inbound,) = await all_rows(running.app, InboundMessage)
    assert inbound.rcpt_tos == ["support+x@example.com"]


async def test_eight_bit_body_without_8bitmime_is_read(start_daemon: StartDaemon) -> None:
    running = await start_daemon()
    raw = (
        "From: Zoë <zoe@customer.test>\r\nTo: support@example.com\r\n"
        "Subject: Café\r\n\r\nLe café est froid — encore.\r\n"
    ).encode()
    code, _, _ = await smtp_raw(
        running.port, raw, mail_from="zoe@customer.test", rcpt_tos=["support@example.com"]
    )
    assert code == 250
    (message,) = await all_rows(running.app, Message)
    assert message.text == "Le café est froid — encore."
    assert (await get_ticket(running.app, 1)).subject == "Café"
    (inbound,) = await all_rows(running.app, InboundMessage)
    assert inbound.raw == raw, "the raw message is kept byte for byte"


async def test_smtputf8_customer_gets_an_answer_to_their_own_address(
    start_daemon: StartDaemon, scripted_relay: ScriptedRelay
) -> None:
    running = await start_daemon(scripted_relay.settings)
    raw = (
        "From: Zoë <zoë@customer.test>\r\nTo: support@example.com\r\n"
        "Subject: Unicode everywhere\r\nMessage-ID: <utf8@customer.test>\r\n\r\nHallo.\r\n"
    ).encode()
    code, _, answers = await smtp_raw(
        running.port,
        raw,
        mail_from="zoë@customer.test",
        rcpt_tos=["support@example.com"],
        mail_options=["SMTPUTF8"],
    )
    assert answers[0][0] == 250
    assert code == 250
    ticket = await get_ticket(running.app, 1)
    assert ticket.customer.email == "zoë@customer.test"

    async def attempted() -> bool:
        rows = await outbox(running)
        return bool(rows) and rows[0].attempts >= 1 and rows[0].state is not OutboxState.SENDING

    await wait_until(attempted, within=20)
    (row,) = await outbox(running)
    assert row.rcpt_tos == ["zoë@customer.test"]
    assert row.state is OutboxState.SENT, row.last_error
    (reply,) = scripted_relay.received
    assert reply.rcpt_tos == ["zoë@customer.test"]
    assert "To: Zoë <zoë@customer.test>\r\n".encode() in reply.raw, "UTF-8, no encoded word"


# ---------------------------------------------------------------------------- long headers


async def test_subject_of_five_thousand_characters(
    start_daemon: StartDaemon, relay_sink: RelaySink
) -> None:
    running = await start_daemon()
    subject = " ".join(f"w{n:04d}" for n in range(1000))[:5000]
    message = build_message(subject=subject, message_id="<long@customer.test>")
    assert (await smtp_send(running.port, message))[0] == 250
    ticket = await get_ticket(running.app, 1)
    assert ticket.subject == subject
    (reply,) = await relay_sink.wait_for(1)
    assert all(len(line) <= 998 for line in reply.raw.split(b"\r\n")), "RFC 5322 §2.1.1"
    assert str(reply.message["Subject"]) == f"[#1] Re: {subject}"


async def test_subject_of_one_unbroken_word_is_folded(
    start_daemon: StartDaemon, relay_sink: RelaySink
) -> None:
    running = await start_daemon()
    subject = "x" * 5000
    assert (await smtp_send(running.port, build_message(subject=subject)))[0] == 250
    (reply,) = await relay_sink.wait_for(1)
    assert all(len(line) <= 998 for line in reply.raw.split(b"\r\n"))
    assert str(reply.message["Subject"]).replace(" ", "").endswith(subject)


async def test_a_thousand_references_still_thread(
    start_daemon: StartDaemon, relay_sink: RelaySink
) -> None:
    running = await start_daemon()
    await smtp_send(running.port, build_message(message_id="<first@customer.test>"))
    (auto_reply,) = await relay_sink.wait_for(1)
    ours = auto_reply.message["Message-ID"]
    references = " ".join(f"<ref{n}@elsewhere.test>" for n in range(999)) + f" {ours}"
    reply = build_message(
        subject="Re: something else entirely",
        body="Still burning.",
        message_id="<second@customer.test>",
        headers={"References": references},
    )
    assert (await smtp_send(running.port, reply))[0] == 250
    assert [m.ticket_id for m in await all_rows(running.app, Message)] == [1, 1]
    assert len(await all_rows(running.app, Ticket)) == 1


async def test_very_long_message_id_is_answered_with_a_lawful_header(
    start_daemon: StartDaemon, relay_sink: RelaySink
) -> None:
    running = await start_daemon()
    await add_agent(running.app, "alice@staff.test", "Alice Agent")
    long_id = "<" + "a" * 850 + "@customer.test>"
    assert (await smtp_send(running.port, build_message(message_id=long_id)))[0] == 250
    await relay_sink.wait_for(2)
    (notice,) = relay_sink.to("alice@staff.test")
    await answer_notice(running, notice, "alice@staff.test", "Unplug it.")
    await relay_sink.wait_for(3)
    answer = relay_sink.to("bob@customer.test")[-1]
    assert all(len(line) <= 998 for line in answer.raw.split(b"\r\n"))
    assert answer.message["In-Reply-To"] == long_id


# ---------------------------------------------------------------------------- names in our To


async def test_display_name_with_quotes_commas_and_emoji_survives_in_our_to(
    start_daemon: StartDaemon, relay_sink: RelaySink
) -> None:
    running = await start_daemon()
    raw = (
        'From: "O\'Neil, Bob \\"The Boss\\" 🔥" <bob@customer.test>\r\n'
        "To: support@example.com\r\nSubject: names\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHi\r\n"
    ).encode()
    code, _, _ = await smtp_raw(
        running.port,
        raw,
        mail_from="bob@customer.test",
        rcpt_tos=["support@example.com"],
        mail_options=["SMTPUTF8"],
    )
    assert code == 250
    (reply,) = await relay_sink.wait_for(1)
    assert header_block(reply.raw).isascii()
    (to,) = reply.message["To"].addresses
    assert to.addr_spec == "bob@customer.test"
    assert to.display_name == 'O\'Neil, Bob "The Boss" 🔥'
    assert reply.rcpt_tos == ["bob@customer.test"]


async def test_name_with_line_breaks_and_a_bcc_cannot_add_recipients(
    start_daemon: StartDaemon, relay_sink: RelaySink
) -> None:
    running = await start_daemon()
    raw = (
        b"From: =?utf-8?b?"
        + __import__("base64").b64encode("Eve\u2028Bcc: x@evil.test\r\nCc: y@evil.test".encode())
        + b"?= <eve@customer.test>\r\n"
        b"To: support@example.com\r\n"
        b"Subject: =?utf-8?q?a=0Abcc=3A_z=40evil=2Etest?=\r\n\r\nbody\r\n"
    )
    assert (await smtp_send(running.port, raw, mail_from="eve@customer.test"))[0] == 250
    (reply,) = await relay_sink.wait_for(1)
    headers = header_block(reply.raw).lower()
    assert b"\r\nbcc:" not in headers
    assert b"\r\ncc:" not in headers
    assert reply.message["Cc"] is None
    assert reply.rcpt_tos == ["eve@customer.test"]


# ---------------------------------------------------------------------------- threading


async def test_references_outweigh_another_tickets_subject_tag(
    start_daemon: StartDaemon, relay_sink: RelaySink
) -> None:
    running = await start_daemon()
    await smtp_send(running.port, build_message(subject="First", message_id="<a@customer.test>"))
    await smtp_send(running.port, build_message(subject="Second", message_id="<b@customer.test>"))
    await relay_sink.wait_for(2)
    reply_to_a = relay_sink.received[0].message["Message-ID"]
    assert "[#1]" in relay_sink.received[0].message["Subject"]
    mixed = build_message(
        subject="Re: [#2] Second",
        body="This is about the first one.",
        message_id="<c@customer.test>",
        in_reply_to=reply_to_a,
    )
    assert (await smtp_send(running.port, mixed))[0] == 250
    assert [m.ticket_id for m in await all_rows(running.app, Message)] == [1, 2, 1]


async def test_participant_in_other_case_joins_by_subject_tag(
    start_daemon: StartDaemon,
) -> None:
    running = await start_daemon()
    await smtp_send(running.port, build_message())
    again = build_message(
        sender="Bob <BOB@Customer.TEST>", subject="Re: [#1] Printer is on fire", body="Still."
    )
    assert (await smtp_send(running.port, again, mail_from="BOB@Customer.TEST"))[0] == 250
    assert [m.ticket_id for m in await all_rows(running.app, Message)] == [1, 1]
    assert len(await all_rows(running.app, Ticket)) == 1


async def test_stranger_with_tag_and_bare_plus_address_opens_a_new_ticket(
    start_daemon: StartDaemon,
) -> None:
    running = await start_daemon()
    await smtp_send(running.port, build_message())
    stranger = build_message(
        sender="Mallory <mallory@evil.test>",
        to="support+1@example.com",
        subject="[#1] please add me",
        headers={"Cc": "bob@customer.test"},
    )
    assert (await smtp_send(running.port, stranger, mail_from="mallory@evil.test"))[0] == 250
    assert [m.ticket_id for m in await all_rows(running.app, Message)] == [1, 2]


# ---------------------------------------------------------------------------- bounces


async def test_bounce_to_a_forged_return_path_falls_back_on_the_message_id(
    start_daemon: StartDaemon, relay_sink: RelaySink
) -> None:
    running = await start_daemon()
    await smtp_send(running.port, build_message())
    (auto_reply,) = await relay_sink.wait_for(1)
    forged = "support+bounce-1-aaaaaaaaaaaa@example.com"
    original = auto_reply.message["Message-ID"].strip("<>")
    code, _ = await smtp_send(
        running.port, dsn(forged, original), mail_from="<>", rcpt_tos=[forged]
    )
    assert code == 250
    (row,) = await outbox(running)
    assert row.state is OutboxState.FAILED
    assert len(await all_rows(running.app, Ticket)) == 1


async def test_bounce_to_a_forged_return_path_quoting_nothing_of_ours_changes_nothing(
    start_daemon: StartDaemon, relay_sink: RelaySink
) -> None:
    running = await start_daemon()
    await smtp_send(running.port, build_message())
    await relay_sink.wait_for(1)
    await wait_until(lambda: settled(running))
    forged = "support+bounce-1-aaaaaaaaaaaa@example.com"
    code, _ = await smtp_send(
        running.port, dsn(forged, "nothing@elsewhere.test"), mail_from="<>", rcpt_tos=[forged]
    )
    assert code == 250
    (row,) = await outbox(running)
    assert row.state is OutboxState.SENT
    assert len(await all_rows(running.app, Ticket)) == 1
    inbound = (await all_rows(running.app, InboundMessage))[-1]
    assert inbound.automatic == "bounce"


async def test_bounce_to_a_return_path_of_no_row_falls_back_on_the_message_id(
    start_daemon: StartDaemon, relay_sink: RelaySink
) -> None:
    running = await start_daemon()
    await smtp_send(running.port, build_message())
    (auto_reply,) = await relay_sink.wait_for(1)
    gone = return_path(running.app.signer, "support@example.com", 4242)
    original = auto_reply.message["Message-ID"].strip("<>")
    code, _ = await smtp_send(running.port, dsn(gone, original), mail_from="<>", rcpt_tos=[gone])
    assert code == 250
    assert len(await all_rows(running.app, Ticket)) == 1
    (row,) = await outbox(running)
    assert row.state is OutboxState.FAILED


async def test_mail_to_the_return_path_of_no_row_opens_no_ticket(
    start_daemon: StartDaemon,
) -> None:
    running = await start_daemon()
    gone = return_path(running.app.signer, "support@example.com", 77)
    away = build_message(subject="I am away", message_id="<away@customer.test>")
    assert (await smtp_send(running.port, away, rcpt_tos=[gone]))[0] == 250
    assert await all_rows(running.app, Ticket) == []
    (inbound,) = await all_rows(running.app, InboundMessage)
    assert inbound.state is InboundState.STORED_ONLY


async def test_bounce_of_a_notice_to_an_agent_does_not_mail_the_agent_again(
    start_daemon: StartDaemon, relay_sink: RelaySink
) -> None:
    running = await start_daemon()
    await add_agent(running.app, "alice@staff.test", "Alice")
    await smtp_send(running.port, build_message())
    await relay_sink.wait_for(2)
    (notice,) = relay_sink.to("alice@staff.test")
    bounce = dsn(notice.mail_from, "x@y", recipient="alice@staff.test")
    code, _ = await smtp_send(running.port, bounce, mail_from="<>", rcpt_tos=[notice.mail_from])
    assert code == 250
    rows = await outbox(running)
    notice_row = next(r for r in rows if r.rcpt_tos == ["alice@staff.test"])
    assert notice_row.state is OutboxState.FAILED
    assert "delivery_failed" in [h.action for h in await actions(running, 1)]
    assert len(rows) == 2, "nothing more is sent to the mailbox that bounced"


# ---------------------------------------------------------------------------- the relay


async def test_relay_answering_452_then_250_delivers_once_after_the_backoff(
    start_daemon: StartDaemon, relay_sink: RelaySink, clock: ManualClock
) -> None:
    relay_sink.replies = ["452 4.3.1 Insufficient system storage"]
    running = await start_daemon(clock=clock)
    assert (await smtp_send(running.port, build_message()))[0] == 250

    async def first_attempt() -> bool:
        rows = await outbox(running)
        return bool(rows) and rows[0].attempts == 1 and rows[0].state is OutboxState.PENDING

    await wait_until(first_attempt)
    (row,) = await outbox(running)
    assert row.next_attempt_at == clock.now() + timedelta(minutes=1)
    assert "452" in row.last_error
    clock.advance(timedelta(minutes=1, seconds=1))
    running.daemon.sender.wake()
    await relay_sink.wait_for(1)
    await wait_until(lambda: settled(running))
    (row,) = await outbox(running)
    assert (row.state, row.attempts) == (OutboxState.SENT, 2)
    clock.advance(timedelta(hours=5))
    assert await running.daemon.sender.run_once() == 0
    assert len(relay_sink.received) == 1


async def test_relay_hanging_up_mid_data_is_retried(
    start_daemon: StartDaemon, scripted_relay: ScriptedRelay, clock: ManualClock
) -> None:
    scripted_relay.hang_ups = 1
    running = await start_daemon(scripted_relay.settings, clock=clock)
    assert (await smtp_send(running.port, build_message()))[0] == 250

    async def first_attempt() -> bool:
        rows = await outbox(running)
        return bool(rows) and rows[0].attempts == 1 and rows[0].state is OutboxState.PENDING

    await wait_until(first_attempt, within=20)
    assert scripted_relay.hung_up == 1
    (row,) = await outbox(running)
    assert row.last_error
    clock.advance(timedelta(minutes=1, seconds=1))
    running.daemon.sender.wake()
    await wait_until(lambda: settled(running), within=20)
    (row,) = await outbox(running)
    assert (row.state, row.attempts) == (OutboxState.SENT, 2)
    assert len(scripted_relay.received) == 1


async def _ticket_with_cc_and_agent_answer(running: Running, relay: ScriptedRelay) -> OutboxMessage:
    """Ticket 1 from Bob with Carol in Cc; Alice answers it; the answer's outbox row."""
    await add_agent(running.app, "alice@staff.test", "Alice Agent")
    first = build_message(message_id="<cc@customer.test>", headers={"Cc": "carol@customer.test"})
    assert (await smtp_send(running.port, first))[0] == 250

    async def notice_arrived() -> bool:
        return bool(relay.to("alice@staff.test"))

    await wait_until(notice_arrived, within=20)
    (notice,) = relay.to("alice@staff.test")
    await answer_notice(running, notice, "alice@staff.test", "Unplug it, both of you.")
    answer = next(r for r in await outbox(running) if r.purpose == "agent_reply")
    assert answer.rcpt_tos == ["bob@customer.test", "carol@customer.test"]
    await wait_until(lambda: settled(running), within=20)
    return answer


async def test_relay_refusing_the_cc_with_550_is_recorded_on_the_ticket(
    start_daemon: StartDaemon, scripted_relay: ScriptedRelay
) -> None:
    scripted_relay.rcpt_replies["carol@customer.test"] = ["550 5.1.1 No such user carol"] * 5
    running = await start_daemon(scripted_relay.settings)
    answer = await _ticket_with_cc_and_agent_answer(running, scripted_relay)
    (delivered,) = [r for r in scripted_relay.to("bob@customer.test") if "Unplug" in r.text]
    assert delivered.rcpt_tos == ["bob@customer.test"]
    failures = [h for h in await actions(running, 1) if h.action == "delivery_failed"]
    row = next(r for r in await outbox(running) if r.id == answer.id)
    assert failures, f"outbox row {row.id}: {row.state} {row.last_error!r}"
    assert "carol@customer.test" in str(failures[0].details)
    assert "No such user carol" in str(failures[0].details)


async def test_relay_deferring_one_recipient_with_452_retries_that_recipient(
    start_daemon: StartDaemon, scripted_relay: ScriptedRelay, clock: ManualClock
) -> None:
    scripted_relay.rcpt_replies["bob@customer.test"] = [
        "250 OK",  # the auto-reply gets through
        "452 4.2.2 Mailbox full, try later",  # Alice's answer is deferred for Bob alone
    ]
    running = await start_daemon(scripted_relay.settings, clock=clock)
    await add_agent(running.app, "alice@staff.test", "Alice Agent")
    first = build_message(message_id="<cc@customer.test>", headers={"Cc": "carol@customer.test"})
    assert (await smtp_send(running.port, first))[0] == 250

    async def notice_arrived() -> bool:
        return bool(scripted_relay.to("alice@staff.test"))

    await wait_until(notice_arrived, within=20)
    (notice,) = scripted_relay.to("alice@staff.test")
    await answer_notice(running, notice, "alice@staff.test", "Unplug it, both of you.")

    async def carol_served() -> bool:
        return any("Unplug" in r.text for r in scripted_relay.to("carol@customer.test"))

    await wait_until(carol_served, within=20)
    await asyncio.sleep(0.5)  # the sender records the attempt
    clock.advance(timedelta(hours=1))
    running.daemon.sender.wake()
    await wait_until(lambda: settled(running), within=20)
    answers_to_bob = [r for r in scripted_relay.to("bob@customer.test") if "Unplug" in r.text]
    answers_to_carol = [r for r in scripted_relay.to("carol@customer.test") if "Unplug" in r.text]
    assert len(answers_to_bob) == 1, "retried for Bob, once"
    assert len(answers_to_carol) == 1, "and not again for Carol"
    replies = [r for r in await outbox(running) if r.purpose == "agent_reply"]
    assert [r.rcpt_tos for r in replies] == [
        ["bob@customer.test", "carol@customer.test"],
        ["bob@customer.test"],
    ]
    assert all(r.state is OutboxState.SENT for r in replies)


async def test_relay_refusing_every_recipient_with_550_fails_the_mail(
    start_daemon: StartDaemon, scripted_relay: ScriptedRelay
) -> None:
    scripted_relay.rcpt_replies["bob@customer.test"] = ["550 5.1.1 No such user bob"]
    running = await start_daemon(scripted_relay.settings)
    assert (await smtp_send(running.port, build_message()))[0] == 250
    await wait_until(lambda: settled(running), within=20)
    (row,) = await outbox(running)
    assert row.state is OutboxState.FAILED
    assert "No such user bob" in row.last_error
    assert "delivery_failed" in [h.action for h in await actions(running, 1)]


async def test_bounce_arriving_before_the_relay_answers_is_not_undone(
    start_daemon: StartDaemon, scripted_relay: ScriptedRelay
) -> None:
    holder: dict[str, Running] = {}

    async def bounce_at_once(got: Received) -> None:
        """Like a relay whose next hop refuses at once: the DSN is back before our 250."""
        running = holder["running"]
        original = got.message["Message-ID"].strip("<>")
        code, _ = await smtp_send(
            running.port, dsn(got.mail_from, original), mail_from="<>", rcpt_tos=[got.mail_from]
        )
        assert code == 250

    scripted_relay.on_data = bounce_at_once
    running = await start_daemon(scripted_relay.settings)
    holder["running"] = running
    assert (await smtp_send(running.port, build_message()))[0] == 250
    await wait_until(lambda: settled(running), within=20)
    assert "delivery_failed" in [h.action for h in await actions(running, 1)]
    (row,) = await outbox(running)
    assert row.state is OutboxState.FAILED, "the ticket's history says it failed"


async def test_row_left_sending_by_a_crash_is_sent_once_after_the_lease(
    start_daemon: StartDaemon, relay_sink: RelaySink, clock: ManualClock
) -> None:
    relay_sink.replies = ["421 4.3.2 Shutting down"]
    first = await start_daemon(clock=clock)
    assert (await smtp_send(first.port, build_message()))[0] == 250

    async def attempted() -> bool:
        rows = await outbox(first)
        return bool(rows) and rows[0].attempts == 1 and rows[0].state is OutboxState.PENDING

    await wait_until(attempted)
    await first.daemon.stop()
    # What a process killed in the middle of a delivery leaves behind.
    async with first.app.db.transaction() as session:
        row = await session.get(OutboxMessage, 1)
        assert row is not None
        row.state = OutboxState.SENDING
        row.locked_until = clock.now() + timedelta(minutes=5)
        row.attempts = 2
    await first.app.db.dispose()  # that connection was opened after the daemon stopped
    second = await start_daemon(clock=clock)
    assert await second.daemon.sender.run_once() == 0, "the lease still holds"
    clock.advance(timedelta(minutes=5, seconds=1))
    second.daemon.sender.wake()
    await relay_sink.wait_for(1)
    await wait_until(lambda: settled(second))
    (row,) = await outbox(second)
    assert (row.state, row.attempts) == (OutboxState.SENT, 3)
    clock.advance(timedelta(hours=3))
    assert await second.daemon.sender.run_once() == 0
    assert len(relay_sink.received) == 1


# ---------------------------------------------------------------------------- what we send


async def test_every_automatic_mail_carries_the_loop_headers_and_a_verp_return_path(
    start_daemon: StartDaemon, relay_sink: RelaySink
) -> None:
    running = await start_daemon()
    await add_agent(running.app, "alice@staff.test", "Alice Agent")
    await smtp_send(running.port, build_message())
    received = await relay_sink.wait_for(2)
    rows = {r.id: r for r in await outbox(running)}
    for got in received:
        assert got.message["Auto-Submitted"] in ("auto-replied", "auto-generated")
        assert got.message["X-Auto-Response-Suppress"] == "All"
        assert got.mail_from.startswith("support+bounce-")
        assert got.mail_from in {row.mail_from for row in rows.values()}


# ---------------------------------------------------------------------------- machines


@pytest.mark.parametrize(
    ("headers", "sender", "mail_from"),
    [
        ({"Auto-Submitted": "auto-notified"}, "bob@customer.test", "bob@customer.test"),
        ({"Auto-Submitted": "AUTO-GENERATED"}, "bob@customer.test", "bob@customer.test"),
        ({"Precedence": "junk"}, "bob@customer.test", "bob@customer.test"),
        ({"Precedence": "Bulk"}, "bob@customer.test", "bob@customer.test"),
        ({"Precedence": "list"}, "bob@customer.test", "bob@customer.test"),
        ({"List-Id": "News <news.customer.test>"}, "bob@customer.test", "bob@customer.test"),
        (
            {"List-Unsubscribe": "<mailto:u@customer.test>"},
            "bob@customer.test",
            "bob@customer.test",
        ),
        ({"X-Auto-Response-Suppress": "OOF, AutoReply"}, "bob@customer.test", "bob@customer.test"),
        ({"X-Autoreply": "yes"}, "bob@customer.test", "bob@customer.test"),
        ({"X-Autogenerated": "Reply"}, "bob@customer.test", "bob@customer.test"),
        ({}, "bob@customer.test", "<>"),
        ({}, "MAILER-DAEMON@customer.test", "mailer-daemon@customer.test"),
        ({}, "Postmaster@customer.test", "postmaster@customer.test"),
        ({}, "no-reply@customer.test", "no-reply@customer.test"),
    ],
)
async def test_machines_are_never_answered(
    start_daemon: StartDaemon,
    relay_sink: RelaySink,
    headers: dict[str, str],
    sender: str,
    mail_from: str,
) -> None:
    running = await start_daemon()
    await add_agent(running.app, "alice@staff.test", "Alice")
    message = build_message(sender=sender, subject="Status report", headers=headers)
    assert (await smtp_send(running.port, message, mail_from=mail_from))[0] == 250
    # Everything the message caused is committed before the 250: the outbox is final.
    queued = [r.rcpt_tos for r in await outbox(running)]
    assert all(rcpts == ["alice@staff.test"] for rcpts in queued), queued
    assert len(queued) == len(await all_rows(running.app, Ticket)), "the agents hear of it"


async def test_auto_submitted_no_is_a_person(
    start_daemon: StartDaemon, relay_sink: RelaySink
) -> None:
    running = await start_daemon()
    message = build_message(headers={"Auto-Submitted": "no"})
    assert (await smtp_send(running.port, message))[0] == 250
    (reply,) = await relay_sink.wait_for(1)
    assert reply.rcpt_tos == ["bob@customer.test"]


async def test_relay_refusing_a_notice_to_an_agent_does_not_loop(
    start_daemon: StartDaemon, scripted_relay: ScriptedRelay
) -> None:
    scripted_relay.rcpt_replies["alice@staff.test"] = ["550 5.1.1 No such user alice"] * 5
    running = await start_daemon(scripted_relay.settings)
    await add_agent(running.app, "alice@staff.test", "Alice")
    assert (await smtp_send(running.port, build_message()))[0] == 250
    await wait_until(lambda: settled(running), within=20)
    await asyncio.sleep(1.5)  # a poll of the sender, in case anything more was queued
    rows = await outbox(running)
    assert [r.rcpt_tos for r in rows] == [["bob@customer.test"], ["alice@staff.test"]]
    assert rows[1].state is OutboxState.FAILED


# ---------------------------------------------------------------------------- odd messages


@pytest.mark.parametrize(
    "raw",
    [
        b"From: undisclosed-recipients:;\r\nTo: support@example.com\r\nSubject: group\r\n\r\nx\r\n",
        b"From: bob@customer.test\r\nTo: support@example.com\r\nSubject: a\x00b\r\n\r\nnul\r\n",
        b"From: bob@customer.test\r\nTo: support@example.com\r\nDate: Mon, 99 Foo 99999\r\n"
        b"Subject: bad date\r\n\r\nx\r\n",
        b"From: bob@customer.test\r\nTo: support@example.com\r\nSubject:    \r\n\r\nblank\r\n",
        b"From: bob@customer.test\r\nTo: support@example.com\r\nSubject: two ids\r\n"
        b"Message-ID: <one@customer.test>\r\nMessage-ID: <two@customer.test>\r\n\r\nx\r\n",
        b"From: bob@customer.test\r\nTo: support@example.com\r\nSubject: many cc\r\n"
        + b"Cc: "
        + b",\r\n ".join(f"p{n}@customer.test".encode() for n in range(300))
        + b"\r\n\r\nx\r\n",
        b"From: bob@customer.test\r\nTo: support@example.com\r\nSubject: att\r\n"
        b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nsee file\r\n"
        b"--b\r\nContent-Type: application/octet-stream\r\n"
        b'Content-Disposition: attachment; filename="' + b"f" * 600 + b'.bin\r\n x.exe"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\nAAEC\r\n--b--\r\n",
        b"From: =?x-unknown?q?B=F6b?= <bob@customer.test>\r\nTo: support@example.com\r\n"
        b"Subject: =?utf-8?b?!!!?=\r\nIn-Reply-To: <>\r\nReferences: < >\r\n\r\nx\r\n",
        b"From: bob@customer.test\r\nTo: support@example.com\r\n"
        b"Subject: Re: [#0] [#99999999999]\r\n\r\nx\r\n",
    ],
    ids=[
        "group-from",
        "nul-subject",
        "bad-date",
        "blank-subject",
        "two-message-ids",
        "300-cc",
        "long-filename",
        "broken-encoded-words",
        "impossible-tags",
    ],
)
async def test_odd_message_gets_a_ticket(start_daemon: StartDaemon, raw: bytes) -> None:
    running = await start_daemon()
    code, _ = await smtp_send(running.port, raw, mail_from="bob@customer.test")
    assert code == 250
    (inbound,) = await all_rows(running.app, InboundMessage)
    assert inbound.state is InboundState.PROCESSED, (inbound.reason, inbound.error[-800:])
    (ticket,) = await all_rows(running.app, Ticket)
    assert ticket.customer.email == "bob@customer.test"


# ---------------------------------------------------------------------------- more edges


async def test_declared_size_over_the_limit_is_refused_at_mail_from(
    start_daemon: StartDaemon,
) -> None:
    running = await start_daemon({"smtp": {"max_message_size": "20KB"}})

    def declare() -> tuple[int, bytes]:
        with smtplib.SMTP("127.0.0.1", running.port, timeout=30) as client:
            client.ehlo("client.test")
            return client.mail("bob@customer.test", ["SIZE=10000000"])

    code, _ = await asyncio.to_thread(declare)
    assert code == 552
    assert await all_rows(running.app, InboundMessage) == []


async def test_bounce_to_an_upper_cased_return_path_is_matched(
    start_daemon: StartDaemon, relay_sink: RelaySink
) -> None:
    running = await start_daemon()
    await smtp_send(running.port, build_message())
    (auto_reply,) = await relay_sink.wait_for(1)
    shouting = auto_reply.mail_from.upper()
    code, _ = await smtp_send(
        running.port, dsn(shouting, "x@y"), mail_from="<>", rcpt_tos=[shouting]
    )
    assert code == 250
    (row,) = await outbox(running)
    assert row.state is OutboxState.FAILED
    assert len(await all_rows(running.app, Ticket)) == 1


async def test_markup_in_subject_and_name_is_escaped_in_our_html(
    start_daemon: StartDaemon, relay_sink: RelaySink
) -> None:
    running = await start_daemon()
    message = build_message(
        sender='"<b>Bob</b>" <bob@customer.test>', subject='<img src=x onerror="alert(1)">'
    )
    assert (await smtp_send(running.port, message))[0] == 250
    (reply,) = await relay_sink.wait_for(1)
    assert reply.html is not None
    assert "<img" not in reply.html
    assert "<b>Bob" not in reply.html
    assert "&lt;img" in reply.html


async def test_another_senders_mail_reusing_a_message_id_is_not_a_duplicate(
    start_daemon: StartDaemon,
) -> None:
    running = await start_daemon()
    first = build_message(message_id="<1@localhost>", subject="Scanner A jammed")
    assert (await smtp_send(running.port, first))[0] == 250
    second = build_message(
        sender="Carol <carol@other.test>",
        message_id="<1@localhost>",
        subject="Our invoice is wrong",
        body="Please fix invoice 42.",
    )
    assert (await smtp_send(running.port, second, mail_from="carol@other.test"))[0] == 250
    messages = await all_rows(running.app, Message)
    assert [m.from_address for m in messages] == ["bob@customer.test", "carol@other.test"]


async def test_mail_delivered_in_a_batch_is_not_sent_again_when_a_failure_rule_breaks(
    start_daemon: StartDaemon,
    scripted_relay: ScriptedRelay,
    clock: ManualClock,
    tmp_path: Path,
) -> None:
    broken = tmp_path / "templates" / "types" / "ticket" / "agent"
    broken.mkdir(parents=True)
    (broken / "delivery_failed.txt.j2").write_text("Hello {{ no_such_variable }}")
    scripted_relay.rcpt_replies["bob@customer.test"] = ["550 5.1.1 No such user bob"] * 10
    running = await start_daemon(
        {**scripted_relay.settings, "templates": {"dir": str(tmp_path / "templates")}},
        clock=clock,
    )
    await add_agent(running.app, "alice@staff.test", "Alice")
    assert (await smtp_send(running.port, build_message()))[0] == 250

    async def notice_delivered() -> bool:
        return bool(scripted_relay.to("alice@staff.test"))

    await wait_until(notice_delivered, within=20)
    await asyncio.sleep(1)  # the batch is settled (or not)
    for _ in range(3):
        clock.advance(timedelta(minutes=6))  # past the sender's lease
        running.daemon.sender.wake()
        await asyncio.sleep(1)
    assert len(scripted_relay.to("alice@staff.test")) == 1, "the notice was sent again"


@pytest.mark.parametrize(
    "subject",
    ["Absence request for next week", "Out of office printer is broken", "Auto: windscreen claim"],
)
async def test_a_persons_subject_that_looks_automatic_still_opens_a_ticket(
    start_daemon: StartDaemon, subject: str
) -> None:
    running = await start_daemon()
    await add_agent(running.app, "alice@staff.test", "Alice")
    assert (await smtp_send(running.port, build_message(subject=subject)))[0] == 250
    (inbound,) = await all_rows(running.app, InboundMessage)
    assert len(await all_rows(running.app, Ticket)) == 1, (inbound.state, inbound.reason)


async def test_a_long_line_of_dashes_does_not_stall_other_mail(
    start_daemon: StartDaemon,
) -> None:
    running = await start_daemon()
    dashes = build_message(subject="ASCII art", body="-" * 30000, message_id="<d@customer.test>")
    other = build_message(subject="Unrelated", message_id="<o@customer.test>")

    # Timed from another process: a regex holding the GIL would freeze a thread of ours too.
    client = (
        "import smtplib, sys, time\n"
        "time.sleep(1)\n"
        "started = time.monotonic()\n"
        f"with smtplib.SMTP('127.0.0.1', {running.port}, timeout=300) as c:\n"
        "    c.sendmail('carol@other.test', ['support@example.com'], sys.stdin.buffer.read())\n"
        "print(time.monotonic() - started)\n"
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        client,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    first, (out, _) = await asyncio.gather(
        smtp_send(running.port, dashes), process.communicate(other.as_bytes())
    )
    assert first[0] == 250
    elapsed = float(out)
    assert elapsed < 5, f"an unrelated message waited {elapsed:.1f} s for its 250"


async def test_success_report_is_not_recorded_as_a_delay(
    start_daemon: StartDaemon, relay_sink: RelaySink
) -> None:
    running = await start_daemon()
    await smtp_send(running.port, build_message())
    (auto_reply,) = await relay_sink.wait_for(1)
    await wait_until(lambda: settled(running))  # the relay's 250 is recorded a moment later
    report = (
        dsn(auto_reply.mail_from, "x@y")
        .replace(b"Action: failed\r\nStatus: 5.1.1", b"Action: relayed\r\nStatus: 2.0.0")
        .replace(b"550 5.1.1", b"250 2.0.0")
        .replace(b"Undelivered Mail Returned to Sender", b"Delivery Status Notification")
    )
    code, _ = await smtp_send(running.port, report, mail_from="<>", rcpt_tos=[auto_reply.mail_from])
    assert code == 250
    (row,) = await outbox(running)
    assert row.state is OutboxState.SENT
    assert "delivery_delayed" not in [h.action for h in await actions(running, 1)]


@pytest.mark.parametrize(
    "script",
    [
        [b"554 5.7.1 no relaying for you\r\n"],  # at the greeting
        [b"220 relay.test\r\n", b"250 relay.test\r\n", b"553 5.7.1 sender not allowed\r\n"],
    ],
    ids=["greeting", "sender"],
)
async def test_a_relay_that_refuses_us_fails_no_mail(
    start_daemon: StartDaemon, script: list[bytes]
) -> None:
    """A 5xx at the greeting or at MAIL FROM is the relay's setting, not the mail: every
    mail would fail at once. They wait, and go out once the relay is fixed."""
    answered = asyncio.Event()

    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for line in script:
            if line is not script[0]:
                await reader.readline()  # the client's EHLO, then its MAIL FROM
            writer.write(line)
            await writer.drain()
        answered.set()
        await reader.read(1000)  # QUIT, or nothing
        writer.close()

    server = await asyncio.start_server(refuse, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        running = await start_daemon({"outbox": {"relay": {"port": port, "timeout": "5s"}}})
        assert (await smtp_send(running.port, build_message()))[0] == 250
        await asyncio.wait_for(answered.wait(), 20)

        async def attempted() -> bool:
            rows = await outbox(running)
            return bool(rows) and rows[0].state is OutboxState.PENDING and rows[0].attempts >= 1

        await wait_until(attempted, within=20)
        (row,) = await outbox(running)
        assert "refused" in row.last_error
        assert "delivery_failed" not in [h.action for h in await actions(running, 1)]
    finally:
        server.close()
        await server.wait_closed()
