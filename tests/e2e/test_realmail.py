"""Real-world mail over SMTP into the running daemon, one test per class of tests/corpus/:
machines never get a ticket or an answer; every person's mail is accepted and read.

Machine samples are about the auto-reply Bob got to his first mail: `__MESSAGE_ID__`,
`__RETURN_PATH__` in them become that mail's Message-ID and VERP return path. Each sample
names its envelope sender in Return-Path and its recipient in Delivered-To, as a final MTA
records them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from mailflow.db.models import (
    History,
    InboundMessage,
    InboundState,
    Message,
    OutboxMessage,
    OutboxState,
    Suppression,
    Ticket,
)
from mailflow.mail.parse import parse
from tests.conftest import RelaySink, Running, StartDaemon
from tests.mail.test_parse_realmail import READ
from tests.support import all_rows, build_message, mailflow_cli, smtp_send

CORPUS = Path(__file__).parents[1] / "corpus"
BOB = "bob@customer.test"


def samples(kind: str) -> list[str]:
    return sorted(p.name for p in (CORPUS / kind).glob("*.eml"))


@dataclass
class Ours:
    """The auto-reply Bob got: what the machines' samples are about."""

    message_id: str
    return_path: str


async def first_mail(running: Running, relay_sink: RelaySink) -> Ours:
    await smtp_send(running.port, build_message(message_id="<first@customer.test>"))
    (auto_reply,) = await relay_sink.wait_for(1)
    return Ours(auto_reply.message["Message-ID"].strip("<>"), auto_reply.mail_from)


def sample(kind: str, name: str, ours: Ours | None = None) -> bytes:
    raw = (CORPUS / kind / name).read_bytes()
    if ours is not None:
        raw = raw.replace(b"__MESSAGE_ID__", ours.message_id.encode())
        raw = raw.replace(b"__RETURN_PATH__", ours.return_path.encode())
    return raw


async def deliver(running: Running, raw: bytes) -> int:
    """Send as the final MTA would: envelope from Return-Path, to Delivered-To."""
    parsed = parse(raw)
    mail_from = (parsed.header("return-path") or "<>").strip() or "<>"
    mail_from = "<>" if mail_from == "<>" else mail_from.strip("<>")
    rcpt = (parsed.header("delivered-to") or "support@example.com").strip()
    code, reply = await smtp_send(running.port, raw, mail_from=mail_from, rcpt_tos=[rcpt])
    assert code == 250, reply
    return code


async def _machine(
    start_daemon: StartDaemon, relay_sink: RelaySink, kind: str, name: str
) -> tuple[Running, Ours, InboundMessage]:
    """Bob's first mail, then the sample about its auto-reply; nothing more may be sent."""
    running = await start_daemon()
    ours = await first_mail(running, relay_sink)
    await deliver(running, sample(kind, name, ours))
    inbound = (await all_rows(running.app, InboundMessage))[-1]
    assert len(await all_rows(running.app, Ticket)) == 1, "no ticket for a machine"
    assert len(await all_rows(running.app, OutboxMessage)) == 1, "no answer to a machine"
    assert inbound.state is InboundState.STORED_ONLY, (inbound.reason, inbound.decisions)
    return running, ours, inbound


def _decided(inbound: InboundMessage, kind: str) -> str:
    """The kind it was taken for, and the decision naming the signals that made it."""
    assert inbound.automatic == kind, inbound.decisions
    (decision,) = [d for d in inbound.decisions if d.startswith("automatic: ")]
    assert decision.startswith(f"automatic: {kind}: "), inbound.decisions
    return decision


# ---------------------------------------------------------------------------- machines


@pytest.mark.parametrize("name", samples("bounce"))
async def test_bounce_opens_no_ticket_and_fails_our_mail(
    start_daemon: StartDaemon, relay_sink: RelaySink, name: str
) -> None:
    running, _, inbound = await _machine(start_daemon, relay_sink, "bounce", name)
    _decided(inbound, "bounce")
    (row,) = await all_rows(running.app, OutboxMessage)
    assert row.state is OutboxState.FAILED, inbound.decisions
    assert "delivery_failed" in [h.action for h in await all_rows(running.app, History)]


@pytest.mark.parametrize("name", samples("feedback"))
async def test_feedback_report_records_the_complaint_and_suppresses_the_recipient(
    start_daemon: StartDaemon, relay_sink: RelaySink, name: str
) -> None:
    running, _, inbound = await _machine(start_daemon, relay_sink, "feedback", name)
    _decided(inbound, "feedback")
    complaints = [
        h for h in await all_rows(running.app, History) if h.action == "complaint_received"
    ]
    assert [h.ticket_id for h in complaints] == [1]
    assert [s.address for s in await all_rows(running.app, Suppression)] == [BOB]

    await smtp_send(running.port, build_message(subject="Another question"))
    assert len(await all_rows(running.app, Ticket)) == 2, "Bob's own mail is still taken"
    assert len(await all_rows(running.app, OutboxMessage)) == 1, "but no automatic mail to him"
    held = [h for h in await all_rows(running.app, History) if h.ticket_id == 2]
    assert any(
        h.action == "automatic_mail_suppressed" and "suppression list" in h.details["reason"]
        for h in held
    )


@pytest.mark.parametrize("name", samples("autoreply"))
async def test_auto_reply_without_rfc3834_headers_is_stored_and_answered_by_nothing(
    start_daemon: StartDaemon, relay_sink: RelaySink, name: str
) -> None:
    running, _, inbound = await _machine(start_daemon, relay_sink, "autoreply", name)
    decision = _decided(inbound, "auto_reply")
    assert decision.count("; ") >= 1, "two signals at least"
    messages = await all_rows(running.app, Message)
    if b"In-Reply-To" in (CORPUS / "autoreply" / name).read_bytes():
        assert [(m.ticket_id, m.automatic) for m in messages] == [(1, None), (1, "auto_reply")]
        assert (await all_rows(running.app, Ticket))[0].status == "open", "it changes nothing"
    else:
        assert len(messages) == 1, "answering nothing of ours, it is kept as inbound only"
        assert inbound.reason == "automatic reply, no ticket"


@pytest.mark.parametrize("name", samples("challenge"))
async def test_challenge_response_request_is_never_answered(
    start_daemon: StartDaemon, relay_sink: RelaySink, name: str
) -> None:
    _, _, inbound = await _machine(start_daemon, relay_sink, "challenge", name)
    _decided(inbound, "challenge")
    assert inbound.reason == "challenge-response request; never answered"


@pytest.mark.parametrize("name", samples("list"))
async def test_list_mail_gets_no_automatic_mail(
    start_daemon: StartDaemon, relay_sink: RelaySink, name: str
) -> None:
    running = await start_daemon()
    await deliver(running, sample("list", name))
    (inbound,) = await all_rows(running.app, InboundMessage)
    _decided(inbound, "list")
    assert len(await all_rows(running.app, Ticket)) == 1
    assert await all_rows(running.app, OutboxMessage) == []
    actions = [h.action for h in await all_rows(running.app, History)]
    assert "automatic_mail_suppressed" in actions


@pytest.mark.parametrize("name", samples("no-from"))
async def test_machine_mail_without_a_usable_from_is_handled_by_its_class(
    start_daemon: StartDaemon, relay_sink: RelaySink, name: str
) -> None:
    _, _, inbound = await _machine(start_daemon, relay_sink, "no-from", name)
    assert inbound.automatic in ("bounce", "feedback", "auto_reply", "challenge")
    assert "sender" not in inbound.reason or "without a usable sender" in inbound.reason


# ---------------------------------------------------------------------------- people


PEOPLE = [
    (kind, name)
    for kind in ("long-lines", "charsets", "text-parts", "damaged-headers")
    for name in samples(kind)
]


@pytest.mark.parametrize(("kind", "name"), PEOPLE, ids=[f"{k}/{n}" for k, n in PEOPLE])
async def test_persons_mail_is_accepted_read_and_answered(
    start_daemon: StartDaemon, relay_sink: RelaySink, kind: str, name: str
) -> None:
    running = await start_daemon()
    raw = sample(kind, name)
    await deliver(running, raw)
    (inbound,) = await all_rows(running.app, InboundMessage)
    assert inbound.raw == raw, "kept byte for byte"
    assert inbound.state is InboundState.PROCESSED, (inbound.reason, inbound.decisions)
    assert inbound.automatic is None
    (message,) = await all_rows(running.app, Message)
    expected = READ.get(f"{kind}/{name}")
    if expected is not None:
        sender, subject, phrase = expected
        assert (message.from_address, message.subject) == (sender, subject)
        assert phrase in message.full_text
    assert message.full_text.strip(), "a stored text"
    (reply,) = await relay_sink.wait_for(1)
    assert reply.rcpt_tos == [message.from_address]


@pytest.mark.parametrize("name", samples("own-id-shape"))
async def test_message_id_that_looks_like_ours_is_a_persons_mail(
    start_daemon: StartDaemon, relay_sink: RelaySink, name: str
) -> None:
    running = await start_daemon()
    await deliver(running, sample("own-id-shape", name))
    (inbound,) = await all_rows(running.app, InboundMessage)
    assert inbound.state is InboundState.PROCESSED, inbound.reason
    assert len(await all_rows(running.app, Ticket)) == 1


async def test_inbound_show_tells_which_signals_decided(
    start_daemon: StartDaemon, relay_sink: RelaySink, tmp_path: Path, database_url: str
) -> None:
    running = await start_daemon()
    await deliver(running, sample("autoreply", "exchange-oof-no-in-reply-to.eml"))
    config = tmp_path / "cli.toml"
    config.write_text(f'[database]\nurl = "{database_url}"\n')

    shown = await mailflow_cli(config, "inbound", "show", "1")

    assert shown.exit_code == 0, shown.output
    assert (
        "automatic: auto_reply: subject 'Automatic reply: Printer is on fire'; Thread-Topic "
        "copied under 'Automatic reply:'; X-Auto-Response-Suppress: All; text 'i am out of "
        "the office'; envelope sender <>"
    ) in shown.output
