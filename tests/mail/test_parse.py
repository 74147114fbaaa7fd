"""parse(): what a received message says, whatever state it arrives in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailflow.mail.addresses import Mailbox
from mailflow.mail.parse import ParsedMessage, decode_text, message_ids, parse

CORPUS = Path(__file__).parents[1] / "corpus"


def corpus(name: str) -> ParsedMessage:
    return parse((CORPUS / name).read_bytes())


def mail(*header_lines: str, body: bytes = b"Hello.", content_type: str | None = None) -> bytes:
    """A message with the given headers (From/To/Subject supplied unless given) and body."""
    names = {line.split(":", 1)[0].lower() for line in header_lines}
    headers = [line.encode("utf-8", "surrogateescape") for line in header_lines]
    for name, default in (
        ("from", b"Bob <bob@customer.example>"),
        ("to", b"support@example.com"),
        ("subject", b"Printer"),
    ):
        if name not in names:
            headers.append(name.capitalize().encode() + b": " + default)
    if content_type:
        headers += [
            b"MIME-Version: 1.0",
            b"Content-Type: " + content_type.encode("utf-8", "surrogateescape"),
            b"Content-Transfer-Encoding: 8bit",
        ]
    return b"\r\n".join(headers) + b"\r\n\r\n" + body + b"\r\n"


# ------------------------------------------------------------------------------ charsets


def test_windows_1252_labelled_as_utf8_is_read_as_cp1252() -> None:
    parsed = corpus("cp1252-labelled-utf8.eml")

    assert parsed.text == "Grüße aus Köln – die Rechnung über 10 € ist falsch."
    assert "charset utf-8 did not fit; read as cp1252" in parsed.defects


def test_utf8_labelled_as_latin1_is_read_as_utf8() -> None:
    parsed = corpus("utf8-labelled-latin1.eml")

    assert parsed.text == "Café crème – 5 € s’il vous plaît."
    assert "charset iso-8859-1 did not fit; read as utf-8" in parsed.defects


@pytest.mark.parametrize("label", ["windows-1252", "latin1", "us-ascii"])
def test_utf8_under_any_western_label_is_read_as_utf8(label: str) -> None:
    raw = mail(body="Zoë’s café".encode(), content_type=f"text/plain; charset={label}")

    assert parse(raw).text == "Zoë’s café"


@pytest.mark.parametrize("label", ["iso-8859-1", "latin1", "l1", "ISO_8859-1"])
def test_latin1_label_on_windows_1252_text_keeps_dashes_and_euro_signs(label: str) -> None:
    raw = mail(body="10 € – fällig".encode("cp1252"), content_type=f"text/plain; charset={label}")

    parsed = parse(raw)

    assert parsed.text == "10 € – fällig"
    assert parsed.defects == ()  # what the label allows for: nothing is wrong with this mail


def test_real_latin1_text_is_read_as_latin1_without_a_defect() -> None:
    raw = mail(body="Schöne Grüße".encode("latin-1"), content_type="text/plain; charset=latin-1")

    parsed = parse(raw)

    assert parsed.text == "Schöne Grüße"
    assert parsed.defects == ()


def test_eight_bit_text_without_a_charset_is_read_as_utf8() -> None:
    raw = mail(body="Grüße".encode(), content_type="text/plain")

    assert parse(raw).text == "Grüße"


def test_unknown_charset_falls_back_and_records_a_defect() -> None:
    parsed = corpus("undecodable-charset.eml")

    assert parsed.text == "Grüezi aus Zürich."
    assert "charset x-no-such-charset did not fit; read as utf-8" in parsed.defects


def test_bytes_no_charset_defines_are_kept_as_their_c1_characters() -> None:
    # 0x81 is neither UTF-8 nor windows-1252; WHATWG's windows-1252 keeps it as U+0081.
    text, defect = decode_text(b"caf\xe9 \x81", "utf-8")

    assert text == "café \x81"
    assert defect == "charset utf-8 did not fit; read as cp1252"


@pytest.mark.parametrize("label", ["undefined", "base64", "utf-8\x00", "x\udcff"])
def test_a_charset_label_no_codec_can_use_does_not_lose_the_message(label: str) -> None:
    raw = mail(
        "Message-ID: <odd-label@customer.example>",
        body="Grüße".encode(),
        content_type=f'text/plain; charset="{label}"',
    )

    parsed = parse(raw)

    assert parsed.text == "Grüße"
    assert parsed.message_id == "odd-label@customer.example"
    assert parsed.subject == "Printer"


def test_iso_2022_jp_subject_sender_and_body_are_decoded() -> None:
    parsed = corpus("iso-2022-jp.eml")

    assert parsed.subject == "お問い合わせ"
    assert parsed.sender == Mailbox("山田太郎", "yamada@example.jp")
    assert parsed.text == "プリンターが動きません。"
    assert parsed.defects == ()


def test_koi8_r_subject_sender_and_body_are_decoded() -> None:
    parsed = corpus("koi8-r.eml")

    assert parsed.subject == "Принтер не работает"
    assert parsed.sender == Mailbox("Иван Петров", "ivan@example.ru")
    assert parsed.text == "Здравствуйте, принтер не печатает."


def test_raw_latin1_bytes_in_headers_are_read_as_windows_1252() -> None:
    parsed = corpus("latin1-raw-headers.eml")

    assert parsed.subject == "Rückfrage zur Bestellung"
    assert parsed.sender == Mailbox("Jürgen Müller", "juergen@example.de")
    assert parsed.text == "Schöne Grüße"


def test_raw_utf8_bytes_in_headers_are_read_as_utf8() -> None:
    raw = mail("From: José Núñez <jose@example.es>", "Subject: Mañana – café")

    parsed = parse(raw)

    assert parsed.subject == "Mañana – café"
    assert parsed.sender == Mailbox("José Núñez", "jose@example.es")


def test_nul_characters_are_removed_from_text_and_headers() -> None:
    raw = mail("Subject: Prin\x00ter", body=b"Hel\x00lo")

    parsed = parse(raw)

    assert parsed.subject == "Printer"
    assert parsed.text == "Hello"
    assert "NUL characters removed from the text" in parsed.defects


# ------------------------------------------------------------------------- bodies, HTML


def test_html_only_message_gets_readable_text() -> None:
    parsed = corpus("html-only.eml")

    assert parsed.html is not None
    assert "<b>Support</b>" in parsed.html
    lines = [line.strip() for line in parsed.text.splitlines() if line.strip()]
    assert lines == [
        "Hello Support,",
        "the printer & the scanner are broken.",
        "* Model: LX-500",
        "* Room: Küche",
    ]


def test_html_to_text_leaves_out_scripts_and_styles() -> None:
    text = corpus("html-only.eml").text

    assert "alert" not in text
    assert "color" not in text
    assert "<" not in text


def test_plain_alternative_is_the_text_and_html_is_kept_beside_it() -> None:
    body = (
        b"--ALT\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nPlain words.\r\n"
        b"--ALT\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>Rich <i>words</i>.</p>\r\n"
        b"--ALT--"
    )
    raw = mail(body=body, content_type='multipart/alternative; boundary="ALT"')

    parsed = parse(raw)

    assert parsed.text == "Plain words."
    assert parsed.html == "<p>Rich <i>words</i>.</p>"  # the CRLF before a boundary is its own
    assert parsed.attachments == ()


def test_empty_plain_alternative_falls_back_on_the_html() -> None:
    body = (
        b"--ALT\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\r\n"
        b"--ALT\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>Only here.</p>\r\n"
        b"--ALT--"
    )
    raw = mail(body=body, content_type='multipart/alternative; boundary="ALT"')

    assert parse(raw).text == "Only here."


def test_missing_boundary_reads_the_body_as_text_and_records_a_defect() -> None:
    parsed = corpus("missing-boundary.eml")

    assert parsed.text == "My mail program forgot the boundary, but this is my question."
    assert "multipart body without its boundary, read as text" in parsed.defects
    assert "NoBoundaryInMultipartDefect" in parsed.defects


def test_boundary_that_never_appears_still_gives_the_text() -> None:
    raw = mail(body=b"Just text.", content_type='multipart/mixed; boundary="NEVER"')

    parsed = parse(raw)

    assert parsed.text == "Just text."
    assert "StartBoundaryNotFoundDefect" in parsed.defects


# -------------------------------------------------------------------------- attachments


def test_rfc2231_and_rfc2047_attachment_names_are_decoded() -> None:
    parsed = corpus("rfc2231-filename.eml")

    assert parsed.text == "Three files attached."
    assert [(a.filename, a.content_type, a.data) for a in parsed.attachments] == [
        ("Rechnung März 2024.pdf", "application/pdf", b"%PDF-1.4 invoice"),
        ("Zażółć gęślą.txt", "text/plain", "jaźń".encode()),
        ("日本.png", "image/png", b"\x89PNG\r\n\x1a\n"),
    ]


def test_attachment_without_a_name_is_named_for_its_type() -> None:
    body = (
        b"--M\r\nContent-Type: text/plain\r\n\r\nSee file.\r\n"
        b"--M\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        b"JVBERg==\r\n--M--"
    )
    raw = mail(body=body, content_type='multipart/mixed; boundary="M"')

    (attachment,) = parse(raw).attachments

    assert (attachment.filename, attachment.data) == ("application.pdf", b"%PDF")


def test_inline_image_keeps_its_content_id_and_is_marked_inline() -> None:
    body = (
        b'--R\r\nContent-Type: text/html\r\n\r\n<img src="cid:logo@x">Hi\r\n'
        b"--R\r\nContent-Type: image/png\r\nContent-Disposition: inline\r\n"
        b"Content-ID: <logo@x>\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw==\r\n--R--"
    )
    raw = mail(body=body, content_type='multipart/related; boundary="R"')

    (image,) = parse(raw).attachments

    assert image.inline is True
    assert image.content_id == "logo@x"
    assert image.data == b"\x89PNG"


def test_forwarded_message_is_an_eml_attachment_not_part_of_the_text() -> None:
    parsed = corpus("nested-forward.eml")

    assert parsed.text == "Forwarding this, see the attached mail."
    (forward,) = parsed.attachments
    assert (forward.filename, forward.content_type) == ("bob.eml", "message/rfc822")
    inner = parse(forward.data)
    assert inner.sender == Mailbox("Bob", "bob@example.net")
    assert inner.message_id == "bob-1@example.net"
    assert inner.text == "Inner text from Bob."


def test_a_forward_inside_a_forward_stays_inside_it() -> None:
    (forward,) = corpus("nested-forward.eml").attachments

    (innermost,) = parse(forward.data).attachments

    assert innermost.content_type == "message/rfc822"
    assert parse(innermost.data).text == "Innermost text from Carol."


def test_unnamed_forward_is_called_forwarded_message_eml() -> None:
    body = (
        b"--M\r\nContent-Type: text/plain\r\n\r\nFYI\r\n"
        b"--M\r\nContent-Type: message/rfc822\r\n\r\n"
        b"From: c@example.com\r\nSubject: old\r\n\r\nold text\r\n--M--"
    )
    raw = mail(body=body, content_type='multipart/mixed; boundary="M"')

    parsed = parse(raw)

    assert parsed.text == "FYI"
    assert [a.filename for a in parsed.attachments] == ["forwarded-message.eml"]


def test_forward_whose_headers_cannot_be_written_back_is_still_attached() -> None:
    # The email package reads a byte in a header name but cannot write it out again.
    body = (
        b"--M\r\nContent-Type: text/plain\r\n\r\nFYI\r\n"
        b"--M\r\nContent-Type: message/rfc822\r\n\r\n"
        b'From: c@example.com\r\nContent-Type: multipart/mixed; ndary="Y"\r\n\r\n'
        b"--Y\r\nContent-T\xadpe: t\xc3ext/plain\r\n\r\nold\r\n--Y--\r\n--M--"
    )
    raw = mail(body=body, content_type='multipart/mixed; boundary="M"')

    parsed = parse(raw)

    assert parsed.text == "FYI"
    (forward,) = parsed.attachments
    assert forward.content_type == "message/rfc822"
    assert b"From: c@example.com" in forward.data


@pytest.mark.parametrize(
    "content_type",
    [
        # Both made the email package raise while reading the MIME tree.
        "application/pdf; name*=u\x00tf-8''r%C3%A9sum%C3%A9.pdf",
        "application/pdf; name*\n =utf-8''r%C3%A9sum%C3%A9.pdf",
    ],
)
def test_a_header_the_email_package_chokes_on_does_not_lose_the_message(
    content_type: str,
) -> None:
    body = (
        b"--M\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n"
        b"--M\r\nContent-Type: "
        + content_type.encode()
        + b"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERg==\r\n--M--"
    )
    raw = mail("Message-ID: <choke@customer.example>", body=body)
    raw = raw.replace(
        b"\r\n\r\n",
        b'\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="M"\r\n\r\n',
        1,
    )

    parsed = parse(raw)

    assert parsed.subject == "Printer"
    assert parsed.sender == Mailbox("Bob", "bob@customer.example")
    assert parsed.message_id == "choke@customer.example"
    assert parsed.text == "See attached."
    assert [a.data for a in parsed.attachments] == [b"%PDF"]
    assert not any(d.startswith("unparseable") for d in parsed.defects)


# ------------------------------------------------------------------ addresses, threading


def test_message_without_from_has_no_sender() -> None:
    parsed = corpus("no-from.eml")

    assert parsed.sender is None
    assert parsed.to == (Mailbox("Support", "support@example.com"),)
    assert parsed.text == "This message has no From header."


def test_from_that_is_not_an_address_gives_no_sender() -> None:
    assert parse(mail("From: just some words")).sender is None


def test_recipients_are_normalised_and_invalid_ones_dropped() -> None:
    parsed = corpus("thread-reply.eml")

    assert parsed.sender == Mailbox("Bob", "bob@customer.example")
    assert parsed.to == (
        Mailbox("Support", "support+42@example.com"),
        Mailbox("", "other@example.org"),
    )
    assert parsed.cc == (Mailbox("Doe, Jane", "jane@example.org"),)


def test_thread_ids_name_in_reply_to_first_then_references_newest_first() -> None:
    parsed = corpus("thread-reply.eml")

    assert parsed.message_id == "reply-3@customer.example"
    assert parsed.in_reply_to == ("reply-2@example.com",)
    assert parsed.references == ("root-1@customer.example", "reply-2@example.com")
    assert parsed.thread_ids == ("reply-2@example.com", "root-1@customer.example")


def test_thread_ids_without_in_reply_to_walk_references_backwards() -> None:
    raw = mail("References: <a@x> <b@x>\r\n <c@x>")

    assert parse(raw).thread_ids == ("c@x", "b@x", "a@x")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("<a@x> <b@x>", ("a@x", "b@x")),
        ("<a@x> (Bob's message of Monday)", ("a@x",)),
        ("a@x", ("a@x",)),
        ("<a@x", ("a@x",)),
        ("", ()),
        ("   ", ()),
        (None, ()),
    ],
)
def test_message_ids_are_read_with_or_without_angle_brackets(
    value: str | None, expected: tuple[str, ...]
) -> None:
    assert message_ids(value) == expected


def test_date_keeps_its_zone() -> None:
    parsed = corpus("thread-reply.eml")

    assert parsed.date == datetime(2024, 1, 2, 10, 30, tzinfo=timezone(timedelta(hours=1)))


def test_date_with_unknown_zone_is_taken_as_utc() -> None:
    parsed = parse(mail("Date: Tue, 02 Jan 2024 10:30:00 -0000"))

    assert parsed.date == datetime(2024, 1, 2, 10, 30, tzinfo=UTC)


@pytest.mark.parametrize("value", ["yesterday", "Mon, 31 Feb 2024 10:00:00 +0000", ""])
def test_unreadable_date_is_none(value: str) -> None:
    assert parse(mail(f"Date: {value}")).date is None


def test_header_lookup_ignores_case_and_keeps_repeats_in_order() -> None:
    parsed = corpus("thread-reply.eml")

    assert parsed.header("MESSAGE-id") == "<reply-3@customer.example>"
    assert parsed.header("X-Not-There") is None
    received = parsed.headers["received"]
    assert [r.split()[1] for r in received] == ["a.example", "c.example"]


def test_folded_header_is_unfolded() -> None:
    raw = mail("Subject: a long\r\n\tsubject  line")

    assert parse(raw).subject == "a long subject line"


# ------------------------------------------------------------------------ never raises

CORPUS_BYTES = [path.read_bytes() for path in sorted(CORPUS.glob("*.eml"))]
TOKENS = [
    b"\r\n",
    b"\n",
    b":",
    b";",
    b"=",
    b"=?",
    b"?=",
    b"?q?",
    b"--",
    b"<",
    b">",
    b'"',
    b"\\",
    b"*0*=",
    b"''",
    b"\x00",
    b"\xff",
    b"\xc3",
    b"boundary=",
    b"charset=",
    b"Content-Type: message/rfc822\r\n",
    b"Content-Type: multipart/mixed\r\n",
    b"Content-Transfer-Encoding: base64\r\n",
]


@st.composite
def mutated_corpus_message(draw: st.DrawFn) -> bytes:
    raw = bytearray(draw(st.sampled_from(CORPUS_BYTES)))
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(raw)))
        change = draw(st.sampled_from(["insert", "delete", "replace"]))
        if change == "insert":
            raw[at:at] = draw(st.sampled_from(TOKENS) | st.binary(min_size=1, max_size=8))
        elif change == "delete":
            del raw[at : at + draw(st.integers(1, 40))]
        else:
            raw[at : at + 1] = draw(st.binary(min_size=1, max_size=1))
    return bytes(raw)


def _assert_sane(parsed: ParsedMessage) -> None:
    assert isinstance(parsed, ParsedMessage)
    assert isinstance(parsed.text, str)
    assert "\x00" not in parsed.text
    assert all(isinstance(d, str) for d in parsed.defects)


@settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(st.binary(max_size=2000))
def test_parse_never_raises_on_arbitrary_bytes(raw: bytes) -> None:
    _assert_sane(parse(raw))


@settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(mutated_corpus_message())
def test_parse_never_raises_on_mutated_corpus_messages(raw: bytes) -> None:
    _assert_sane(parse(raw))
