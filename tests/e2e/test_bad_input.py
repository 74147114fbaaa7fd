"""Bad input over real SMTP: each case has a defined answer, the daemon survives, nothing
accepted is lost."""

from __future__ import annotations

import asyncio
import smtplib
import socket
import sqlite3
from pathlib import Path

import pytest

from mailflow.app import App
from mailflow.db.models import InboundMessage, InboundState, Message, Ticket
from mailflow.ingest.inflight import InFlight
from mailflow.ingest.smtp import MailListener
from tests.conftest import PG_URL, MakeConfig, RelaySink, StartDaemon
from tests.support import all_rows, build_message, get_ticket, smtp_send


async def test_unknown_recipient_is_refused_at_rcpt(start_daemon: StartDaemon) -> None:
    running = await start_daemon()
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        await smtp_send(running.port, build_message(to="nobody@example.com"))
    assert refused.value.recipients["nobody@example.com"] == (550, b"5.1.1 No such mailbox here")
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        await smtp_send(running.port, build_message(to="support@elsewhere.test"))
    assert await all_rows(running.app, InboundMessage) == []


async def test_plus_address_of_a_ticket_address_is_accepted(start_daemon: StartDaemon) -> None:
    running = await start_daemon()
    code, _ = await smtp_send(running.port, build_message(to="support+billing@example.com"))
    assert code == 250


async def test_oversized_message_is_refused_with_552(start_daemon: StartDaemon) -> None:
    running = await start_daemon({"smtp": {"max_message_size": "20KB"}})
    big = build_message(body=("x" * 70 + "\n") * 500)
    code, _ = await smtp_send(running.port, big)
    assert code == 552
    assert await all_rows(running.app, InboundMessage) == []
    assert (await smtp_send(running.port, build_message()))[0] == 250


async def test_message_without_from_uses_the_envelope_sender(start_daemon: StartDaemon) -> None:
    running = await start_daemon()
    raw = b"To: support@example.com\r\nSubject: who am I\r\n\r\nno From header\r\n"
    code, _ = await smtp_send(running.port, raw, mail_from="carol@customer.test")
    assert code == 250
    ticket = await get_ticket(running.app, 1)
    assert ticket.customer.email == "carol@customer.test"


async def test_message_with_no_sender_at_all_is_quarantined(start_daemon: StartDaemon) -> None:
    running = await start_daemon()
    raw = b"To: support@example.com\r\nSubject: anonymous\r\n\r\nnobody sent this\r\n"
    code, reply = await smtp_send(running.port, raw, mail_from="<>")
    assert code == 250, "accepted and kept: the sender must not retry"
    (inbound,) = await all_rows(running.app, InboundMessage)
    assert inbound.state is InboundState.QUARANTINED
    assert inbound.reason == "no sender address in From or the envelope"
    assert inbound.raw == raw
    assert reply == f"2.0.0 Queued as {inbound.id}".encode()


async def test_malformed_mime_still_opens_a_ticket(start_daemon: StartDaemon) -> None:
    running = await start_daemon()
    raw = (
        b"From: dan@customer.test\r\nTo: support@example.com\r\nSubject: broken\r\n"
        b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="nowhere"\r\n\r\n'
        b"The boundary never appears.\r\nStill, read me.\r\n"
    )
    assert (await smtp_send(running.port, raw))[0] == 250
    (message,) = await all_rows(running.app, Message)
    assert "Still, read me." in message.full_text


async def test_undecodable_charset_is_read_as_best_it_can(start_daemon: StartDaemon) -> None:
    running = await start_daemon()
    raw = (
        b"From: eve@customer.test\r\nTo: support@example.com\r\nSubject: charset\r\n"
        b'MIME-Version: 1.0\r\nContent-Type: text/plain; charset="x-no-such-charset"\r\n'
        b"Content-Transfer-Encoding: 8bit\r\n\r\nCaf\xc3\xa9 au lait\r\n"
    )
    assert (await smtp_send(running.port, raw))[0] == 250
    (message,) = await all_rows(running.app, Message)
    assert message.text == "Café au lait"


async def test_failure_inside_the_pipeline_quarantines_with_the_traceback(
    start_daemon: StartDaemon, relay_sink: RelaySink, tmp_path: Path
) -> None:
    broken = tmp_path / "templates" / "types" / "suggestion" / "customer"
    broken.mkdir(parents=True)
    (broken / "auto_reply.txt.j2").write_text("Hello {{ no_such_variable }}")
    running = await start_daemon({"templates": {"dir": str(tmp_path / "templates")}})
    code, _ = await smtp_send(running.port, build_message(to="suggestion@example.com"))
    assert code == 250
    (inbound,) = await all_rows(running.app, InboundMessage)
    assert inbound.state is InboundState.QUARANTINED
    assert "no_such_variable" in inbound.reason
    assert "Traceback" in inbound.error
    assert await all_rows(running.app, Message) == [], "the failed transaction left nothing"
    # The daemon goes on: the next message (a type whose template works) gets its ticket.
    assert (await smtp_send(running.port, build_message()))[0] == 250
    (ticket,) = await all_rows(running.app, Ticket)
    assert ticket.type == "ticket"


@pytest.mark.skipif(PG_URL is not None, reason="holds SQLite's write lock from outside")
async def test_database_that_cannot_be_written_answers_451(
    start_daemon: StartDaemon, tmp_path: Path
) -> None:
    running = await start_daemon({"database": {"busy_timeout": "0.2s"}})
    path = running.app.db.url.database
    assert path is not None
    # Another process's write lock, taken off the loop: the daemon shares this event loop.
    blocker = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    await asyncio.to_thread(blocker.execute, "BEGIN EXCLUSIVE")
    try:
        code, _ = await smtp_send(running.port, build_message())
        assert code == 451
    finally:
        await asyncio.to_thread(blocker.execute, "ROLLBACK")
        blocker.close()
    assert await all_rows(running.app, InboundMessage) == []
    assert (await smtp_send(running.port, build_message()))[0] == 250


async def test_unreachable_database_answers_451(make_config: MakeConfig) -> None:
    """PostgreSQL down: nothing can be kept, so the client is told to try again later."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]
    config = make_config({"database": {"url": f"postgresql://postgres@127.0.0.1:{dead}/none"}})
    app = App(config)
    listener = MailListener(app, InFlight())
    await listener.start()
    port = listener.port
    try:
        code, reply = await smtp_send(port, build_message())
    finally:
        listener.stop_listening()
        listener.close_connections()
        await app.close()
    assert (code, reply) == (451, b"4.3.0 Temporary failure, please try again later")
