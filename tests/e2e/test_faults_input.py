"""Hostile input that used to quarantine a message or poison the outbox: a charset that decodes
to what no mail can carry, and addresses with control characters."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner, Result

from mailflow.cli import cli
from mailflow.clock import ManualClock
from mailflow.db.models import Customer, InboundMessage, InboundState, OutboxMessage, OutboxState
from mailflow.db.session import Database
from mailflow.mail.parse import parse
from tests.conftest import RelaySink, Running, StartDaemon
from tests.support import all_rows, history_actions, smtp_send, wait_until

# UTF-7 and unicode-escape are charsets Python knows and mail clients do not; both can
# encode a lone surrogate, which no mail can carry. The parser leaves such a word as it is.
SURROGATE_SUBJECTS = (b"=?utf-7?q?+2AA-?=", b"=?unicode-escape?q?Help=5Cud800?=")


def _raw(subject: bytes, sender: bytes = b"Bob <bob@customer.test>") -> bytes:
    return (
        b"From: " + sender + b"\r\nTo: support@example.com\r\nSubject: " + subject + b"\r\n"
        b"Message-ID: <charset-1@customer.test>\r\n\r\nMy printer is on fire.\r\n"
    )


async def test_subject_decoding_to_a_lone_surrogate_still_gets_the_auto_reply(
    start_daemon: StartDaemon, relay_sink: RelaySink
) -> None:
    running = await start_daemon()
    for index, subject in enumerate(SURROGATE_SUBJECTS):
        raw = _raw(subject).replace(b"charset-1", f"charset-{index}".encode())
        sender = f"bob{index}@customer.test"
        raw = raw.replace(b"bob@customer.test", sender.encode())
        assert (await smtp_send(running.port, raw, mail_from=sender))[0] == 250
    inbound = await all_rows(running.app, InboundMessage)
    assert [(i.state, i.reason) for i in inbound] == [(InboundState.PROCESSED, "")] * 2
    replies = await relay_sink.wait_for(2)
    for reply in replies:
        assert "\ufffd" in str(reply.message["Subject"]), "the undecodable part is marked"


def _run(config: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config", str(config), *args], catch_exceptions=False)


def test_inbound_retry_processes_a_message_quarantined_for_its_subject_charset(
    tmp_path: Path, database_url: str
) -> None:
    config = tmp_path / "mailflow.toml"
    config.write_text(f'[database]\nurl = "{database_url}"\n[outbox]\nmaildir = "sent"\n')
    asyncio.run(_quarantined(database_url, _raw(SURROGATE_SUBJECTS[0])))
    listed = json.loads(_run(config, "inbound", "list", "--format", "json").output)
    assert [r["state"] for r in listed] == ["quarantined"]

    retried = _run(config, "inbound", "retry", "--all").output
    assert "accepted, ticket" in retried, retried
    listed = json.loads(_run(config, "inbound", "list", "--format", "json").output)
    assert [r["state"] for r in listed] == ["processed"]


async def _quarantined(database_url: str, raw: bytes) -> None:
    """The message as an earlier version left it: quarantined for the auto-reply it could
    not compose."""
    db = Database(database_url)
    async with db.transaction() as session:
        session.add(
            InboundMessage(
                received_at=datetime.now(UTC),
                channel="smtp",
                mail_from="bob@customer.test",
                rcpt_tos=["support@example.com"],
                message_id="charset-1@customer.test",
                size=len(raw),
                raw=raw,
                state=InboundState.QUARANTINED,
                reason="UnicodeEncodeError: 'utf-8' codec can't encode character '\\ud800'",
                decisions=[],
            )
        )
    await db.dispose()


async def _kept(running: Running, sender: bytes, mail_from: str) -> InboundMessage:
    """Send a message from `sender` (From) and `mail_from` (envelope); the row it became."""
    raw = _raw(b"Printer", sender=sender)
    assert (await smtp_send(running.port, raw, mail_from=mail_from))[0] == 250
    (inbound,) = await all_rows(running.app, InboundMessage)
    return inbound


async def test_from_with_control_characters_is_refused_when_parsed(
    start_daemon: StartDaemon, relay_sink: RelaySink
) -> None:
    running = await start_daemon()
    inbound = await _kept(running, b"Bob <bob\x01@customer.test>", "bob@customer.test")
    assert inbound.state is InboundState.PROCESSED
    assert any("no usable From" in decision for decision in inbound.decisions)
    defects = parse(inbound.raw).defects
    assert any("control character" in defect and "From" in defect for defect in defects)
    assert [c.email for c in await all_rows(running.app, Customer)] == ["bob@customer.test"]
    (reply,) = await relay_sink.wait_for(1)
    assert reply.rcpt_tos == ["bob@customer.test"]


async def test_envelope_sender_with_control_characters_is_refused_too(
    start_daemon: StartDaemon,
) -> None:
    running = await start_daemon()
    inbound = await _kept(running, b"bob\x7f@customer.test", "bob\x7f@customer.test")
    assert inbound.state is InboundState.QUARANTINED
    assert inbound.reason == "no sender address in From or the envelope"
    assert await all_rows(running.app, Customer) == []


async def test_address_the_smtp_client_refuses_fails_once_and_is_not_retried(
    start_daemon: StartDaemon, relay_sink: RelaySink, clock: ManualClock
) -> None:
    """Mail queued for an address kept before addresses were checked: the SMTP client
    refuses it before anything is sent, which no retry can change."""
    running = await start_daemon(clock=clock)
    app = running.app
    assert (await smtp_send(running.port, _raw(b"Printer")))[0] == 250
    await relay_sink.wait_for(1)
    (queued,) = await all_rows(app, OutboxMessage)
    async with app.db.transaction() as session:
        session.add(
            OutboxMessage(
                ticket_id=queued.ticket_id,
                created_at=clock.now(),
                purpose="agent_reply",
                mail_from=queued.mail_from,
                rcpt_tos=["bob\x01@customer.test"],
                message_id="poisoned-1@example.com",
                raw=queued.raw,
                state=OutboxState.PENDING,
                attempts=0,
                next_attempt_at=clock.now(),
            )
        )
    running.daemon.sender.wake()

    async def settled() -> bool:
        last = (await all_rows(app, OutboxMessage))[-1]
        return last.attempts >= 1 and last.state is not OutboxState.SENDING

    await wait_until(settled)
    poisoned = (await all_rows(app, OutboxMessage))[-1]
    assert (poisoned.state, poisoned.attempts) == (OutboxState.FAILED, 1)
    assert "control character" in poisoned.last_error
    assert "delivery_failed" in await history_actions(app, queued.ticket_id or 0)
    clock.advance(timedelta(days=1))
    assert await running.daemon.sender.run_once() == 0
    assert len(relay_sink.received) == 1
