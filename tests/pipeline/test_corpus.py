"""The corpus of tricky messages through the whole pipeline: ticket or not, answered or not,
which text was kept and which attachments."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import pytest

from mailflow.app import App
from mailflow.db import migrate
from mailflow.db.models import InboundMessage, Message, OutboxMessage, Ticket
from mailflow.ingest.accept import accept
from mailflow.ingest.envelope import Channel, Envelope
from tests.conftest import MakeConfig
from tests.support import all_rows, winmail_dat

CORPUS = Path(__file__).parents[1] / "corpus"


@dataclass(frozen=True)
class Case:
    file: str
    ticket: bool
    answered: bool
    automatic: str | None = None
    text: str | None = None
    not_in_text: str | None = None
    attachments: tuple[str, ...] = ()


CASES = [
    Case("ooo-outlook.eml", ticket=False, answered=False, automatic="auto_reply"),
    # Its subject and its opening ("Ich bin bis … nicht im Büro") say it is automatic: two
    # signs make an auto-reply, kept as inbound only since it answers no mail of ours.
    Case("ooo-german-subject-only.eml", ticket=False, answered=False, automatic="auto_reply"),
    Case("ooo-vacation-auto-replied.eml", ticket=False, answered=False, automatic="auto_reply"),
    Case("read-receipt-mdn.eml", ticket=False, answered=False, automatic="auto_reply"),
    Case("dsn-rfc3464.eml", ticket=False, answered=False, automatic="bounce"),
    Case("ndr-exchange.eml", ticket=False, answered=False, automatic="bounce"),
    Case("qmail-failure-notice.eml", ticket=False, answered=False, automatic="bounce"),
    Case(
        "mailing-list.eml",
        ticket=True,
        answered=False,
        automatic="list",
        text="Version 4.2 is out.",
    ),
    Case(
        "noreply-notification.eml",
        ticket=True,
        answered=False,
        automatic="auto_generated",
        text="Order 7781 has shipped.",
    ),
    Case(
        "reply-french-quoted.eml",
        ticket=True,
        answered=True,
        text="Merci, c'est réglé.",
        not_in_text="Bonjour",
    ),
    Case(
        "reply-german-quoted.eml",
        ticket=True,
        answered=True,
        text="Danke, erledigt.",
        not_in_text="Hallo",
    ),
    Case(
        "reply-polish-quoted.eml",
        ticket=True,
        answered=True,
        text="Dzięki, załatwione.",
        not_in_text="Dzień dobry",
    ),
    Case(
        "reply-outlook-original-message.eml",
        ticket=True,
        answered=True,
        text="Found it, thanks.",
        not_in_text="spam folder",
    ),
    Case(
        "path-traversal-filename.eml",
        ticket=True,
        answered=True,
        text="Log attached.",
        attachments=("passwd", "evil.exe"),
    ),
    Case(
        "inline-image.eml", ticket=True, answered=True, text="See here.", attachments=("image.png",)
    ),
]


@pytest.fixture
async def app(make_config: MakeConfig) -> AsyncIterator[App]:
    app = App(make_config())
    await migrate.upgrade(app.db)
    yield app
    await app.close()


async def _inject(app: App, raw: bytes) -> None:
    await accept(app, raw, Envelope(Channel.INJECT, "", ("support@example.com",), app.clock.now()))


@pytest.mark.parametrize("case", CASES, ids=[c.file for c in CASES])
async def test_corpus_message(app: App, case: Case) -> None:
    raw = (CORPUS / case.file).read_bytes()
    await _inject(app, raw)
    (inbound,) = await all_rows(app, InboundMessage)
    assert inbound.raw == raw
    assert inbound.automatic == case.automatic
    tickets = await all_rows(app, Ticket)
    assert len(tickets) == (1 if case.ticket else 0)
    messages = await all_rows(app, Message)
    sender = messages[0].from_address if case.ticket else None
    answered = [r for r in await all_rows(app, OutboxMessage) if sender in r.rcpt_tos]
    assert bool(answered) is case.answered
    if case.text is not None or case.attachments:
        (message,) = await all_rows(app, Message)
        if case.text is not None:
            assert message.text == case.text
        if case.not_in_text is not None:
            assert case.not_in_text not in message.text
            assert case.not_in_text in message.full_text, "the full original is kept"
        assert tuple(a.filename for a in message.attachments) == case.attachments


async def test_winmail_dat_is_opened_into_its_files(app: App) -> None:
    message = EmailMessage()
    message["From"] = "Bob <bob@customer.test>"
    message["To"] = "support@example.com"
    message["Subject"] = "Sent from Outlook"
    message.set_content("See attached.")
    tnef = winmail_dat([("report.pdf", b"%PDF-1.4 report"), ("photo.jpg", b"\xff\xd8 jpeg")])
    message.add_attachment(tnef, maintype="application", subtype="ms-tnef", filename="winmail.dat")
    await _inject(app, message.as_bytes())
    (stored,) = await all_rows(app, Message)
    assert [(a.filename, a.content_type, a.size) for a in stored.attachments] == [
        ("report.pdf", "application/pdf", 15),
        ("photo.jpg", "image/jpeg", 7),
    ]


async def test_overlong_names_and_header_values_do_not_quarantine(app: App) -> None:
    name = "N" * 300
    raw = (
        f"From: {name} <long@customer.test>\r\nTo: support@example.com\r\nSubject: long\r\n"
        'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="M"\r\n\r\n'
        "--M\r\nContent-Type: text/plain\r\n\r\nbody\r\n"
        f"--M\r\nContent-Type: application/x-{'y' * 300}\r\nContent-ID: <{'c' * 300}@x>\r\n"
        'Content-Disposition: attachment; filename="a.bin"\r\n\r\ndata\r\n--M--\r\n'
    ).encode()
    await _inject(app, raw)
    (inbound,) = await all_rows(app, InboundMessage)
    assert inbound.state.value == "processed", inbound.reason
    (ticket,) = await all_rows(app, Ticket)
    assert ticket.customer.name == name[:200]
    (message,) = await all_rows(app, Message)
    (attachment,) = message.attachments
    assert (attachment.content_type, attachment.content_id) == ("application/octet-stream", None)
