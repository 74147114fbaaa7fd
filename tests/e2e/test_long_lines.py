"""Lines past RFC 5322's 998 characters, as real mail has them, over SMTP and LMTP: accepted
up to max_message_size and kept byte for byte, never refused with 500 Line too long."""

from __future__ import annotations

import asyncio

import pytest

from mailflow.db.models import InboundMessage, Message
from tests.conftest import StartDaemon
from tests.dovecot import free_port
from tests.ingest.test_lmtp import lmtp
from tests.support import all_rows, smtp_send


def _message(line_length: int) -> bytes:
    line = ("The printer stops halfway. " * (line_length // 27 + 1))[: line_length - 1] + "!"
    return (
        "From: Bob <bob@customer.test>\r\nTo: support@example.com\r\nSubject: Long\r\n"
        f"Message-ID: <long-{line_length}@customer.test>\r\n\r\n{line}\r\n"
    ).encode()


@pytest.mark.parametrize("length", [1_000, 5_000, 200_000])
async def test_smtp_accepts_a_line_past_998_characters_and_keeps_it(
    start_daemon: StartDaemon, length: int
) -> None:
    running = await start_daemon()
    raw = _message(length)
    code, reply = await smtp_send(running.port, raw)
    assert code == 250, reply
    (inbound,) = await all_rows(running.app, InboundMessage)
    assert inbound.raw == raw
    (message,) = await all_rows(running.app, Message)
    assert len(message.text) == length


async def test_lmtp_accepts_a_line_past_998_characters(start_daemon: StartDaemon) -> None:
    port = free_port()
    running = await start_daemon({"lmtp": {"enabled": True, "port": port}})
    raw = _message(50_000)
    _, data_replies = await lmtp(  # it ends the data with CRLF . CRLF itself
        await asyncio.open_connection("127.0.0.1", port), ["support@example.com"], raw[:-2]
    )
    assert [r[:3] for r in data_replies] == ["250"]
    (inbound,) = await all_rows(running.app, InboundMessage)
    assert inbound.raw == raw


async def test_a_line_longer_than_the_size_limit_is_still_refused(
    start_daemon: StartDaemon,
) -> None:
    running = await start_daemon({"smtp": {"max_message_size": 100_000}})
    code, _ = await smtp_send(running.port, _message(150_000))
    assert code in (500, 552)
    assert await all_rows(running.app, InboundMessage) == []
