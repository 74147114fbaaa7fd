"""compose(): outgoing mail that is well-formed, threads, and cannot be bent by its inputs."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest

from mailflow.mail.addresses import Mailbox
from mailflow.mail.compose import (
    MAX_REFERENCES,
    AutoSubmitted,
    Outgoing,
    compose,
    header_safe,
    new_message_id,
)
from mailflow.mail.parse import ParsedAttachment, parse

NOW = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
OUT = Outgoing(
    sender=Mailbox("Example Support", "support@example.com"),
    to=(Mailbox("Bob", "bob@customer.example"),),
    subject="[#7] Re: Printer",
    text="We are on it.\n",
    message_id="m1@example.com",
    date=NOW,
)


def wire(out: Outgoing) -> bytes:
    """The bytes the outbox stores and the relay receives."""
    return compose(out).as_bytes(policy=policy.SMTP)


def head(raw: bytes) -> list[bytes]:
    return raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n")


def header_names(raw: bytes) -> list[str]:
    return [line.split(b":", 1)[0].decode().lower() for line in head(raw) if line[:1] not in b" \t"]


def reread(raw: bytes) -> EmailMessage:
    message = message_from_bytes(raw, _class=EmailMessage, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def test_plain_reply_has_the_headers_a_client_expects() -> None:
    raw = wire(OUT)
    parsed = parse(raw)

    assert parsed.sender == Mailbox("Example Support", "support@example.com")
    assert parsed.to == (Mailbox("Bob", "bob@customer.example"),)
    assert parsed.subject == "[#7] Re: Printer"
    assert parsed.message_id == "m1@example.com"
    assert parsed.date == NOW
    assert parsed.text == "We are on it."
    assert parsed.html is None


# ------------------------------------------------------------------------ header safety

INJECTIONS = [
    "Hi\r\nBcc: evil@attacker.example",
    "Hi\nBcc: evil@attacker.example",
    "Hi\rBcc: evil@attacker.example",
    "Hi\u2028Bcc: evil@attacker.example",
    "Hi\x85Bcc: evil@attacker.example",
    "=?utf-8?q?Hi=0D=0ABcc:_evil@attacker.example?=",
]


@pytest.mark.parametrize("subject", INJECTIONS)
def test_line_breaks_in_the_subject_cannot_add_a_header(subject: str) -> None:
    raw = wire(replace(OUT, subject=subject))

    assert "bcc" not in header_names(raw)
    assert header_names(raw).count("subject") == 1
    assert parse(raw).subject == "Hi Bcc: evil@attacker.example"


@pytest.mark.parametrize("name", INJECTIONS)
def test_line_breaks_in_a_display_name_cannot_add_a_header(name: str) -> None:
    out = replace(
        OUT,
        sender=Mailbox(name, "support@example.com"),
        to=(Mailbox(name, "bob@customer.example"),),
        reply_to=Mailbox(name, "support+7@example.com"),
    )

    raw = wire(out)

    assert "bcc" not in header_names(raw)
    parsed = parse(raw)
    assert parsed.to == (Mailbox("Hi Bcc: evil@attacker.example", "bob@customer.example"),)
    assert parsed.reply_to == (Mailbox("Hi Bcc: evil@attacker.example", "support+7@example.com"),)


def test_line_breaks_in_threading_ids_cannot_add_a_header() -> None:
    raw = wire(replace(OUT, in_reply_to="a@x\r\nBcc: e@x.example", references=("b@x\nBcc: e@x",)))

    assert "bcc" not in header_names(raw)


@pytest.mark.parametrize(
    ("value", "safe"),
    [
        ("plain", "plain"),
        ("  padded  ", "padded"),
        ("a\r\nb", "a b"),
        ("a\x00b", "a b"),
        ("a\x0bb\x0cc", "a b c"),
        ("=?utf-8?q?Zo=C3=AB?=", "Zoë"),
    ],
)
def test_header_safe_leaves_one_line(value: str, safe: str) -> None:
    assert header_safe(value) == safe


def test_header_safe_defuses_an_encoded_word_it_cannot_decode() -> None:
    safe = header_safe("=?x-unknown?q?a=0D=0Ab?=")

    assert not re.search(r"=\?[^?]*\?[qQbB]\?", safe)


# ------------------------------------------------------------------ encoding and folding


def test_non_ascii_display_name_is_rfc2047_encoded_and_reads_back() -> None:
    out = replace(OUT, to=(Mailbox("José Ñoño", "jose@example.es"),))

    raw = wire(out)

    to_line = next(line for line in head(raw) if line.lower().startswith(b"to:"))
    assert to_line.isascii()
    assert b"=?utf-8?" in to_line.lower()
    assert parse(raw).to == (Mailbox("José Ñoño", "jose@example.es"),)


def test_display_name_with_a_comma_stays_one_mailbox() -> None:
    raw = wire(replace(OUT, to=(Mailbox("Doe, Jane", "jane@example.org"),)))

    assert parse(raw).to == (Mailbox("Doe, Jane", "jane@example.org"),)


def test_long_subject_is_folded_and_reads_back_unchanged() -> None:
    subject = "[#7] Re: " + "Überweisung fehlgeschlagen – bitte prüfen Sie die Angaben " * 4

    raw = wire(replace(OUT, subject=subject.strip()))

    assert all(len(line) <= 78 for line in head(raw))
    assert all(line.isascii() for line in head(raw))
    assert parse(raw).subject == subject.strip()


def test_non_ascii_body_is_sent_as_utf8() -> None:
    raw = wire(replace(OUT, text="Grüße, Zoë\n"))

    message = reread(raw)
    assert message.get_content_charset() == "utf-8"
    assert parse(raw).text == "Grüße, Zoë"


# ---------------------------------------------------------------------------- threading


def test_reply_names_the_message_it_answers_and_the_thread() -> None:
    raw = wire(replace(OUT, in_reply_to="their-2@customer.example", references=("root@x", "t@y")))

    message = reread(raw)
    assert message["In-Reply-To"] == "<their-2@customer.example>"
    assert message["References"] == "<root@x> <t@y>"
    assert parse(raw).thread_ids == ("their-2@customer.example", "t@y", "root@x")


def test_references_keep_only_the_newest_ids() -> None:
    ids = tuple(f"id{n}@example.com" for n in range(MAX_REFERENCES + 5))

    parsed = parse(wire(replace(OUT, references=ids)))

    assert parsed.references == ids[-MAX_REFERENCES:]


def test_new_mail_has_no_threading_headers() -> None:
    names = header_names(wire(OUT))

    assert "in-reply-to" not in names
    assert "references" not in names


def test_new_message_ids_are_unique_and_use_the_domain() -> None:
    first, second = new_message_id("example.com"), new_message_id("example.com")

    assert first != second
    assert first.endswith("@example.com")
    assert parse(wire(replace(OUT, message_id=first))).message_id == first


# ----------------------------------------------------------------------- automatic mail


@pytest.mark.parametrize("kind", [AutoSubmitted.AUTO_REPLIED, AutoSubmitted.AUTO_GENERATED])
def test_automatic_mail_says_so_and_asks_exchange_not_to_answer(kind: str) -> None:
    message = reread(wire(replace(OUT, auto_submitted=kind)))

    assert message["Auto-Submitted"] == kind
    assert message["X-Auto-Response-Suppress"] == "All"


def test_mail_a_person_sent_is_not_marked_automatic() -> None:
    names = header_names(wire(replace(OUT, auto_submitted=None)))

    assert "auto-submitted" not in names
    assert "x-auto-response-suppress" not in names


# ------------------------------------------------------------------ html and attachments


def test_html_is_an_alternative_after_the_text() -> None:
    message = reread(wire(replace(OUT, html="<p>We are <b>on</b> it.</p>")))

    assert message.get_content_type() == "multipart/alternative"
    parts = [part.get_content_type() for part in message.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    parsed = parse(message.as_bytes())
    assert parsed.text == "We are on it."
    assert parsed.html is not None
    assert "<b>on</b>" in parsed.html


def test_mime_version_appears_once_however_many_parts() -> None:
    out = replace(
        OUT,
        html="<p>x</p>",
        attachments=(ParsedAttachment("a.pdf", "application/pdf", b"%PDF"),),
    )

    assert header_names_everywhere(wire(out)).count("mime-version") == 1


def header_names_everywhere(raw: bytes) -> list[str]:
    return [
        line.split(b":", 1)[0].decode().lower()
        for line in raw.split(b"\r\n")
        if re.match(rb"^[A-Za-z-]+:", line)
    ]


def test_attachment_keeps_its_name_type_and_bytes() -> None:
    attachment = ParsedAttachment("Rechnung März.pdf", "application/pdf", b"%PDF-1.4\x00\xff")

    parsed = parse(wire(replace(OUT, attachments=(attachment,))))

    assert parsed.text == "We are on it."
    assert [(a.filename, a.content_type, a.data) for a in parsed.attachments] == [
        ("Rechnung März.pdf", "application/pdf", b"%PDF-1.4\x00\xff")
    ]


def test_line_break_in_an_attachment_name_cannot_add_a_header() -> None:
    attachment = ParsedAttachment("a.pdf\r\nBcc: e@x.example", "application/pdf", b"%PDF")

    raw = wire(replace(OUT, attachments=(attachment,)))

    assert "bcc" not in header_names_everywhere(raw)
    assert [a.filename for a in parse(raw).attachments] == ["a.pdf Bcc: e@x.example"]


FORWARDED = (
    "From: Zoë <zoe@example.org>\r\nSubject: Ça va\r\nMessage-ID: <fwd@example.org>\r\n"
    "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
    "Content-Transfer-Encoding: 8bit\r\n\r\nÇa va très bien.\r\n"
).encode()


def test_forwarded_message_is_attached_as_a_message_not_base64() -> None:
    attachment = ParsedAttachment("fwd.eml", "message/rfc822", FORWARDED)

    raw = wire(replace(OUT, attachments=(attachment,)))

    message = reread(raw)
    (_, forward) = message.iter_parts()
    assert forward.get_content_type() == "message/rfc822"
    assert forward["Content-Transfer-Encoding"] in ("7bit", "8bit", "binary")
    (kept,) = parse(raw).attachments
    assert kept.content_type == "message/rfc822"
    inner = parse(kept.data)
    assert (inner.subject, inner.message_id, inner.text) == (
        "Ça va",
        "fwd@example.org",
        "Ça va très bien.",
    )


def test_forwarded_message_keeps_its_own_mime_version() -> None:
    attachment = ParsedAttachment("fwd.eml", "message/rfc822", FORWARDED)

    (kept,) = parse(wire(replace(OUT, attachments=(attachment,)))).attachments

    assert parse(kept.data).header("MIME-Version") == "1.0"


def test_a_forward_received_today_can_be_sent_on() -> None:
    received = parse(
        b"From: a@example.org\r\nTo: support@example.com\r\nSubject: fwd\r\n"
        b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="M"\r\n\r\n'
        b"--M\r\nContent-Type: text/plain\r\n\r\nFYI\r\n"
        b"--M\r\nContent-Type: message/rfc822\r\n\r\n" + FORWARDED + b"\r\n--M--\r\n"
    )

    sent = parse(wire(replace(OUT, attachments=received.attachments)))

    (kept,) = sent.attachments
    assert parse(kept.data).text == "Ça va très bien."


@pytest.mark.parametrize(
    "content_type",
    [
        "multipart/mixed",
        "message/delivery-status",
        "message/partial",
        "message/external-body",
        "weird",
        "",
        "/",
        "text/",
        "a/b/c",
    ],
)
def test_odd_attachment_types_are_sent_as_plain_files(content_type: str) -> None:
    attachment = ParsedAttachment("odd.bin", content_type, b"Reporting-MTA: dns; x\r\n")

    parsed = parse(wire(replace(OUT, attachments=(attachment,))))

    assert parsed.text == "We are on it."
    assert [(a.filename, a.content_type, a.data) for a in parsed.attachments] == [
        ("odd.bin", "application/octet-stream", b"Reporting-MTA: dns; x\r\n")
    ]


def test_forward_that_is_not_a_message_is_sent_as_a_plain_file() -> None:
    attachment = ParsedAttachment("fwd.eml", "message/rfc822", b"\xff\xfe no headers at all")

    (kept,) = parse(wire(replace(OUT, attachments=(attachment,)))).attachments

    assert (kept.content_type, kept.data) == ("application/octet-stream", attachment.data)


def test_content_type_with_parameters_keeps_its_type() -> None:
    attachment = ParsedAttachment("a.pdf", "Application/PDF; name=a.pdf", b"%PDF")

    (kept,) = parse(wire(replace(OUT, attachments=(attachment,)))).attachments

    assert kept.content_type == "application/pdf"
