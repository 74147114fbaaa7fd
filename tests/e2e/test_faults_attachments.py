"""Many attachments, and large ones: work that grows with their number only linearly, a cap
with a defined outcome above it, content kept once, and /healthz that waits for no writer."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import sqlite3
from collections.abc import Iterator
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import event, select

from mailflow.app import App
from mailflow.config import from_mapping
from mailflow.db import migrate
from mailflow.db.models import Attachment, Blob, InboundMessage, InboundState, Ticket
from mailflow.db.session import Database
from mailflow.ingest.accept import accept
from mailflow.ingest.envelope import Channel, Envelope
from tests.conftest import PG_URL, RelaySink, Running, StartDaemon
from tests.support import (
    add_agent,
    all_rows,
    build_message,
    mailflow_cli,
    reply_address,
    smtp_send,
)

PARTS = 2000


def with_attachments(count: int, sender: str = "bob@customer.test") -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = "support@example.com"
    message["Subject"] = f"{count} notes"
    message["Message-ID"] = f"<notes-{count}-{sender}>"
    message.set_content("Notes attached.\n")
    for n in range(count):
        message.add_attachment(f"note {n}\n".encode(), "text", "plain", filename=f"n{n:05}.txt")
    return message.as_bytes(policy=policy.SMTP)


async def test_message_with_more_attachments_than_the_cap_is_kept_raw_and_quarantined(
    start_daemon: StartDaemon,
) -> None:
    running = await start_daemon({"hygiene": {"max_attachments": 1000}})
    raw = with_attachments(PARTS)
    assert (await smtp_send(running.port, raw))[0] == 250
    (inbound,) = await all_rows(running.app, InboundMessage)
    assert inbound.state is InboundState.QUARANTINED
    assert inbound.reason == (
        f"{PARTS} attachments, more than [hygiene] max_attachments (1000); kept as received"
    )
    assert inbound.raw == raw
    assert inbound.error == "", "an expected outcome, not a failure"
    assert await all_rows(running.app, Ticket) == []


@contextlib.contextmanager
def counting_statements(running: Running) -> Iterator[list[str]]:
    """The statements that touch attachments, while the block runs."""
    statements: list[str] = []

    def count(*args: Any) -> None:
        if "attachments" in args[2] or "blobs" in args[2]:  # not the sender's, meanwhile
            statements.append(str(args[2]))

    engine = running.app.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


async def test_attachments_are_stored_in_as_many_statements_for_two_thousand_as_for_ten(
    start_daemon: StartDaemon,
) -> None:
    running = await start_daemon({"hygiene": {"max_attachments": 5000}})
    with counting_statements(running) as few:
        assert (await smtp_send(running.port, with_attachments(10, "ann@customer.test")))[0] == 250
    with counting_statements(running) as many:
        assert (await smtp_send(running.port, with_attachments(PARTS)))[0] == 250
    inbound = await all_rows(running.app, InboundMessage)
    assert [i.state for i in inbound] == [InboundState.PROCESSED] * 2
    stored = await all_rows(running.app, Attachment)
    assert len(stored) == 10 + PARTS
    assert stored[-1].filename == f"n{PARTS - 1:05}.txt"
    # Batches of rows: a few statements more per thousand, never one per attachment.
    assert len(many) - len(few) <= 4, f"{len(few)} statements for 10, {len(many)} for {PARTS}"


@pytest.mark.skipif(bool(PG_URL), reason="the write lock is SQLite's")
async def test_healthz_answers_while_another_process_holds_the_write_lock(
    start_daemon: StartDaemon,
) -> None:
    running = await start_daemon({"database": {"busy_timeout": "1s"}})
    path = running.app.db.url.database
    assert path is not None
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        # Another process writing, say a CLI command; off this loop, where the daemon runs.
        await asyncio.to_thread(holder.execute, "BEGIN IMMEDIATE")
        url = f"{running.app.config.web.base_url}/healthz"
        async with aiohttp.ClientSession() as http, http.get(url) as response:
            assert response.status == 200
            assert await response.json() == {"status": "ok"}
    finally:
        holder.rollback()
        holder.close()


def _with_picture(picture: bytes, **fields: str) -> EmailMessage:
    message = build_message(**fields)
    message.add_attachment(picture, "image", "jpeg", filename="photo.jpg")
    return message


async def test_large_attachment_is_decoded_into_its_file_and_passed_on_whole(
    start_daemon: StartDaemon, relay_sink: RelaySink, tmp_path: Path
) -> None:
    running = await start_daemon()
    await add_agent(running.app, "alice@staff.test", "Alice Agent")
    photo = os.urandom(400_000)  # the message is large enough to be parsed off the loop
    assert (await smtp_send(running.port, _with_picture(photo)))[0] == 250
    async with running.app.db.transaction() as session:
        (blob,) = (await session.scalars(select(Blob))).all()
    assert (blob.size, blob.data) == (len(photo), b""), "the content is in a file, not the row"
    assert blob.sha256 == hashlib.sha256(photo).hexdigest()
    stored = tmp_path / "var" / "attachments" / blob.sha256[:2] / blob.sha256
    assert stored.read_bytes() == photo

    notice = next(r for r in await relay_sink.wait_for(2) if "alice@staff.test" in r.rcpt_tos)
    answer = _with_picture(
        photo[::-1],
        sender="alice@staff.test",
        to=reply_address(notice),
        subject="Re: " + str(notice.message["Subject"]),
        body="Here is the fixed one.",
        in_reply_to=str(notice.message["Message-ID"]),
    )
    assert (await smtp_send(running.port, answer, mail_from="alice@staff.test"))[0] == 250
    received = await relay_sink.wait_for(3)
    relayed = next(r for r in received[2:] if "bob@customer.test" in r.rcpt_tos)
    (attachment,) = relayed.message.iter_attachments()
    assert attachment.get_content() == photo[::-1], "passed on to the customer from its file"

    config = tmp_path / "cli.toml"
    config.write_text(f'[database]\nurl = "{running.app.config.database.url}"\n')
    target = tmp_path / "got.jpg"
    result = await mailflow_cli(config, "attachment", "get", "1", "-o", str(target))
    assert result.exit_code == 0, result.output
    assert target.read_bytes() == photo


@pytest.mark.skipif(bool(PG_URL), reason="where a column stands in the row matters to SQLite")
async def test_upgrade_puts_the_raw_message_last_in_the_row_and_keeps_every_row(
    tmp_path: Path,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
    db = Database(url)
    await migrate.upgrade(db, "0005")  # the schema before the raw message went last
    await db.dispose()
    app = App(from_mapping({"database": {"url": url}}, "old.toml", tmp_path))
    raws = [bytes(build_message(message_id=f"<old-{n}@customer.test>")) for n in range(3)]
    for raw in raws:  # kept by the version before
        envelope = Envelope(Channel.INJECT, "bob@customer.test", (), app.clock.now())
        assert (await accept(app, raw, envelope)).inbound_id is not None
    await app.close()

    db = Database(url)
    await migrate.upgrade(db)
    await db.dispose()
    with contextlib.closing(sqlite3.connect(tmp_path / "old.db")) as connection:
        columns = [row[1] for row in connection.execute("PRAGMA table_info(inbound_messages)")]
        assert columns[-1] == "raw"
        assert connection.execute("PRAGMA foreign_key_check").fetchall() == []
        kept = connection.execute("SELECT raw FROM inbound_messages ORDER BY id").fetchall()
        assert [row[0] for row in kept] == raws
        assert connection.execute("SELECT count(*) FROM messages").fetchone() == (3,)
