"""The delivery journal: a 250 written down before the database had it is recorded at the next
start and not sent again; nothing else is taken from a journal."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import update

from mailflow.clock import ManualClock
from mailflow.db.models import OutboxMessage, OutboxState
from mailflow.outbox.journal import Delivered, Journal
from tests.conftest import RelaySink, Running, StartDaemon
from tests.support import all_rows, build_message, smtp_send, wait_until

NOTE = "250 2.0.0 Ok: queued as 1A2B"


async def _left_sending(start_daemon: StartDaemon, relay: RelaySink, clock: ManualClock) -> str:
    """Outbox row 1 as a process killed between the relay's 250 and its own record leaves it:
    sending, leased for five more minutes. Returns its Message-ID."""
    first = await start_daemon(clock=clock)
    assert (await smtp_send(first.port, build_message()))[0] == 250
    await relay.wait_for(1)
    await first.daemon.stop()
    relay.received.clear()
    async with first.app.db.transaction() as session:
        message_id = await session.scalar(
            update(OutboxMessage)
            .values(
                state=OutboxState.SENDING,
                sent_at=None,
                last_error="",
                locked_until=clock.now() + timedelta(minutes=5),
            )
            .returning(OutboxMessage.message_id)
        )
    await first.app.db.dispose()  # that connection was opened after the daemon stopped
    assert message_id is not None
    return message_id


def _journal_dir(tmp_path: Path) -> Path:
    return tmp_path / "var" / "outbox-journal"


def _dead_journal(tmp_path: Path, *lines: bytes) -> Path:
    """A journal file that no process holds any more."""
    path = _journal_dir(tmp_path) / "4242-deadbeef.journal"
    path.write_bytes(b"".join(lines))
    return path


async def _row(running: Running) -> OutboxMessage:
    (row,) = await all_rows(running.app, OutboxMessage)
    return row


async def test_delivery_only_the_journal_knows_is_recorded_at_start_and_not_sent_again(
    start_daemon: StartDaemon, relay_sink: RelaySink, clock: ManualClock, tmp_path: Path
) -> None:
    message_id = await _left_sending(start_daemon, relay_sink, clock)
    journal = _dead_journal(
        tmp_path,
        Delivered(1, message_id, NOTE).line(),
        b'[2, "cut short by the kill',
    )
    second = await start_daemon(clock=clock)

    async def recorded() -> bool:
        return (await _row(second)).state is OutboxState.SENT

    await wait_until(recorded)
    row = await _row(second)
    assert (row.attempts, row.last_error) == (1, NOTE)
    assert not journal.exists(), "a dead process's journal goes once it is recorded"
    clock.advance(timedelta(hours=1))
    assert await second.daemon.sender.run_once() == 0
    assert relay_sink.received == []


async def test_journal_entry_for_another_message_is_ignored(
    start_daemon: StartDaemon, relay_sink: RelaySink, clock: ManualClock, tmp_path: Path
) -> None:
    """Say the journal outlived a database that was replaced: row 1 is another mail now."""
    await _left_sending(start_daemon, relay_sink, clock)
    _dead_journal(tmp_path, Delivered(1, "someone-else@example.com", NOTE).line())
    second = await start_daemon(clock=clock)
    assert await second.daemon.sender.run_once() == 0, "the lease still holds"
    assert (await _row(second)).state is OutboxState.SENDING
    clock.advance(timedelta(minutes=5, seconds=1))
    second.daemon.sender.wake()
    await relay_sink.wait_for(1)


async def test_journal_of_a_live_process_is_left_to_it(
    start_daemon: StartDaemon, relay_sink: RelaySink, clock: ManualClock, tmp_path: Path
) -> None:
    """Several daemons may share the directory; each records its own deliveries."""
    message_id = await _left_sending(start_daemon, relay_sink, clock)
    other = Journal(_journal_dir(tmp_path))
    other.open()
    try:
        await other.write(Delivered(1, message_id, NOTE))
        second = await start_daemon(clock=clock)
        assert await second.daemon.sender.run_once() == 0
        assert (await _row(second)).state is OutboxState.SENDING
    finally:
        other.close()
