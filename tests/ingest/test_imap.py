"""IMAP against a real Dovecot: IDLE and polling, \\Seen or MOVE only after commit,
reconnects, UIDVALIDITY changes, and nothing lost or doubled when the daemon dies."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from mailflow.app import App
from mailflow.db.models import ImapFolder, InboundMessage, InboundState, Ticket
from mailflow.db.session import Database
from tests.conftest import PG_URL, StartDaemon
from tests.dovecot import PASSWORD, USER, Dovecot, free_port
from tests.ingest.conftest import imap_settings
from tests.support import all_rows, build_message, wait_until


def _raw(number: int, **fields: str) -> bytes:
    message = build_message(
        subject=f"Question {number}", message_id=f"<q{number}@customer.test>", **fields
    )
    return message.as_bytes()


async def _tickets(app: App) -> int:
    return len(await all_rows(app, Ticket))


async def _connected(app: App) -> None:
    """The watcher has selected the folder (its bookkeeping row exists)."""

    async def ready() -> bool:
        return bool(await all_rows(app, ImapFolder))

    await wait_until(ready)
    await asyncio.sleep(0.2)  # and has entered IDLE or its poll wait


async def test_idle_picks_up_new_mail_within_a_second_and_marks_it_seen(
    start_daemon: StartDaemon, dovecot: Dovecot
) -> None:
    running = await start_daemon(imap_settings(dovecot, mode="idle", poll_interval="1h"))
    await _connected(running.app)
    started = time.monotonic()
    await asyncio.to_thread(dovecot.append, _raw(1))

    async def arrived() -> bool:
        return await _tickets(running.app) == 1

    await wait_until(arrived, within=5)
    elapsed = time.monotonic() - started
    assert elapsed < 2.0, f"IDLE took {elapsed:.2f} s"
    (ticket,) = await all_rows(running.app, Ticket)
    assert ticket.subject == "Question 1"
    (inbound,) = await all_rows(running.app, InboundMessage)
    assert inbound.channel == "imap"
    assert inbound.rcpt_tos == ["support@example.com"], "routed by the To header"

    async def seen() -> bool:
        return "\\Seen" in (await asyncio.to_thread(dovecot.flags))["<q1@customer.test>"]

    await wait_until(seen)


async def test_poll_mode_reads_the_folder_on_the_scheduler(
    start_daemon: StartDaemon, dovecot: Dovecot
) -> None:
    await asyncio.to_thread(dovecot.append, _raw(1))
    running = await start_daemon(imap_settings(dovecot, mode="poll", poll_interval="0.3s"))

    async def first() -> bool:
        return await _tickets(running.app) == 1

    await wait_until(first)
    await asyncio.to_thread(dovecot.append, _raw(2))

    async def second() -> bool:
        return await _tickets(running.app) == 2

    await wait_until(second)
    flags = await asyncio.to_thread(dovecot.flags)
    assert all("\\Seen" in f for f in flags.values())


async def test_move_mode_moves_committed_mail_out_of_the_inbox(
    start_daemon: StartDaemon, dovecot: Dovecot
) -> None:
    for number in (1, 2):
        await asyncio.to_thread(dovecot.append, _raw(number))
    settings = imap_settings(dovecot, after="move", move_to="Processed")
    running = await start_daemon(settings)

    async def moved() -> bool:
        inbox = await asyncio.to_thread(dovecot.count, "INBOX")
        return inbox == 0 and await _tickets(running.app) == 2

    await wait_until(moved)
    assert await asyncio.to_thread(dovecot.count, "Processed") == 2


async def test_deliver_to_routes_every_message_of_the_mailbox(
    start_daemon: StartDaemon, dovecot: Dovecot
) -> None:
    raw = _raw(1, to="someone-else@elsewhere.test")
    await asyncio.to_thread(dovecot.append, raw)
    running = await start_daemon(imap_settings(dovecot, deliver_to="suggestion@example.com"))

    async def arrived() -> bool:
        return await _tickets(running.app) == 1

    await wait_until(arrived)
    (ticket,) = await all_rows(running.app, Ticket)
    assert ticket.type == "suggestion"


async def test_a_server_restart_is_survived(start_daemon: StartDaemon, dovecot: Dovecot) -> None:
    running = await start_daemon(imap_settings(dovecot, mode="idle"))
    await _connected(running.app)
    await asyncio.to_thread(dovecot.stop)
    await asyncio.sleep(0.5)
    await asyncio.to_thread(dovecot.start)
    await asyncio.to_thread(dovecot.append, _raw(1))

    async def arrived() -> bool:
        return await _tickets(running.app) == 1

    await wait_until(arrived, within=20)


async def test_a_uidvalidity_change_brings_nothing_in_twice(
    start_daemon: StartDaemon, dovecot: Dovecot
) -> None:
    await asyncio.to_thread(dovecot.append, _raw(1))
    first = await start_daemon(imap_settings(dovecot))

    async def one() -> bool:
        return await _tickets(first.app) == 1

    await wait_until(one)
    (state,) = await all_rows(first.app, ImapFolder)
    old_validity = state.uidvalidity
    await first.daemon.stop()

    # The server renumbers the folder (lost index, restored backup, migrated mailbox).
    await asyncio.to_thread(dovecot.stop)
    _forget_uids(dovecot.maildir)
    await asyncio.sleep(1.1)  # UIDVALIDITY is a timestamp in Dovecot
    await asyncio.to_thread(dovecot.start)
    await asyncio.to_thread(dovecot.append, _raw(2))

    second = await start_daemon(imap_settings(dovecot))

    async def settled() -> bool:
        rows = await all_rows(second.app, InboundMessage)
        return len(rows) == 3

    await wait_until(settled)
    (state,) = await all_rows(second.app, ImapFolder)
    assert state.uidvalidity != old_validity
    assert await _tickets(second.app) == 2
    states = [(i.message_id, i.state) for i in await all_rows(second.app, InboundMessage)]
    assert states.count(("q1@customer.test", InboundState.DISCARDED)) == 1


def _forget_uids(maildir: Path) -> None:
    for path in maildir.rglob("dovecot*"):
        if path.is_file():
            path.unlink()


async def test_mail_is_not_marked_until_it_is_committed(
    start_daemon: StartDaemon, dovecot: Dovecot, tmp_path: Path
) -> None:
    """The database refuses the message (its write lock is held elsewhere): the message stays
    unread on the server, and is taken once the database is back."""
    if PG_URL:
        pytest.skip("holds SQLite's write lock from outside")
    running = await start_daemon(imap_settings(dovecot) | {"database": {"busy_timeout": "0.2s"}})
    await _connected(running.app)
    path = running.app.db.url.database
    assert path is not None
    blocker = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    await asyncio.to_thread(blocker.execute, "BEGIN EXCLUSIVE")
    try:
        await asyncio.to_thread(dovecot.append, _raw(1))
        await asyncio.sleep(1.5)
        flags = await asyncio.to_thread(dovecot.flags)
        assert "\\Seen" not in flags["<q1@customer.test>"]
    finally:
        await asyncio.to_thread(blocker.execute, "ROLLBACK")
        blocker.close()

    async def arrived() -> bool:
        return await _tickets(running.app) == 1

    await wait_until(arrived, within=20)
    await wait_until(lambda: _seen(dovecot, "<q1@customer.test>"))
    assert len(await all_rows(running.app, InboundMessage)) == 1


async def _seen(dovecot: Dovecot, message_id: str) -> bool:
    return "\\Seen" in (await asyncio.to_thread(dovecot.flags))[message_id]


async def test_an_oversized_message_is_quarantined_and_not_fetched_again(
    start_daemon: StartDaemon, dovecot: Dovecot
) -> None:
    big = build_message(
        subject="big", message_id="<big@customer.test>", body=("y" * 70 + "\n") * 100
    ).as_bytes()
    await asyncio.to_thread(dovecot.append, big)
    await asyncio.to_thread(dovecot.append, _raw(2))
    running = await start_daemon(imap_settings(dovecot) | {"smtp": {"max_message_size": "4KB"}})

    async def both() -> bool:
        return len(await all_rows(running.app, InboundMessage)) == 2

    await wait_until(both)
    quarantined, processed = await all_rows(running.app, InboundMessage)
    assert quarantined.state is InboundState.QUARANTINED
    assert "over the limit of 4096; left in the mailbox" in quarantined.reason
    assert quarantined.raw.startswith(b"From: Bob"), "the headers are kept"
    assert processed.state is InboundState.PROCESSED
    await wait_until(lambda: _seen(dovecot, "<big@customer.test>"))


async def _count(db: Database, model: type[Ticket] | type[InboundMessage]) -> int:
    async with db.engine.connect() as connection:
        return int(await connection.scalar(select(func.count()).select_from(model)) or 0)


async def _mailflow_run(config: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from mailflow.cli import main; main()",
        "--config",
        str(config),
        "run",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


async def test_a_killed_daemon_loses_nothing_and_takes_nothing_twice(
    dovecot: Dovecot, tmp_path: Path, database_url: str
) -> None:
    """SIGKILL in the middle of a mailbox: whatever was fetched but not committed comes in
    after the restart, whatever was committed is not taken again."""
    total = 120
    await asyncio.to_thread(dovecot.append_many, [_raw(number) for number in range(total)])
    db = Database(database_url)

    async def tickets_at_least(count: int) -> bool:
        return await _count(db, Ticket) >= count

    config = tmp_path / "mailflow.toml"
    config.write_text(
        f'[database]\nurl = "{database_url}"\n[smtp]\nport = {free_port()}\n[web]\nport = 0\n'
        '[outbox]\nmaildir = "sent"\n'
        f'[[imap]]\nname = "box"\nhost = "127.0.0.1"\nport = {dovecot.port}\n'
        f'security = "none"\nusername = "{USER}"\npassword = "{PASSWORD}"\n'
    )
    first = await _mailflow_run(config)
    try:
        await wait_until(lambda: tickets_at_least(3), within=30)
    finally:
        first.kill()
        await first.wait()
    taken_before = await _count(db, Ticket)
    assert 3 <= taken_before < total, "killed part-way through the mailbox"

    second = await _mailflow_run(config)
    try:
        await wait_until(lambda: tickets_at_least(total), within=60)
        second.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(second.wait(), 30) == 0
    finally:
        if second.returncode is None:
            second.kill()
            await second.wait()
    assert await _count(db, Ticket) == total
    assert await _count(db, InboundMessage) == total, "nothing fetched twice"
    await db.dispose()
    flags = await asyncio.to_thread(dovecot.flags)
    assert len(flags) == total
    assert all("\\Seen" in f for f in flags.values())
