"""Per class of tests/corpus/: tickets opened and automatic mails queued by each sample, and
people's messages stored with an empty (or replacement-filled) text where Python's email
package reads one. Runs the pipeline in-process (accept()), one fresh SQLite database per
sample, the way tests/e2e/test_realmail.py does over SMTP.

    .venv/bin/python bench/realmail_figures.py
    cd /tmp && PYTHONPATH=OTHER_CHECKOUT python CHECKOUT/bench/realmail_figures.py --corpus DIR
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import tempfile
from collections import defaultdict
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from sqlalchemy import func, select

from mailflow import log
from mailflow.app import App
from mailflow.config import from_mapping
from mailflow.db import migrate
from mailflow.db.models import InboundMessage, Message, OutboxMessage, Ticket
from mailflow.db.session import Database
from mailflow.ingest.accept import accept
from mailflow.ingest.envelope import Channel, Envelope

MACHINES = ("bounce", "feedback", "autoreply", "challenge", "list", "no-from")
PEOPLE = ("long-lines", "charsets", "text-parts", "damaged-headers", "own-id-shape")
FIRST = (
    b"From: Bob Customer <bob@customer.test>\r\nTo: support@example.com\r\n"
    b"Subject: Printer is on fire\r\nMessage-ID: <first@customer.test>\r\n\r\nHelp!\r\n"
)


def python_text(raw: bytes) -> str:
    """What the email package itself makes of the text, for comparison."""
    try:
        message = message_from_bytes(raw, _class=EmailMessage, policy=policy.default)
        assert isinstance(message, EmailMessage)
        body = message.get_body(("plain", "html"))
        return str(body.get_content()).strip() if body is not None else ""
    except Exception:
        return ""


def envelope_of(raw: bytes) -> tuple[str, str]:
    """The envelope the final MTA recorded, read without any parser under test."""
    sender = re.search(rb"^Return-Path\s*:\s*<([^>]*)>", raw[:4096], re.M | re.I)
    rcpt = re.search(rb"^Delivered-To\s*:\s*(\S+)", raw[:4096], re.M | re.I)
    mail_from = sender.group(1).decode() if sender and sender.group(1) else "<>"
    return mail_from, rcpt.group(1).decode() if rcpt else "support@example.com"


async def count(app: App, model: type) -> int:
    async with app.db.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


def expected_reading(corpus: Path) -> dict[str, tuple[str, str, str]]:
    """Sender, subject and a phrase of the text for people's samples (the parse tests' table)."""
    table = json.loads((corpus / "expected-reading.json").read_text("utf-8"))
    return {name: (seen["from"], seen["subject"], seen["text"]) for name, seen in table.items()}


async def run_one(
    template: Path, work: Path, kind: str, raw: bytes, expected: tuple[str, str, str] | None
) -> dict[str, int]:
    db = work / "mailflow.db"
    shutil.copy(template, db)
    config = from_mapping(
        {
            "database": {"url": f"sqlite+aiosqlite:///{db}"},
            "outbox": {"maildir": str(work / "sent")},
        },
        "bench.toml",
        work,
    )
    app = App(config)
    try:
        now = app.clock.now()
        if kind in MACHINES:
            await accept(
                app,
                FIRST,
                Envelope(Channel.SMTP, "bob@customer.test", ("support@example.com",), now),
            )
            async with app.db.transaction() as session:
                row = (await session.scalars(select(OutboxMessage))).one()
                raw = raw.replace(b"__MESSAGE_ID__", row.message_id.encode())
                raw = raw.replace(b"__RETURN_PATH__", row.mail_from.encode())
        tickets, mails = await count(app, Ticket), await count(app, OutboxMessage)
        mail_from, rcpt = envelope_of(raw)
        await accept(app, raw, Envelope(Channel.SMTP, mail_from, (rcpt,), now))
        async with app.db.transaction() as session:
            inbound = (
                await session.scalars(select(InboundMessage).order_by(InboundMessage.id.desc()))
            ).first()
            stored = (
                (
                    await session.scalars(select(Message).where(Message.inbound_id == inbound.id))
                ).first()
                if inbound
                else None
            )
        text = stored.full_text if stored is not None else ""
        readable = bool(python_text(raw))
        misread = expected is not None and (
            stored is None
            or (stored.from_address, stored.subject) != expected[:2]
            or expected[2] not in text
        )
        return {
            "samples": 1,
            "tickets opened": await count(app, Ticket) - tickets,
            "automatic mails": await count(app, OutboxMessage) - mails,
            "quarantined": int(inbound is not None and inbound.state.value == "quarantined"),
            "empty text, Python reads one": int(kind in PEOPLE and readable and not text.strip()),
            "text with U+FFFD": int(kind in PEOPLE and "\ufffd" in text),
            "From, Subject or text misread": int(misread),
        }
    finally:
        await app.close()


async def main(corpus: Path) -> None:
    log.configure("error")
    with tempfile.TemporaryDirectory() as tmp:
        template = Path(tmp) / "template.db"
        db = Database(f"sqlite+aiosqlite:///{template}")
        await migrate.upgrade(db)
        await db.dispose()
        totals: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        reading = expected_reading(corpus)
        for kind in (*MACHINES, *PEOPLE):
            for path in sorted((corpus / kind).glob("*.eml")):
                work = Path(tempfile.mkdtemp(dir=tmp))
                expected = reading.get(f"{kind}/{path.name}")
                figures = await run_one(template, work, kind, path.read_bytes(), expected)
                for name, value in figures.items():
                    totals[kind][name] += value
        columns = [
            "samples",
            "tickets opened",
            "automatic mails",
            "quarantined",
            "empty text, Python reads one",
            "text with U+FFFD",
            "From, Subject or text misread",
        ]
        print(f"{'class':16} " + " | ".join(columns))
        for kind in (*MACHINES, *PEOPLE):
            print(f"{kind:16} " + " | ".join(f"{totals[kind][c]:>{len(c)}}" for c in columns))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--corpus", type=Path, default=Path(__file__).resolve().parents[1] / "tests" / "corpus"
    )
    asyncio.run(main(parser.parse_args().corpus))
