"""A property over SMTP into the running daemon: any message a real MTA would relay (lines of
any length, any charset label real mail uses, any transfer encoding, the header damage real
clients cause) gets 250, a stored text equal to what was written, and a defined outcome."""

from __future__ import annotations

import asyncio
import base64
import itertools
import quopri
from collections.abc import Iterator
from dataclasses import dataclass
from email.header import Header

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from mailflow.app import App
from mailflow.daemon import Daemon
from mailflow.db.models import InboundMessage, InboundState, Message
from tests.conftest import MakeConfig
from tests.support import smtp_send

# Label as written → codec that writes the bytes. Unknown labels carry UTF-8, which a reader
# recognises; what they hide otherwise is detected, not promised.
LABELS = [
    ("utf-8", "utf-8"),
    ("utf8", "utf-8"),
    ("UTF-8", "utf-8"),
    ("x-unknown", "utf-8"),
    ("unicode-1-1-utf-7", "utf-7"),
    ("latin1", "latin-1"),
    ("iso-8859-1", "latin-1"),
    ("windows-1252", "cp1252"),
    ("us-ascii", "ascii"),
    ("iso-8859-2", "iso-8859-2"),
    ("koi8-r", "koi8-r"),
    ("windows-1251", "cp1251"),
    ("ks_c_5601-1987", "cp949"),
    ("gb2312", "gb2312"),
    ("iso-gb2312", "gb2312"),
    ("shift_jis", "shift_jis"),
    ("iso-2022-jp", "iso2022_jp"),
    ("big5", "big5"),
    ("windows-874", "cp874"),
]
DAMAGE = ["none", "stray line", "banner", "blank lines", "space before colon"]

words = st.text(
    st.characters(categories=["L", "N", "P", "S"], exclude_characters="\x7f"),
    min_size=1,
    max_size=12,
)


@st.composite
def texts(draw: st.DrawFn) -> str:
    """Words joined by spaces and line breaks; a line may run to thousands of characters."""
    parts = draw(st.lists(words, min_size=1, max_size=40))
    breaks = draw(st.sampled_from([" ", "\n", " "]))
    text = breaks.join(parts)
    if draw(st.booleans()):  # one long line, past RFC 5322's 998 characters
        text += "\n" + " ".join(itertools.islice(itertools.cycle(parts), 1500))
    return text


@dataclass(frozen=True)
class Written:
    raw: bytes
    sender: str
    subject: str
    text: str


_counter = itertools.count()


def _encode(text: str, codec: str, cte: str) -> tuple[bytes, str]:
    data = text.replace("\n", "\r\n").encode(codec)
    if cte == "base64":
        return base64.encodebytes(data).replace(b"\n", b"\r\n"), cte
    if cte == "quoted-printable":
        return quopri.encodestring(data).replace(b"\n", b"\r\n").replace(b"\r\r", b"\r"), cte
    return data, "7bit" if data.isascii() else "8bit"


@st.composite
def persons_mail(draw: st.DrawFn) -> Written:
    text = draw(texts())
    labels = [pair for pair in LABELS if _fits(text, pair[1])]
    label, codec = draw(st.sampled_from(labels))
    cte = draw(st.sampled_from(["8bit", "base64", "quoted-printable"]))
    body, cte = _encode(text, codec, cte)
    subject = draw(st.lists(words, min_size=1, max_size=6).map(" ".join))
    number = next(_counter)
    sender = f"person{number}@customer.test"
    headers = [
        f"From: Person {number} <{sender}>",
        "To: support@example.com",
        f"Subject: {Header(subject, 'utf-8').encode()}",
        f"Message-ID: <prop-{number}@customer.test>",
        "MIME-Version: 1.0",
        f'Content-Type: text/plain; charset="{label}"',
        f"Content-Transfer-Encoding: {cte}",
    ]
    damage = draw(st.sampled_from(DAMAGE))
    if damage == "stray line":
        headers.insert(draw(st.integers(1, len(headers) - 1)), "X-Mailer Broken Client 1.0")
    elif damage == "space before colon":
        headers[2] = headers[2].replace("Subject:", "Subject :", 1)
    prefix = {"banner": "+OK message follows\r\n", "blank lines": "\r\n\r\n"}.get(damage, "")
    raw = (prefix + "\r\n".join(headers) + "\r\n\r\n").encode() + body + b"\r\n"
    return Written(raw, sender, subject, text)


def _fits(text: str, codec: str) -> bool:
    try:
        return text.encode(codec).decode(codec) == text
    except UnicodeError:
        return False


def _words(text: str) -> list[str]:
    return text.split()


@dataclass
class Live:
    runner: asyncio.Runner
    daemon: Daemon

    @property
    def app(self) -> App:
        return self.daemon.app


@pytest.fixture
def live(make_config: MakeConfig) -> Iterator[Live]:
    """One daemon for every example of the test, in a loop the examples drive."""
    with asyncio.Runner() as runner:
        daemon = Daemon(App(make_config({"outbox": {"relay": None}})))
        runner.run(daemon.start())
        yield Live(runner, daemon)
        runner.run(daemon.stop())


async def _kept(app: App, sender: str) -> tuple[InboundMessage, Message | None]:
    async with app.db.transaction() as session:
        inbound = (
            await session.scalars(select(InboundMessage).order_by(InboundMessage.id.desc()))
        ).first()
        assert inbound is not None
        message = await session.scalar(select(Message).where(Message.inbound_id == inbound.id))
        return inbound, message


@settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(mail=persons_mail())
def test_any_mail_a_real_mta_relays_is_accepted_read_and_decided(live: Live, mail: Written) -> None:
    assert live.daemon.smtp_address is not None
    port = live.daemon.smtp_address[1]
    code, reply = live.runner.run(smtp_send(port, mail.raw, mail_from=mail.sender))
    assert code == 250, reply
    inbound, message = live.runner.run(_kept(live.app, mail.sender))
    assert inbound.raw == mail.raw
    assert inbound.state is InboundState.PROCESSED, (inbound.reason, inbound.decisions)
    assert message is not None
    assert message.from_address == mail.sender
    assert _words(message.subject) == _words(mail.subject)
    assert _words(message.full_text) == _words(mail.text)
