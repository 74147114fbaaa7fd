"""Restarts: what was acknowledged stays, what was pending is sent once, SIGTERM exits 0."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from datetime import timedelta
from pathlib import Path

from mailflow.clock import ManualClock
from mailflow.db.models import OutboxMessage, OutboxState
from tests.conftest import RelaySink, StartDaemon
from tests.support import all_rows, build_message, get_ticket, smtp_send, wait_until


def _dead_port() -> int:
    """A loopback port with nothing listening: the relay is down."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_acknowledged_mail_is_there_after_a_restart(start_daemon: StartDaemon) -> None:
    first = await start_daemon()
    assert (await smtp_send(first.port, build_message()))[0] == 250
    await first.daemon.stop()
    second = await start_daemon()
    ticket = await get_ticket(second.app, 1)
    assert ticket.subject == "Printer is on fire"


async def test_mail_pending_at_shutdown_is_sent_once_after_restart(
    start_daemon: StartDaemon, relay_sink: RelaySink, clock: ManualClock
) -> None:
    relay_down = {"outbox": {"relay": {"port": _dead_port()}}}
    first = await start_daemon(relay_down, clock=clock)
    assert (await smtp_send(first.port, build_message()))[0] == 250

    async def attempted() -> bool:
        rows = await all_rows(first.app, OutboxMessage)
        return bool(rows) and rows[0].attempts == 1 and rows[0].state is OutboxState.PENDING

    await wait_until(attempted)
    await first.daemon.stop()

    clock.advance(timedelta(minutes=2))
    second = await start_daemon(clock=clock)
    await relay_sink.wait_for(1)

    async def settled() -> bool:
        (row,) = await all_rows(second.app, OutboxMessage)
        return row.state is OutboxState.SENT and row.attempts == 2

    await wait_until(settled)
    # Another pass of the sender, even much later, sends nothing again.
    clock.advance(timedelta(hours=3))
    assert await second.daemon.sender.run_once() == 0
    await asyncio.sleep(0.2)
    assert len(relay_sink.received) == 1


def _free_port() -> int:
    return _dead_port()


async def test_sigterm_stops_the_daemon_cleanly(tmp_path: Path, database_url: str) -> None:
    port = _free_port()
    config = tmp_path / "mailflow.toml"
    config.write_text(
        f'[database]\nurl = "{database_url}"\n[smtp]\nport = {port}\n'
        '[outbox]\nmaildir = "sent"\n[web]\nport = 0\n'
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from mailflow.cli import main; main()",
        "--config",
        str(config),
        "run",
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONWARNINGS": "error"},
    )
    try:
        for _ in range(200):
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                break
            except OSError:
                await asyncio.sleep(0.05)
        assert (await smtp_send(port, build_message()))[0] == 250
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 20) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.stderr is not None
    log = (await process.stderr.read()).decode()
    assert "daemon.stopped" in log
    assert "Traceback" not in log
    sent = list((tmp_path / "sent" / "new").iterdir())
    assert len(sent) == 1, "the auto-reply queued before SIGTERM was delivered"
