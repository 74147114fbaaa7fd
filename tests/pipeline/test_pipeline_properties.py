"""Properties of the whole pipeline, in-process: whatever bytes arrive, accept() keeps them
and ends in a state that explains itself, and a customer's mail opens exactly one ticket."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from email.utils import formataddr

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from mailflow.app import App
from mailflow.db.models import InboundMessage, InboundState, Message, Ticket
from mailflow.ingest.accept import accept
from mailflow.ingest.envelope import Channel, Envelope, Fate, Outcome
from tests.conftest import MakeConfig

OURS = "support@example.com"
EXAMPLES = 150
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@dataclass
class Pipeline:
    """An App and the one event loop every example of a test runs in."""

    app: App
    runner: asyncio.Runner

    def accept(self, raw: bytes, mail_from: str) -> Outcome:
        envelope = Envelope(Channel.INJECT, mail_from, (OURS,), self.app.clock.now())
        return self.runner.run(accept(self.app, raw, envelope))

    def inbound(self, inbound_id: int) -> tuple[InboundMessage, list[Message], Ticket | None]:
        async def load() -> tuple[InboundMessage, list[Message], Ticket | None]:
            async with self.app.db.transaction() as session:
                inbound = await session.get(InboundMessage, inbound_id)
                assert inbound is not None, f"no inbound row {inbound_id}"
                messages = await session.scalars(
                    select(Message).where(Message.inbound_id == inbound_id)
                )
                ticket = await session.get(Ticket, inbound.ticket_id) if inbound.ticket_id else None
                return inbound, list(messages), ticket

        return self.runner.run(load())


@pytest.fixture
def pipeline(make_config: MakeConfig) -> Iterator[Pipeline]:
    app = App(make_config())
    with asyncio.Runner() as runner:
        yield Pipeline(app, runner)
        runner.run(app.close())


def check_outcome(pipeline: Pipeline, raw: bytes, outcome: Outcome) -> InboundMessage:
    """The message is kept as it came, and its state says what became of it and why."""
    assert outcome.fate in (Fate.ACCEPTED, Fate.QUARANTINED), outcome
    assert outcome.inbound_id is not None
    inbound, messages, ticket = pipeline.inbound(outcome.inbound_id)
    assert inbound.raw == raw
    assert inbound.size == len(raw)
    assert inbound.ticket_id == outcome.ticket_id
    state = inbound.state
    if state is InboundState.PROCESSED:
        assert ticket is not None, inbound.decisions
        assert [m.ticket_id for m in messages] == [ticket.id], "one ticket message, its ticket"
    elif state is InboundState.STORED_ONLY:
        assert inbound.automatic is not None, inbound.decisions
        assert all(m.ticket_id == inbound.ticket_id for m in messages)
    elif state is InboundState.DISCARDED:
        assert inbound.reason.startswith(("duplicate of inbound ", "loop: ")), inbound.reason
        assert messages == []
    else:
        assert state is InboundState.QUARANTINED
        assert outcome.fate is Fate.QUARANTINED
        assert inbound.reason.strip(), "a quarantined message says why"
        assert messages == []
    return inbound


# ---------------------------------------------------------------------------- strategies

# What an envelope sender can be: none, the null path, a person, a machine, ourselves. NUL,
# lone surrogates and more than 320 characters are left to the known-bug tests at the end.
mail_froms = st.sampled_from(
    ["", "<>", "bob@customer.test", "MAILER-DAEMON@mx.customer.test", OURS, "not an address"]
) | st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=60)

# Header values: no line breaks (those would make other headers), surrogates excluded.
header_text = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters="\r\n"), max_size=60
)
body_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=400)
names = (
    st.sampled_from(["", "Bob", "Zoë Ångström", "李小龙", '"Quoted, Name"', "a@b"]) | header_text
)
# Dot-atoms: a local part such as "taro." is a known bug (see the end of this file).
local_parts = st.from_regex(r"[a-z][a-z0-9_-]{0,7}(\.[a-z0-9_-]{1,7}){0,2}", fullmatch=True)

# Message-IDs from a small pool repeat across examples: the later ones are duplicates. One
# longer than its column (998) is a known bug on PostgreSQL (see the end of this file).
message_ids = st.sampled_from(
    [
        "<same-1@customer.test>",
        "<same-2@customer.test>",
        "same-3@customer.test",
        "<>",
        "<" + "x" * 900 + "@long.test>",
        "<a@b> <c@d>",
    ]
) | header_text.map(lambda text: f"<{text}@random.test>")

froms = st.one_of(
    st.builds(lambda name, local: formataddr((name, f"{local}@customer.test")), names, local_parts),
    st.sampled_from(
        [
            "",
            "<>",
            "garbage",
            "@@@",
            OURS,
            "Example Support <support+1@example.com>",
            "MAILER-DAEMON@mx.customer.test",
            "no-reply@shop.test",
            "=?utf-8?q?Zo=C3=AB?= <zoe@customer.test>",
            "=?utf-8?b?5p2O5bCP6b6Z?= <li@customer.test>",
            "=?bogus?q?x?= <x@customer.test>",
            "=?utf-8?q?Eve=0D=0ABcc=3A_v=40x=2Etest?= <eve@customer.test>",
            "a@x.test, b@y.test",
        ]
    ),
    header_text,
)
tos = (
    st.sampled_from(
        [OURS, "Support <support@example.com>", "suggestion@example.com", "someone@else.test", ""]
    )
    | header_text
)

content_types = st.sampled_from(
    [
        "text/plain; charset=utf-8",
        "text/plain; charset=us-ascii",
        "text/plain; charset=x-unknown-charset",
        "text/plain; charset=utf-7",
        "text/plain; charset=iso-2022-jp",
        "text/plain; charset=base64",
        'text/plain; charset="\x00"',
        "text/html; charset=koi8-r",
        'multipart/mixed; boundary="B"',
        "multipart/alternative; boundary=",
        'multipart/mixed; boundary="' + "b" * 200 + '"',
        "multipart/report; report-type=delivery-status; boundary=R",
        "multipart/report; report-type=disposition-notification",
        "message/rfc822",
        "application/octet-stream",
        "nonsense",
    ]
) | header_text.map(lambda text: f"text/plain; charset={text}")

optional_headers = {
    "Auto-Submitted": st.sampled_from(["auto-replied", "auto-generated", "auto-notified", "no"]),
    "Precedence": st.sampled_from(["bulk", "junk", "list", "auto_reply", "first-class"]),
    "List-Id": st.just("<announce.lists.example.org>"),
    "List-Unsubscribe": st.just("<mailto:leave@lists.example.org>"),
    "X-Autoreply": st.just("yes"),
    "X-Auto-Response-Suppress": st.just("All"),
    "Content-Type": content_types,
    "Content-Transfer-Encoding": st.sampled_from(["base64", "quoted-printable", "8bit", "x-no"]),
    "MIME-Version": st.just("1.0"),
    "Message-ID": message_ids,
    "In-Reply-To": message_ids,
    "References": message_ids,
    "Cc": tos,
    "Reply-To": froms,
    "Date": st.sampled_from(["Mon, 05 Jan 2026 09:00:00 +0000", "yesterday", ""]),
}
AUTOMATIC_HEADERS = (
    "Auto-Submitted",
    "Precedence",
    "List-Id",
    "List-Unsubscribe",
    "X-Autoreply",
    "X-Auto-Response-Suppress",
)


def _header(name: str, value: str) -> bytes:
    # Raw UTF-8 in headers, as many mailers send it (RFC 6532).
    return f"{name}: {value}".encode()


@st.composite
def well_formed(draw: st.DrawFn) -> bytes:
    """A message with From, To and Subject (each may be missing or odd) and random headers."""
    lines = []
    for name, values in (("From", froms), ("To", tos), ("Subject", header_text)):
        if draw(st.integers(0, 3)):
            lines.append(_header(name, draw(values)))
    chosen = draw(st.lists(st.sampled_from(sorted(optional_headers)), max_size=6))
    for name in chosen:
        lines.append(_header(name, draw(optional_headers[name])))
    lines = draw(st.permutations(lines))
    body = draw(body_text).replace("\r\n", "\n").replace("\n", "\r\n")
    return b"\r\n".join(lines) + b"\r\n\r\n" + body.encode()


SEEDS = [
    b"From: Bob Customer <bob@customer.test>\r\n"
    b"To: support@example.com\r\n"
    b"Subject: Printer is on fire\r\n"
    b"Date: Mon, 05 Jan 2026 09:00:00 +0000\r\n"
    b"Message-ID: <plain@customer.test>\r\n\r\n"
    b"Help, my printer is on fire.\r\n\r\nBob\r\n",
    b"From: =?utf-8?q?Zo=C3=AB?= <zoe@customer.test>\r\n"
    b"To: Support <support@example.com>\r\n"
    b"Subject: =?utf-8?q?Caf=C3=A9_order?=\r\n"
    b"Message-ID: <alternative@customer.test>\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/alternative; boundary="ALT"\r\n\r\n'
    b"--ALT\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    b"Where is my caf=C3=A9?\r\n"
    b"--ALT\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
    b"<p>Where is my <b>caf\xc3\xa9</b>?</p>\r\n"
    b"--ALT--\r\n",
    b"From: Carol <carol@customer.test>\r\n"
    b"To: support@example.com\r\n"
    b"Subject: Log attached\r\n"
    b"Message-ID: <attachment@customer.test>\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="MIX"\r\n\r\n'
    b"--MIX\r\nContent-Type: text/plain\r\n\r\nThe log is attached.\r\n"
    b"--MIX\r\nContent-Type: application/octet-stream\r\n"
    b'Content-Disposition: attachment; filename="printer.log"\r\n'
    b"Content-Transfer-Encoding: base64\r\n\r\n"
    b"UGFwZXIgamFtIGF0IHRyYXkgMgpGaXJlIGRldGVjdGVkCg==\r\n"
    b"--MIX--\r\n",
    b"From: Mail Delivery System <MAILER-DAEMON@mx.customer.test>\r\n"
    b"To: support@example.com\r\n"
    b"Subject: Undelivered Mail Returned to Sender\r\n"
    b"Auto-Submitted: auto-replied\r\n"
    b"Message-ID: <dsn@mx.customer.test>\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/report; report-type=delivery-status; boundary="DSN"\r\n\r\n'
    b"--DSN\r\nContent-Type: text/plain\r\n\r\nI'm sorry to have to inform you...\r\n"
    b"--DSN\r\nContent-Type: message/delivery-status\r\n\r\n"
    b"Reporting-MTA: dns; mx.customer.test\r\n\r\n"
    b"Final-Recipient: rfc822; bob@customer.test\r\n"
    b"Action: failed\r\nStatus: 5.1.1\r\n"
    b"Diagnostic-Code: smtp; 550 5.1.1 <bob@customer.test>: User unknown\r\n\r\n"
    b"--DSN\r\nContent-Type: text/rfc822-headers\r\n\r\n"
    b"Message-ID: <0123456789abcdef0123456789abcdef@example.com>\r\nSubject: x\r\n\r\n"
    b"--DSN--\r\n",
]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A realistic message after byte flips, truncation, and duplicated or deleted lines."""
    raw = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(1, 4))):
        change = draw(st.sampled_from(["flip", "truncate", "duplicate", "delete", "insert"]))
        if change in ("duplicate", "delete"):
            lines = raw.split(b"\r\n")
            at = draw(st.integers(0, len(lines) - 1))
            lines[at:at] = [lines[at]] if change == "duplicate" else []
            if change == "delete":
                del lines[at]
            raw = b"\r\n".join(lines)
        elif change == "truncate":
            raw = raw[: draw(st.integers(0, len(raw)))]
        else:
            at = draw(st.integers(0, len(raw)))
            size = 1 if change == "flip" else 0
            raw = raw[:at] + draw(st.binary(min_size=1, max_size=4)) + raw[at + size :]
    return raw


# ---------------------------------------------------------------------------- properties


def test_arbitrary_bytes_are_kept_and_accounted_for(pipeline: Pipeline) -> None:
    @SETTINGS
    @given(raw=st.binary(max_size=2000), mail_from=mail_froms)
    def check(raw: bytes, mail_from: str) -> None:
        check_outcome(pipeline, raw, pipeline.accept(raw, mail_from))

    check()


def test_well_formed_messages_with_random_headers_are_accounted_for(pipeline: Pipeline) -> None:
    @SETTINGS
    @given(raw=well_formed(), mail_from=mail_froms)
    def check(raw: bytes, mail_from: str) -> None:
        check_outcome(pipeline, raw, pipeline.accept(raw, mail_from))

    check()


def test_mutated_realistic_messages_are_accounted_for(pipeline: Pipeline) -> None:
    @SETTINGS
    @given(raw=mutated(), mail_from=mail_froms)
    def check(raw: bytes, mail_from: str) -> None:
        check_outcome(pipeline, raw, pipeline.accept(raw, mail_from))

    check()


@st.composite
def customer_message(draw: st.DrawFn) -> tuple[bytes, str]:
    """A person's first message: a valid From, no automatic header or report content type,
    and a subject that neither carries a ticket tag nor starts like an auto-reply's."""
    address = f"{draw(local_parts)}@customer.test"
    subject = draw(header_text.filter(lambda s: "[#" not in s))
    lines = [
        _header("From", formataddr((draw(names), address))),
        _header("To", draw(st.sampled_from([OURS, f"Support <{OURS}>"]))),
        _header("Subject", f"Question: {subject}"),
    ]
    plain = [n for n in sorted(optional_headers) if n not in AUTOMATIC_HEADERS]
    plain = [n for n in plain if n not in ("Message-ID", "Date")]  # made unique by the test
    for name in draw(st.lists(st.sampled_from(plain), max_size=4, unique=True)):
        values = optional_headers[name]
        if name == "Content-Type":  # a delivery or read report is a machine's, not a person's
            values = values.filter(lambda value: "report" not in value)
        lines.append(_header(name, draw(values)))
    body = draw(body_text).replace("\r\n", "\n").replace("\n", "\r\n")
    return b"\r\n".join(lines) + b"\r\n\r\n" + body.encode(), address


def test_customer_message_opens_a_ticket_and_its_redelivery_is_a_duplicate(
    pipeline: Pipeline,
) -> None:
    # Each example is a new message: a unique Message-ID, or without one a unique Date (the
    # duplicate check then compares sender, Date, subject and text).
    unique = itertools.count(1)

    @SETTINGS
    @given(message=customer_message(), with_message_id=st.booleans())
    def check(message: tuple[bytes, str], with_message_id: bool) -> None:
        body, address = message
        number = next(unique)
        header = (
            f"Message-ID: <property-{number}@customer.test>"
            if with_message_id
            else f"Date: Mon, 05 Jan 2026 09:{number // 60 % 60:02}:{number % 60:02} +0000"
        )
        raw = header.encode() + b"\r\n" + body

        first = check_outcome(pipeline, raw, pipeline.accept(raw, address))
        assert first.state is InboundState.PROCESSED, (first.reason, first.decisions)
        assert first.automatic is None
        _, _, ticket = pipeline.inbound(first.id)
        assert ticket is not None
        assert ticket.customer.email == address
        assert any(d.startswith("apply: opened ticket") for d in first.decisions)

        again = check_outcome(pipeline, raw, pipeline.accept(raw, address))
        assert (again.state, again.reason) == (
            InboundState.DISCARDED,
            f"duplicate of inbound {first.id}",
        )
        assert again.ticket_id is None

    check()


# ------------------------------------------------------------ found by the properties
# Cases the properties above once found, kept as plain regression tests.


def test_customer_whose_local_part_ends_in_a_dot_gets_a_ticket(pipeline: Pipeline) -> None:
    raw = (
        b"From: Taro <taro.@docomo.ne.jp>\r\nTo: support@example.com\r\n"
        b"Subject: Help\r\nMessage-ID: <dot@docomo.ne.jp>\r\n\r\nMy order.\r\n"
    )
    inbound = check_outcome(pipeline, raw, pipeline.accept(raw, "taro.@docomo.ne.jp"))
    assert inbound.state is InboundState.PROCESSED, inbound.reason


def test_envelope_sender_with_undecodable_bytes_is_kept(pipeline: Pipeline) -> None:
    raw = b"From: bob@customer.test\r\nTo: support@example.com\r\nSubject: 8-bit\r\n\r\nx\r\n"
    mail_from = b"\xff\xfe@customer.test".decode("ascii", "surrogateescape")
    check_outcome(pipeline, raw, pipeline.accept(raw, mail_from))


@pytest.mark.parametrize(
    "mail_from", ["a\x00b@customer.test", "x" * 400 + "@customer.test"], ids=["nul", "long"]
)
def test_odd_envelope_sender_is_kept(pipeline: Pipeline, mail_from: str) -> None:
    raw = b"From: bob@customer.test\r\nTo: support@example.com\r\nSubject: odd\r\n\r\nx\r\n"
    check_outcome(pipeline, raw, pipeline.accept(raw, mail_from))


def test_message_id_longer_than_its_column_is_kept(pipeline: Pipeline) -> None:
    raw = (
        b"From: bob@customer.test\r\nTo: support@example.com\r\nSubject: long id\r\n"
        b"Message-ID: <" + b"x" * 1200 + b"@long.test>\r\n\r\nx\r\n"
    )
    check_outcome(pipeline, raw, pipeline.accept(raw, "bob@customer.test"))
