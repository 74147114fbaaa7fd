"""The outbox: temporary failures retry with backoff, permanent ones land on the ticket."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mailflow.app import App
from mailflow.clock import ManualClock
from mailflow.db.models import History, OutboxMessage, OutboxState
from mailflow.outbox.queue import Claimed, backoff
from mailflow.outbox.transports import MaildirTransport
from tests.conftest import RelaySink, StartDaemon
from tests.support import all_rows, build_message, smtp_send, wait_until


async def _outbox_row(app: App, state: OutboxState, attempts: int) -> OutboxMessage:
    """The first outbox row, once it has reached `state` after `attempts` deliveries."""

    async def reached() -> bool:
        rows = await all_rows(app, OutboxMessage)
        return bool(rows) and rows[0].state is state and rows[0].attempts == attempts

    await wait_until(reached)
    return (await all_rows(app, OutboxMessage))[0]


def test_backoff_doubles_up_to_the_cap() -> None:
    minute, hour = timedelta(minutes=1), timedelta(hours=1)
    delays = [backoff(n, minute, hour) for n in range(1, 9)]
    assert delays == [timedelta(minutes=m) for m in (1, 2, 4, 8, 16, 32, 60, 60)]


async def test_temporary_failure_is_retried_after_the_backoff(
    start_daemon: StartDaemon, relay_sink: RelaySink, clock: ManualClock
) -> None:
    relay_sink.replies = ["451 4.3.0 Greylisted, come back later"]
    running = await start_daemon(clock=clock)
    assert (await smtp_send(running.port, build_message()))[0] == 250
    row = await _outbox_row(running.app, OutboxState.PENDING, 1)
    assert row.next_attempt_at == clock.now() + timedelta(minutes=1)
    assert "Greylisted" in row.last_error

    clock.advance(timedelta(seconds=30))
    assert await running.daemon.sender.run_once() == 0, "not due yet"
    clock.advance(timedelta(seconds=31))
    running.daemon.sender.wake()
    (received,) = await relay_sink.wait_for(1)
    assert received.message["Subject"] == "[#1] Re: Printer is on fire"
    await _outbox_row(running.app, OutboxState.SENT, 2)


async def test_permanent_failure_is_recorded_on_the_ticket(
    start_daemon: StartDaemon, relay_sink: RelaySink, clock: ManualClock
) -> None:
    relay_sink.replies = ["550 5.1.1 No such user here"]
    running = await start_daemon(clock=clock)
    assert (await smtp_send(running.port, build_message()))[0] == 250
    row = await _outbox_row(running.app, OutboxState.FAILED, 1)
    assert "550" in row.last_error
    failures = [h for h in await all_rows(running.app, History) if h.action == "delivery_failed"]
    assert len(failures) == 1
    assert failures[0].ticket_id == 1
    assert "No such user here" in failures[0].details["error"]
    clock.advance(timedelta(days=1))
    assert await running.daemon.sender.run_once() == 0, "a permanent failure is not retried"


async def test_sender_gives_up_after_give_up_after(
    start_daemon: StartDaemon, relay_sink: RelaySink, clock: ManualClock
) -> None:
    relay_sink.replies = ["421 4.7.0 Try again later"] * 10
    running = await start_daemon({"outbox": {"give_up_after": "5m"}}, clock=clock)
    assert (await smtp_send(running.port, build_message()))[0] == 250
    await _outbox_row(running.app, OutboxState.PENDING, 1)
    clock.advance(timedelta(minutes=1))
    running.daemon.sender.wake()
    await _outbox_row(running.app, OutboxState.PENDING, 2)
    clock.advance(timedelta(minutes=2))
    running.daemon.sender.wake()
    row = await _outbox_row(running.app, OutboxState.FAILED, 3)
    assert row.last_error.startswith("gave up after 3 attempts")
    assert relay_sink.received == []


def _claimed(outbox_id: int, message_id: str | None = None) -> Claimed:
    return Claimed(
        id=outbox_id,
        ticket_id=None,
        mail_from="support@example.com",
        rcpt_tos=("bob@customer.test",),
        message_id=message_id or f"{outbox_id}@example.com",
        raw=b"Subject: hi\r\n\r\nhello\r\n",
        attempts=1,
        created_at=datetime(2026, 1, 5, tzinfo=UTC),
    )


async def test_maildir_writes_each_message_exactly_once(tmp_path: Path) -> None:
    transport = MaildirTransport(tmp_path / "sent")
    await transport.send(_claimed(7))
    note = (await transport.send(_claimed(7))).note
    await transport.send(_claimed(8))
    # A recreated database numbers its outbox from 1 again: a different mail is still written.
    await transport.send(_claimed(7, message_id="other@example.com"))
    assert note.startswith("already in")
    files = sorted(p.name for p in (tmp_path / "sent" / "new").iterdir())
    assert len(files) == 3
    assert files[0].startswith("mailflow-")
    assert all(
        (tmp_path / "sent" / "new" / f).read_bytes() == b"Subject: hi\r\n\r\nhello\r\n"
        for f in files
    )
    assert list((tmp_path / "sent" / "tmp").iterdir()) == []


@pytest.mark.parametrize("security", ["tls"])
async def test_relay_that_speaks_no_tls_is_a_temporary_failure(
    start_daemon: StartDaemon, relay_sink: RelaySink, clock: ManualClock, security: str
) -> None:
    running = await start_daemon({"outbox": {"relay": {"security": security}}}, clock=clock)
    assert (await smtp_send(running.port, build_message()))[0] == 250
    row = await _outbox_row(running.app, OutboxState.PENDING, 1)
    assert row.last_error
