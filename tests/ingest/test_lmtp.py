"""LMTP, as Postfix or Exim speak it: one reply per recipient, over TCP or a Unix socket."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from mailflow.app import App
from mailflow.db.models import InboundMessage, Ticket
from mailflow.ingest.envelope import Channel
from mailflow.ingest.inflight import InFlight
from mailflow.ingest.smtp import MailListener
from tests.conftest import MakeConfig, StartDaemon
from tests.dovecot import free_port
from tests.support import all_rows, build_message


async def _reply(reader: asyncio.StreamReader) -> str:
    lines = []
    while True:
        line = (await reader.readline()).decode().rstrip("\r\n")
        lines.append(line)
        if len(line) < 4 or line[3] != "-":
            return "\n".join(lines)


async def lmtp(
    streams: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    rcpts: list[str],
    raw: bytes,
    mail_from: str = "bob@customer.test",
) -> tuple[list[str], list[str]]:
    """RCPT replies and the DATA replies (one per accepted recipient)."""
    reader, writer = streams

    async def say(line: str) -> str:
        writer.write(line.encode() + b"\r\n")
        await writer.drain()
        return await _reply(reader)

    assert (await _reply(reader)).startswith("220")
    assert (await say("LHLO client.test")).startswith("250")
    assert (await say(f"MAIL FROM:<{mail_from}>")).startswith("250")
    rcpt_replies = [await say(f"RCPT TO:<{rcpt}>") for rcpt in rcpts]
    accepted = sum(reply.startswith("250") for reply in rcpt_replies)
    assert (await say("DATA")).startswith("354")
    writer.write(raw.replace(b"\n.", b"\n..") + b"\r\n.\r\n")
    await writer.drain()
    data_replies = [await _reply(reader) for _ in range(accepted)]
    writer.write(b"QUIT\r\n")
    writer.close()
    return rcpt_replies, data_replies


def _raw() -> bytes:
    return (
        build_message(to="support@example.com, suggestion@example.com")
        .as_bytes()
        .replace(b"\n", b"\r\n")
    )


async def test_each_recipient_gets_its_own_reply(start_daemon: StartDaemon) -> None:
    port = free_port()
    running = await start_daemon({"lmtp": {"enabled": True, "port": port}})
    streams = await asyncio.open_connection("127.0.0.1", port)
    rcpt, data = await lmtp(
        streams, ["support@example.com", "nobody@example.com", "suggestion@example.com"], _raw()
    )
    assert rcpt[1].startswith("550 5.1.1")
    assert len(data) == 2
    (inbound,) = await all_rows(running.app, InboundMessage)
    assert data == [f"250 2.0.0 Queued as {inbound.id}"] * 2
    assert inbound.channel == "lmtp"
    (ticket,) = await all_rows(running.app, Ticket)
    assert ticket.type == "ticket", "one ticket, of the first recipient's type"


async def test_lmtp_over_a_unix_socket(start_daemon: StartDaemon) -> None:
    socket_path = Path(tempfile.mkdtemp(prefix="mailflow-lmtp-")) / "lmtp.sock"
    running = await start_daemon({"lmtp": {"enabled": True, "socket": str(socket_path)}})
    assert running.daemon.lmtp_at == str(socket_path)
    streams = await asyncio.open_unix_connection(str(socket_path))
    _, data = await lmtp(streams, ["support@example.com"], _raw())
    assert data[0].startswith("250 2.0.0 Queued as")
    await running.daemon.stop()
    assert not socket_path.exists(), "the socket is removed at shutdown"


async def test_every_recipient_is_told_to_retry_when_the_database_is_down(
    make_config: MakeConfig,
) -> None:
    dead = free_port()
    config = make_config(
        {
            "database": {"url": f"postgresql://postgres@127.0.0.1:{dead}/none"},
            "lmtp": {"enabled": True, "port": 0},
        }
    )
    app = App(config)
    listener = MailListener(app, InFlight(), Channel.LMTP)
    await listener.start()
    try:
        streams = await asyncio.open_connection("127.0.0.1", listener.port)
        _, data = await lmtp(streams, ["support@example.com", "suggestion@example.com"], _raw())
    finally:
        listener.stop_listening()
        listener.close_connections()
        await app.close()
    assert data == ["451 4.3.0 Temporary failure, please try again later"] * 2
