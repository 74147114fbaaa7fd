"""A clean stop: SIGTERM refuses new transactions at once (421 on the next command), finishes
those already in DATA, gives deliveries until the stop timeout, and exits 0 in time."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiosmtplib
from aiosmtpd.smtp import SMTP, Envelope, Session

from bench.crash import query
from mailflow.db.models import InboundMessage, InboundState, OutboxMessage, OutboxState
from tests.conftest import StartDaemon
from tests.dovecot import free_port
from tests.support import all_rows, build_message, smtp_send, wait_until

STOP_TIMEOUT = 4.0
# Starting and ending a Python process, on a busy machine.
PROCESS_SLACK = 4.0


@dataclass
class Transaction:
    started: float
    message_id: str
    code: int | None = None


class SteadyLoad:
    """Clients sending one message after another until the server stops them."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.transactions: list[Transaction] = []

    async def client(self, number: int) -> None:
        try:
            client = aiosmtplib.SMTP(hostname="127.0.0.1", port=self.port, timeout=30)
            await client.connect()
        except (aiosmtplib.SMTPException, OSError):
            return
        for index in range(10**6):
            message_id = f"<steady-{number}-{index}@customer.test>"
            message = build_message(
                sender=f"c{number}x{index}@customer.test", message_id=message_id
            )
            transaction = Transaction(time.monotonic(), message_id.strip("<>"))
            self.transactions.append(transaction)
            try:
                await client.rset()
                await client.mail(str(message["From"]))
                await client.rcpt("support@example.com")
                response = await client.data(message.as_bytes())
                transaction.code = response.code
            except aiosmtplib.SMTPResponseException as exc:
                transaction.code = exc.code
                return
            except (aiosmtplib.SMTPException, OSError):
                return

    @property
    def acknowledged(self) -> list[Transaction]:
        return [t for t in self.transactions if t.code == 250]


async def _refused_at(port: int) -> float:
    """When the listening socket stopped taking connections."""
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            await writer.wait_closed()
        except OSError:
            return time.monotonic()
        await asyncio.sleep(0.01)


async def test_sigterm_under_steady_load_refuses_new_transactions_and_exits_in_time(
    tmp_path: Path, database_url: str
) -> None:
    port = free_port()
    config = tmp_path / "mailflow.toml"
    config.write_text(
        f'[database]\nurl = "{database_url}"\n[smtp]\nport = {port}\n'
        f'[outbox]\nmaildir = "sent"\n[web]\nport = 0\n[daemon]\nstop_timeout = "{STOP_TIMEOUT}s"\n'
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from mailflow.cli import main; main()",
        "--config", str(config), "run",
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    clients: list[asyncio.Task[None]] = []
    try:
        await _refused_at_first(port)
        load = SteadyLoad(port)
        clients = [asyncio.create_task(load.client(n)) for n in range(8)]
        await wait_until(lambda: _count_at_least(load, 30), within=60)
        process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        closed = await _refused_at(port)
        status = await asyncio.wait_for(process.wait(), STOP_TIMEOUT + PROCESS_SLACK)
        stopped = time.monotonic()
        await asyncio.gather(*clients)
    finally:
        for task in clients:
            task.cancel()
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert status == 0
    assert stopped - signalled < STOP_TIMEOUT + PROCESS_SLACK
    late = [t for t in load.transactions if t.started > closed and t.code == 250]
    assert late == [], f"{len(late)} transactions begun after the stop were accepted"
    assert any(t.code == 421 for t in load.transactions), "the clients went on, and were told"
    assert {t.code for t in load.transactions if t.started > closed} <= {421, None}
    kept = {row[0] for row in await query(database_url, "SELECT message_id FROM inbound_messages")}
    assert {t.message_id for t in load.acknowledged} <= kept, "a 250 was given for nothing"
    assert process.stderr is not None
    log = (await process.stderr.read()).decode()
    assert "Traceback" not in log


async def _refused_at_first(port: int) -> None:
    """Wait until the daemon listens."""
    for _ in range(600):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            await writer.wait_closed()
            return
        except OSError:
            await asyncio.sleep(0.05)
    raise AssertionError("the daemon did not start")


async def _count_at_least(load: SteadyLoad, count: int) -> bool:
    return len(load.acknowledged) >= count


async def _command(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, line: str) -> str:
    writer.write(line.encode() + b"\r\n")
    await writer.drain()
    return await _reply(reader)


async def _reply(reader: asyncio.StreamReader) -> str:
    lines = [await reader.readline()]
    while lines[-1][3:4] == b"-":
        lines.append(await reader.readline())
    return b"".join(lines).decode()


async def test_idle_session_gets_421_on_its_next_command(start_daemon: StartDaemon) -> None:
    running = await start_daemon()
    reader, writer = await asyncio.open_connection("127.0.0.1", running.port)
    await _reply(reader)
    assert (await _command(reader, writer, "EHLO client.test")).startswith("250")
    stopping = asyncio.create_task(running.daemon.stop())
    await wait_until(_listening_stopped(running.port))
    reply = await _command(reader, writer, "MAIL FROM:<bob@customer.test>")
    assert reply.startswith("421 4.3.2"), reply
    assert await reader.read() == b"", "and the connection is closed"
    await stopping
    writer.close()
    await writer.wait_closed()


def _listening_stopped(port: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            return True
        writer.close()
        await writer.wait_closed()
        return False

    return check


async def test_message_in_data_at_the_stop_is_committed_and_answered(
    start_daemon: StartDaemon,
) -> None:
    running = await start_daemon()
    reader, writer = await asyncio.open_connection("127.0.0.1", running.port)
    await _reply(reader)
    for line in (
        "EHLO client.test",
        "MAIL FROM:<bob@customer.test>",
        "RCPT TO:<support@example.com>",
    ):
        assert (await _command(reader, writer, line)).startswith("250")
    assert (await _command(reader, writer, "DATA")).startswith("354")
    head, tail = build_message().as_bytes().split(b"\n\n", 1)
    writer.write(head.replace(b"\n", b"\r\n") + b"\r\n\r\n")
    await writer.drain()
    stopping = asyncio.create_task(running.daemon.stop())
    await wait_until(_listening_stopped(running.port))
    writer.write(tail.replace(b"\n", b"\r\n") + b".\r\n")
    await writer.drain()
    reply = await _reply(reader)
    assert reply.startswith("250 2.0.0 Queued as"), reply
    assert (await _command(reader, writer, "QUIT")).startswith("421")
    await stopping
    writer.close()
    await writer.wait_closed()
    (inbound,) = await all_rows(running.app, InboundMessage)
    assert inbound.state is InboundState.PROCESSED
    await running.app.db.dispose()  # that connection was opened after the daemon stopped


class Hanging:
    """A relay that takes DATA and never answers it."""

    def __init__(self) -> None:
        self.reached = asyncio.Event()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.reached.set()
        await asyncio.Event().wait()
        return "250 OK"


async def test_delivery_hanging_at_the_stop_is_given_up_and_left_pending(
    start_daemon: StartDaemon,
) -> None:
    relay = Hanging()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(relay, hostname="relay.test"), "127.0.0.1", 0)
    settings = {
        "outbox": {"relay": {"port": server.sockets[0].getsockname()[1], "timeout": "5m"}},
        "daemon": {"stop_timeout": "2s"},
    }
    try:
        running = await start_daemon(settings)
        assert (await smtp_send(running.port, build_message()))[0] == 250
        await asyncio.wait_for(relay.reached.wait(), 10)
        started = loop.time()
        await asyncio.wait_for(running.daemon.stop(), 10)
        assert loop.time() - started < 2 + 1
        (row,) = await all_rows(running.app, OutboxMessage)
        assert (row.state, row.attempts) == (OutboxState.PENDING, 0)
        await running.app.db.dispose()
    finally:
        server.close()
