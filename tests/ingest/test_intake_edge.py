"""Edge cases of mail intake over IMAP (a real Dovecot), LMTP (real sockets) and the pipe
(`mailflow deliver` as a subprocess): odd folders, odd messages, odd servers, odd MTAs."""

from __future__ import annotations

import asyncio
import base64
import gc
import imaplib
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aioimaplib
import pytest
from sqlalchemy import func, select

from mailflow.app import App
from mailflow.db.models import ImapFolder, InboundMessage, InboundState, Ticket
from mailflow.db.session import Database
from tests.conftest import PG_URL, StartDaemon
from tests.dovecot import PASSWORD, USER, Dovecot, free_port
from tests.ingest.conftest import imap_settings
from tests.ingest.test_deliver import EX_DATAERR, EX_NOUSER, EX_OK, EX_TEMPFAIL, deliver
from tests.ingest.test_lmtp import _reply
from tests.support import all_rows, build_message, smtp_send, wait_until

sqlite_only = pytest.mark.skipif(bool(PG_URL), reason="holds SQLite's write lock from outside")


def _raw(
    number: int, *, to: str = "support@example.com", headers: dict[str, str] | None = None
) -> bytes:
    message = build_message(
        subject=f"Question {number}",
        message_id=f"<q{number}@customer.test>",
        to=to,
        headers=headers,
    )
    return message.as_bytes()


async def _inbound(app: App) -> list[InboundMessage]:
    return await all_rows(app, InboundMessage)


async def _tickets(app: App) -> list[Ticket]:
    return await all_rows(app, Ticket)


async def _wait_tickets(app: App, count: int, within: float = 10) -> list[Ticket]:
    async def enough() -> bool:
        return len(await _tickets(app)) >= count

    await wait_until(enough, within=within)
    return await _tickets(app)


async def _wait_inbound(app: App, count: int, within: float = 10) -> list[InboundMessage]:
    async def enough() -> bool:
        return len(await _inbound(app)) >= count

    await wait_until(enough, within=within)
    return await _inbound(app)


async def _connected(app: App, folders: int = 1) -> None:
    async def ready() -> bool:
        return len(await all_rows(app, ImapFolder)) >= folders

    await wait_until(ready)
    await asyncio.sleep(0.3)


def _mutf7(name: str) -> str:
    """RFC 3501 §5.1.3 modified UTF-7, as an IMAP client must spell a mailbox name."""
    out, pending = [], ""

    def flush() -> None:
        nonlocal pending
        if pending:
            encoded = base64.b64encode(pending.encode("utf-16-be")).decode().rstrip("=")
            out.append("&" + encoded.replace("/", ",") + "-")
            pending = ""

    for char in name:
        if 0x20 <= ord(char) <= 0x7E:
            flush()
            out.append("&-" if char == "&" else char)
        else:
            pending += char
    flush()
    return "".join(out)


def _quoted(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _append_to(dovecot: Dovecot, folder_wire: str, messages: list[bytes]) -> None:
    """APPEND into a folder given by its wire (mUTF-7) name, creating it."""
    with dovecot.client() as client:
        client.create(_quoted(folder_wire))
        for raw in messages:
            stamp = imaplib.Time2Internaldate(time.time())
            status, _ = client.append(_quoted(folder_wire), "", stamp, raw)
            assert status == "OK"


def _flags_of(dovecot: Dovecot, folder_wire: str = "INBOX") -> dict[str, str]:
    with dovecot.client() as client:
        client.select(_quoted(folder_wire))
        _, data = client.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
    found: dict[str, str] = {}
    for item in data:
        if isinstance(item, tuple):
            head = item[0].decode()
            message_id = item[1].decode().split(":", 1)[-1].strip()
            found[message_id] = head[
                head.find("FLAGS (") + 7 : head.find(")", head.find("FLAGS ("))
            ]
    return found


def _drop_into_maildir(dovecot: Dovecot, raw: bytes, name: str) -> None:
    """Put a file straight into the maildir, as a local delivery agent would: no IMAP
    APPEND in between to clean up NULs or line endings."""
    new = dovecot.maildir / "new"
    new.mkdir(parents=True, exist_ok=True)
    path = new / f"{int(time.time())}.{name}.mailflow-test"
    path.write_bytes(raw)
    shutil.chown(path, "mail", "mail")


def _logins(dovecot: Dovecot) -> tuple[int, int]:
    """Successful and failed IMAP logins so far, from Dovecot's log."""
    log = dovecot.log()
    ok = len(re.findall(r"imap-login: (?:Info: )?Login: user=<", log))
    failed = log.count("auth failed")
    return ok, failed


# ============================================================================ IMAP folders


async def test_a_folder_name_with_spaces_is_watched(
    start_daemon: StartDaemon, dovecot: Dovecot
) -> None:
    await asyncio.to_thread(_append_to, dovecot, "Support Requests", [_raw(1)])
    running = await start_daemon(imap_settings(dovecot, folders=["Support Requests"]))
    (ticket,) = await _wait_tickets(running.app, 1)
    assert ticket.subject == "Question 1"
    await wait_until(lambda: _seen(dovecot, "<q1@customer.test>", "Support Requests"))


async def _seen(dovecot: Dovecot, message_id: str, folder_wire: str = "INBOX") -> bool:
    flags = await asyncio.to_thread(_flags_of, dovecot, folder_wire)
    return "\\Seen" in flags.get(message_id, "")


async def test_a_folder_with_a_non_ascii_name_is_watched(
    start_daemon: StartDaemon, dovecot: Dovecot
) -> None:
    folder = "Anfragen Überweisung"
    await asyncio.to_thread(_append_to, dovecot, _mutf7(folder), [_raw(1)])
    running = await start_daemon(imap_settings(dovecot, folders=[folder]))
    (ticket,) = await _wait_tickets(running.app, 1, within=8)
    assert ticket.subject == "Question 1"


async def test_moving_to_a_folder_with_a_non_ascii_name(
    start_daemon: StartDaemon, dovecot: Dovecot
) -> None:
    await asyncio.to_thread(dovecot.append, _raw(1))
    running = await start_daemon(imap_settings(dovecot, after="move", move_to="Erledigt ✓"))
    await _wait_tickets(running.app, 1, within=8)

    async def moved() -> bool:
        return await asyncio.to_thread(dovecot.count, _quoted(_mutf7("Erledigt ✓"))) == 1

    await wait_until(moved, within=5)


async def test_a_missing_folder_is_retried_with_backoff_and_the_others_keep_working(
    start_daemon: StartDaemon, dovecot: Dovecot
) -> None:
    await asyncio.to_thread(dovecot.append, _raw(1))
    running = await start_daemon(imap_settings(dovecot, folders=["Does Not Exist", "INBOX"]))
    await _wait_tickets(running.app, 1)
    ok_before, _ = _logins(dovecot)
    await asyncio.sleep(4)
    ok_after, _ = _logins(dovecot)
    # Backoff of 1, 2, 4 s (with jitter): a handful of logins, not a tight loop.
    assert ok_after - ok_before <= 4, f"{ok_after - ok_before} logins in 4 s"
    # Once the folder appears, its mail comes in.
    await asyncio.to_thread(_append_to, dovecot, "Does Not Exist", [_raw(2)])
    await _wait_tickets(running.app, 2, within=15)


async def test_a_folder_deleted_while_watched_does_not_end_the_watcher(
    start_daemon: StartDaemon, dovecot: Dovecot
) -> None:
    await asyncio.to_thread(dovecot.append, _raw(1), "Queue")
    running = await start_daemon(imap_settings(dovecot, folders=["Queue"], mode="idle"))
    await _wait_tickets(running.app, 1)
    await asyncio.sleep(0.3)

    def delete() -> None:
        with dovecot.client() as client:
            assert client.delete("Queue")[0] == "OK"

    await asyncio.to_thread(delete)
    await asyncio.sleep(1.0)
    await asyncio.to_thread(dovecot.append, _raw(2), "Queue")
    tickets = await _wait_tickets(running.app, 2, within=8)
    assert [t.subject for t in tickets] == ["Question 1", "Question 2"]


# ============================================================================ IMAP accounts


async def test_a_wrong_password_is_retried_with_backoff_and_the_other_account_works(
    start_daemon: StartDaemon, dovecot: Dovecot
) -> None:
    settings = imap_settings(dovecot, folders=["Good"])
    bad = dict(settings["imap"][0], name="bad-box", password="wrong", folders=["INBOX"])
    settings["imap"].append(bad)
    await asyncio.to_thread(dovecot.append, _raw(1), "Good")
    loop = asyncio.get_running_loop()
    started = loop.time()
    running = await start_daemon(settings)
    await _wait_tickets(running.app, 1)

    async def retried() -> bool:  # counted by the server: our log may go anywhere
        return _logins(dovecot)[1] >= 2

    await wait_until(retried, within=20)
    failed, elapsed = _logins(dovecot)[1], loop.time() - started
    # The first retry waits 0.5–1.5 s, and each wait doubles: no tight loop.
    assert failed <= 2 + elapsed / 0.5, (failed, elapsed)
    assert not running.daemon.stopped
    # The daemon goes on answering mail.
    code, _ = await smtp_send(running.port, build_message(message_id="<smtp@customer.test>"))
    assert code == 250
    await running.daemon.stop()
    _close_leaked_imap_connections()


def _open_connections_to(port: int) -> int:
    """Established TCP connections from a client to the loopback `port` (this machine)."""
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        remote_port = int(fields[2].split(":")[1], 16)
        if remote_port == port and fields[3] == "01":
            count += 1
    return count


def _close_leaked_imap_connections() -> None:
    """Close IMAP connections the daemon dropped without closing, so that their
    ResourceWarnings do not land in a later test."""
    for thing in gc.get_objects():
        if isinstance(thing, aioimaplib.IMAP4ClientProtocol):
            transport = getattr(thing, "transport", None)
            if transport is not None and not transport.is_closing():
                transport.close()


async def test_a_refused_login_does_not_leave_connections_open(
    start_daemon: StartDaemon, dovecot: Dovecot
) -> None:
    running = await start_daemon(imap_settings(dovecot, password="wrong"))

    try:
        # Dovecot delays each refusal by a few seconds: two or three attempts in 9 s.
        deadline = time.monotonic() + 9
        while time.monotonic() < deadline:
            assert _open_connections_to(dovecot.port) <= 1, "connections piling up"
            await asyncio.sleep(0.2)
    finally:
        await running.daemon.stop()
        _close_leaked_imap_connections()


async def test_two_accounts_feed_two_types(start_daemon: StartDaemon, dovecot: Dovecot) -> None:
    settings = imap_settings(dovecot, deliver_to="support@example.com")
    ideas = dict(
        settings["imap"][0],
        name="ideas-box",
        folders=["Ideas"],
        deliver_to="suggestion@example.com",
    )
    settings["imap"].append(ideas)
    await asyncio.to_thread(dovecot.append, _raw(1, to="x@elsewhere.test"))
    await asyncio.to_thread(dovecot.append, _raw(2, to="y@elsewhere.test"), "Ideas")
    running = await start_daemon(settings)
    tickets = await _wait_tickets(running.app, 2)
    assert {(t.subject, t.type) for t in tickets} == {
        ("Question 1", "ticket"),
        ("Question 2", "suggestion"),
    }
    folders = {(f.account, f.folder) for f in await all_rows(running.app, ImapFolder)}
    assert folders == {("support-box", "INBOX"), ("ideas-box", "Ideas")}


# ============================================================================ IMAP routing


async def test_delivered_to_decides_before_to(start_daemon: StartDaemon, dovecot: Dovecot) -> None:
    """A Bcc to the suggestion address lands in the support mailbox: Delivered-To tells."""
    raw = _raw(1, to="support@example.com", headers={"Delivered-To": "suggestion@example.com"})
    await asyncio.to_thread(dovecot.append, raw)
    running = await start_daemon(imap_settings(dovecot))
    (ticket,) = await _wait_tickets(running.app, 1)
    assert ticket.type == "suggestion"


async def test_cc_routes_when_to_is_someone_else(
    start_daemon: StartDaemon, dovecot: Dovecot
) -> None:
    raw = _raw(1, to="alice@elsewhere.test", headers={"Cc": "Ideas <suggestion@example.com>"})
    await asyncio.to_thread(dovecot.append, raw)
    running = await start_daemon(imap_settings(dovecot))
    (ticket,) = await _wait_tickets(running.app, 1)
    assert ticket.type == "suggestion"


async def test_mail_for_none_of_our_addresses_is_kept_once_and_not_refetched(
    start_daemon: StartDaemon, dovecot: Dovecot
) -> None:
    await asyncio.to_thread(dovecot.append, _raw(1, to="alice@elsewhere.test"))
    await asyncio.to_thread(dovecot.append, _raw(2))
    running = await start_daemon(imap_settings(dovecot, poll_interval="0.3s", mode="poll"))
    await _wait_tickets(running.app, 1)
    await asyncio.sleep(1.5)  # a few polls
    rows = await _inbound(running.app)
    assert len(rows) == 2, [(r.message_id, r.state) for r in rows]
    await wait_until(lambda: _seen(dovecot, "<q1@customer.test>"))


async def test_a_message_already_seen_at_start_is_still_taken(
    start_daemon: StartDaemon, dovecot: Dovecot
) -> None:
    def append_seen() -> None:
        with dovecot.client() as client:
            stamp = imaplib.Time2Internaldate(time.time())
            assert client.append("INBOX", r"(\Seen)", stamp, _raw(1))[0] == "OK"

    await asyncio.to_thread(append_seen)
    await asyncio.to_thread(dovecot.append, _raw(2))
    running = await start_daemon(imap_settings(dovecot))
    tickets = await _wait_tickets(running.app, 2)
    assert sorted(t.subject for t in tickets) == ["Question 1", "Question 2"]


# ============================================================================ IMAP messages


async def test_bare_lf_and_nul_bytes_in_a_maildir_message(
    start_daemon: StartDaemon, dovecot: Dovecot
) -> None:
    await asyncio.to_thread(dovecot.append, _raw(0))  # creates the maildir
    bare_lf = (
        b"From: Bob <bob@customer.test>\nTo: support@example.com\nSubject: bare lf\n"
        b"Message-ID: <lf@customer.test>\n\nline one\nline two\n"
    )
    with_nul = (
        b"From: Bob <bob@customer.test>\r\nTo: support@example.com\r\nSubject: has\x00nul\r\n"
        b"Message-ID: <nul@customer.test>\r\n\r\nbinary\x00junk\x00here\r\n"
    )
    await asyncio.to_thread(_drop_into_maildir, dovecot, bare_lf, "lf")
    await asyncio.to_thread(_drop_into_maildir, dovecot, with_nul, "nul")
    running = await start_daemon(imap_settings(dovecot))
    rows = await _wait_inbound(running.app, 3)
    by_id = {r.message_id: r for r in rows}
    assert by_id["lf@customer.test"].state is InboundState.PROCESSED
    assert by_id["nul@customer.test"].state in (InboundState.PROCESSED, InboundState.QUARANTINED)
    await wait_until(lambda: _seen(dovecot, "<nul@customer.test>"))
    await wait_until(lambda: _seen(dovecot, "<lf@customer.test>"))


async def test_an_empty_message_is_quarantined_and_the_next_ones_still_come(
    start_daemon: StartDaemon, dovecot: Dovecot
) -> None:
    await asyncio.to_thread(dovecot.append, _raw(0))
    await asyncio.to_thread(_drop_into_maildir, dovecot, b"", "empty")
    running = await start_daemon(imap_settings(dovecot))
    await _wait_tickets(running.app, 1)
    await asyncio.to_thread(dovecot.append, _raw(2))
    await _wait_tickets(running.app, 2, within=15)
    quarantined = [r for r in await _inbound(running.app) if r.state is InboundState.QUARANTINED]
    assert len(quarantined) == 1
    assert quarantined[0].raw == b""


async def test_a_message_over_the_limit_does_not_hold_up_the_next_one(
    start_daemon: StartDaemon, dovecot: Dovecot
) -> None:
    """Quarantined and passed: the message after it is taken and marked, and neither is
    fetched again."""
    big = build_message(
        subject="big", message_id="<big@customer.test>", body=("z" * 70 + "\n") * 200
    ).as_bytes()
    await asyncio.to_thread(dovecot.append, big)
    await asyncio.to_thread(dovecot.append, _raw(2))
    running = await start_daemon(imap_settings(dovecot) | {"smtp": {"max_message_size": "4KB"}})
    await _wait_tickets(running.app, 1)
    await _wait_inbound(running.app, 2)
    await asyncio.sleep(0.5)
    flags = await asyncio.to_thread(_flags_of, dovecot)
    assert "\\Seen" in flags["<q2@customer.test>"]
    assert len(await _inbound(running.app)) == 2, "not fetched again"


# ============================================================================ IMAP timing


async def test_mail_appended_while_a_batch_is_fetched_is_taken_without_waiting(
    start_daemon: StartDaemon, dovecot: Dovecot
) -> None:
    await asyncio.to_thread(dovecot.append_many, [_raw(n) for n in range(40)])
    running = await start_daemon(imap_settings(dovecot, mode="idle", poll_interval="1h"))
    await _wait_tickets(running.app, 2, within=15)
    assert len(await _tickets(running.app)) < 40, "still in the batch"
    await asyncio.to_thread(dovecot.append, _raw(100))
    await _wait_tickets(running.app, 41, within=10)


async def test_a_big_mailbox_is_taken_in_order_and_smtp_still_answers(
    start_daemon: StartDaemon, dovecot: Dovecot
) -> None:
    total = 200
    await asyncio.to_thread(dovecot.append_many, [_raw(n) for n in range(total)])
    running = await start_daemon(imap_settings(dovecot, mode="idle"))
    await _wait_tickets(running.app, 5, within=15)
    started = time.monotonic()
    code, _ = await smtp_send(
        running.port, build_message(subject="urgent", message_id="<urgent@customer.test>")
    )
    assert code == 250
    assert time.monotonic() - started < 3, "SMTP waits for the IMAP batch"
    await _wait_tickets(running.app, total + 1, within=60)
    imap_rows = [r for r in await _inbound(running.app) if r.channel == "imap"]
    assert [r.message_id for r in imap_rows] == [f"q{n}@customer.test" for n in range(total)]
    (state,) = await all_rows(running.app, ImapFolder)
    assert state.last_uid == total


async def test_a_connection_dropped_during_idle_is_reconnected(
    start_daemon: StartDaemon, dovecot: Dovecot
) -> None:
    running = await start_daemon(imap_settings(dovecot, mode="idle", poll_interval="1h"))
    await _connected(running.app)
    ok_before, _ = _logins(dovecot)
    await asyncio.to_thread(_kick, dovecot)

    async def back() -> bool:
        return _logins(dovecot)[0] > ok_before

    await wait_until(back, within=5)
    await asyncio.to_thread(dovecot.append, _raw(1))
    await _wait_tickets(running.app, 1, within=5)


def _kick(dovecot: Dovecot) -> None:
    """The server drops the client's connection (an admin, a restart of one process, a NAT)."""
    kicked = subprocess.run(
        ["doveadm", "-c", str(dovecot.config), "kick", USER], capture_output=True, check=False
    )
    assert kicked.returncode == 0, kicked.stderr


async def test_each_dropped_connection_is_reconnected_quickly(
    start_daemon: StartDaemon, dovecot: Dovecot
) -> None:
    running = await start_daemon(
        imap_settings(dovecot, mode="poll", poll_interval="0.2s", timeout="1s")
    )
    await _connected(running.app)
    for round_ in range(4):
        ok_before, _ = _logins(dovecot)
        await asyncio.to_thread(_kick, dovecot)

        async def back(before: int = ok_before) -> bool:
            return _logins(dovecot)[0] > before

        try:
            await wait_until(back, within=5.5)
        except AssertionError as exc:
            raise AssertionError(f"no reconnect within 5.5 s after drop {round_ + 1}") from exc
        await asyncio.sleep(0.3)


# ============================================================================ SIGTERM


async def _count(db: Database, model: type[Ticket] | type[InboundMessage]) -> int:
    async with db.engine.connect() as connection:
        return int(await connection.scalar(select(func.count()).select_from(model)) or 0)


async def test_sigterm_in_the_middle_of_a_batch_marks_what_it_committed(
    dovecot: Dovecot, tmp_path: Path, database_url: str
) -> None:
    total = 80
    await asyncio.to_thread(dovecot.append_many, [_raw(n) for n in range(total)])
    db = Database(database_url)
    config = tmp_path / "mailflow.toml"
    config.write_text(
        f'[database]\nurl = "{database_url}"\n[smtp]\nport = {free_port()}\n[web]\nport = 0\n'
        '[outbox]\nmaildir = "sent"\n'
        f'[[imap]]\nname = "box"\nhost = "127.0.0.1"\nport = {dovecot.port}\n'
        f'security = "none"\nusername = "{USER}"\npassword = "{PASSWORD}"\n'
    )

    async def started(count: int) -> bool:
        return await _count(db, InboundMessage) >= count

    async def run() -> asyncio.subprocess.Process:
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

    daemon = await run()
    try:
        await wait_until(lambda: started(3), within=20)
        daemon.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(daemon.wait(), 15) == 0
    finally:
        if daemon.returncode is None:
            daemon.kill()
            await daemon.wait()
    committed = await _count(db, InboundMessage)
    assert committed < total, "stopped part-way"
    flags = await asyncio.to_thread(dovecot.flags)
    seen = sum("\\Seen" in f for f in flags.values())
    assert seen == committed, "every committed message is marked, no other one is"

    again = await run()
    try:
        await wait_until(lambda: started(total), within=40)
        again.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(again.wait(), 15) == 0
    finally:
        if again.returncode is None:
            again.kill()
            await again.wait()
    assert await _count(db, InboundMessage) == total
    await db.dispose()


# ============================================================================ LMTP


async def _lmtp_session(
    streams: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    rcpts: list[str],
    raw: bytes,
    within: float = 10,
) -> tuple[list[str], str, list[str]]:
    """RCPT replies, the reply to DATA, and one reply per accepted recipient after the dot
    (each awaited for at most `within` seconds: a missing one is a hung MTA)."""
    reader, writer = streams

    async def say(line: str) -> str:
        writer.write(line.encode() + b"\r\n")
        await writer.drain()
        return await asyncio.wait_for(_reply(reader), within)

    assert (await asyncio.wait_for(_reply(reader), within)).startswith("220")
    assert (await say("LHLO client.test")).startswith("250")
    assert (await say("MAIL FROM:<bob@customer.test>")).startswith("250")
    rcpt_replies = [await say(f"RCPT TO:<{rcpt}>") for rcpt in rcpts]
    accepted = sum(reply.startswith("250") for reply in rcpt_replies)
    data_reply = await say("DATA")
    replies: list[str] = []
    try:
        if data_reply.startswith("354"):
            writer.write(raw.replace(b"\r\n.", b"\r\n..") + b"\r\n.\r\n")
            await writer.drain()
            for _ in range(accepted):
                replies.append(await asyncio.wait_for(_reply(reader), within))
        writer.write(b"QUIT\r\n")
    finally:
        writer.close()
        await writer.wait_closed()
    return rcpt_replies, data_reply, replies


def _crlf(raw: bytes) -> bytes:
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


async def test_lmtp_with_no_valid_recipient_refuses_data_and_keeps_nothing(
    start_daemon: StartDaemon,
) -> None:
    port = free_port()
    running = await start_daemon({"lmtp": {"enabled": True, "port": port}})
    streams = await asyncio.open_connection("127.0.0.1", port)
    rcpt, data, replies = await _lmtp_session(
        streams, ["nobody@example.com", "x@elsewhere.test"], _crlf(_raw(1))
    )
    assert all(r.startswith("550") for r in rcpt)
    assert data.startswith("503") or data.startswith("554")
    assert replies == []
    assert await _inbound(running.app) == []


async def test_lmtp_with_a_hundred_recipients_answers_each_accepted_one(
    start_daemon: StartDaemon,
) -> None:
    port = free_port()
    running = await start_daemon({"lmtp": {"enabled": True, "port": port}})
    rcpts = []
    for n in range(50):
        rcpts.append(f"support+t{n}@example.com")
        rcpts.append(f"stranger{n}@example.com")
    streams = await asyncio.open_connection("127.0.0.1", port)
    rcpt, data, replies = await _lmtp_session(
        streams, rcpts, _crlf(_raw(1, to="support@example.com"))
    )
    assert [r[:3] for r in rcpt] == ["250", "550"] * 50
    assert data.startswith("354")
    (inbound,) = await _inbound(running.app)
    assert replies == [f"250 2.0.0 Queued as {inbound.id}"] * 50
    assert len(await _tickets(running.app)) == 1


async def test_lmtp_oversized_message_gets_a_reply_per_recipient(
    start_daemon: StartDaemon,
) -> None:
    port = free_port()
    await start_daemon(
        {"lmtp": {"enabled": True, "port": port}, "smtp": {"max_message_size": "4KB"}}
    )
    big = _crlf(build_message(body=("w" * 70 + "\n") * 200).as_bytes())
    streams = await asyncio.open_connection("127.0.0.1", port)
    _, _, replies = await _lmtp_session(
        streams, ["support@example.com", "suggestion@example.com"], big, within=3
    )
    assert len(replies) == 2
    assert all(r.startswith("552") for r in replies)


@sqlite_only
async def test_lmtp_on_a_unix_socket_while_the_database_is_locked(
    start_daemon: StartDaemon,
) -> None:
    socket_path = Path(tempfile.mkdtemp(prefix="mailflow-lmtp-")) / "lmtp.sock"
    running = await start_daemon(
        {
            "lmtp": {"enabled": True, "socket": str(socket_path)},
            "database": {"busy_timeout": "0.2s"},
        }
    )
    path = running.app.db.url.database
    assert path is not None
    blocker = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    await asyncio.to_thread(blocker.execute, "BEGIN EXCLUSIVE")
    try:
        streams = await asyncio.open_unix_connection(str(socket_path))
        _, _, replies = await _lmtp_session(
            streams, ["support@example.com", "suggestion@example.com"], _crlf(_raw(1))
        )
    finally:
        await asyncio.to_thread(blocker.execute, "ROLLBACK")
        blocker.close()
    assert replies == ["451 4.3.0 Temporary failure, please try again later"] * 2
    assert await _inbound(running.app) == []
    streams = await asyncio.open_unix_connection(str(socket_path))
    _, _, replies = await _lmtp_session(streams, ["support@example.com"], _crlf(_raw(1)))
    assert replies[0].startswith("250 2.0.0 Queued as")
    assert len(await _tickets(running.app)) == 1


# ============================================================================ pipe


@pytest.fixture
def pipe_config(tmp_path: Path, database_url: str) -> Path:
    path = tmp_path / "mailflow.toml"
    path.write_text(f'[database]\nurl = "{database_url}"\n[outbox]\nmaildir = "sent"\n')
    return path


def _rows(database_url: str, sql: str) -> list[tuple[object, ...]]:
    path = database_url.removeprefix("sqlite+aiosqlite:///")
    with sqlite3.connect(path) as connection:
        return list(connection.execute(sql).fetchall())


def test_deliver_with_only_whitespace_on_stdin_is_a_data_error(pipe_config: Path) -> None:
    result = deliver(pipe_config, b"\r\n\r\n  \n", "--recipient", "support@example.com")
    assert result.returncode == EX_DATAERR
    assert b"Traceback" not in result.stderr


@sqlite_only
def test_deliver_to_an_address_of_another_type(pipe_config: Path, database_url: str) -> None:
    raw = build_message(to="support@example.com").as_bytes()
    result = deliver(pipe_config, raw, "--recipient", "suggestion@example.com", "--sender", "")
    assert result.returncode == EX_OK, result.stderr
    assert _rows(database_url, "SELECT type FROM tickets") == [("suggestion",)]


@sqlite_only
def test_deliver_to_a_recipient_in_capitals(pipe_config: Path, database_url: str) -> None:
    raw = build_message().as_bytes()
    result = deliver(pipe_config, raw, "--recipient", "Support@Example.COM", "-f", "b@c.test")
    assert result.returncode == EX_OK, result.stderr
    assert _rows(database_url, "SELECT type FROM tickets") == [("ticket",)]


@pytest.mark.parametrize(
    "recipient",
    ["", "not an address", "support@", "@example.com", "support@example.com@x", "a\tb@example.com"],
)
def test_deliver_with_a_malformed_recipient_is_a_permanent_refusal(
    pipe_config: Path, recipient: str
) -> None:
    result = deliver(pipe_config, build_message().as_bytes(), "--recipient", recipient)
    assert result.returncode == EX_NOUSER, result.stderr
    assert b"Traceback" not in result.stderr


def test_deliver_with_a_non_utf8_recipient_is_a_permanent_refusal(pipe_config: Path) -> None:
    """Postfix passes the recipient's bytes as they came (SMTPUTF8 or plain junk)."""
    recipient = os.fsdecode(b"\xff\xfe@example.com")
    result = deliver(pipe_config, build_message().as_bytes(), "--recipient", recipient)
    assert result.returncode == EX_NOUSER, result.stderr
    assert b"Traceback" not in result.stderr


@sqlite_only
def test_deliver_bare_lf_and_nul_bytes(pipe_config: Path, database_url: str) -> None:
    raw = (
        b"From: Bob <bob@customer.test>\nTo: support@example.com\nSubject: odd\x00bytes\n"
        b"Message-ID: <odd@customer.test>\n\nbody\x00with nul\nand bare lf\n"
    )
    result = deliver(pipe_config, raw, "--recipient", "support@example.com", "-f", "b@c.test")
    assert result.returncode == EX_OK, result.stderr
    assert _rows(database_url, "SELECT raw FROM inbound_messages") == [(raw,)]


@sqlite_only
def test_deliver_while_the_database_is_locked_asks_the_mta_to_retry(
    tmp_path: Path, database_url: str
) -> None:
    path = tmp_path / "locked.toml"
    path.write_text(
        f'[database]\nurl = "{database_url}"\nbusy_timeout = "0.3s"\n[outbox]\nmaildir = "sent"\n'
    )
    blocker = sqlite3.connect(database_url.removeprefix("sqlite+aiosqlite:///"))
    blocker.isolation_level = None
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        result = deliver(path, build_message().as_bytes(), "--recipient", "support@example.com")
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert result.returncode == EX_TEMPFAIL, result.stderr
    assert b"Traceback" not in result.stderr
    assert _rows(database_url, "SELECT count(*) FROM inbound_messages") == [(0,)]


def test_deliver_with_an_unopenable_database_asks_the_mta_to_retry(tmp_path: Path) -> None:
    """The database path cannot be opened (here its directory is a file): try again later."""
    (tmp_path / "not-a-directory").write_text("")
    path = tmp_path / "gone.toml"
    path.write_text(
        f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path}/not-a-directory/mailflow.db"\n'
        '[outbox]\nmaildir = "sent"\n'
    )
    result = deliver(path, build_message().as_bytes(), "--recipient", "support@example.com")
    assert result.returncode == EX_TEMPFAIL, result.stderr
    assert b"try again later" in result.stderr
    assert b"Traceback" not in result.stderr
