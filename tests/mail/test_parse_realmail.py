"""parse() on people's mail as real clients and servers write it: charset labels from the
wild, text parts that carry a file name, damaged header blocks, lines past 998 characters."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from mailflow.mail.charsets import codec_for, decode_text, normalise_encoded_words
from mailflow.mail.parse import parse

CORPUS = Path(__file__).parents[1] / "corpus"

# file → what a reader sees: sender, subject and a phrase of the text (shared with bench/).
READ = {
    name: (seen["from"], seen["subject"], seen["text"])
    for name, seen in json.loads((CORPUS / "expected-reading.json").read_text("utf-8")).items()
}


@pytest.mark.parametrize("name", sorted(READ))
def test_real_world_message_is_read(name: str) -> None:
    sender, subject, phrase = READ[name]

    parsed = parse((CORPUS / name).read_bytes())

    assert parsed.sender is not None, parsed.defects
    assert parsed.sender.address == sender
    assert parsed.subject == subject
    assert phrase in parsed.text
    assert "\ufffd" not in parsed.text + parsed.subject


def test_named_text_part_beside_a_body_stays_an_attachment() -> None:
    raw = (
        b"From: bob@customer.test\r\nSubject: Log\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nLog attached.\r\n"
        b'--b\r\nContent-Type: text/plain; name="printer.log"\r\n'
        b'Content-Disposition: attachment; filename="printer.log"\r\n\r\nE-502\r\n--b--\r\n'
    )

    parsed = parse(raw)

    assert parsed.text == "Log attached."
    assert [a.filename for a in parsed.attachments] == ["printer.log"]


@pytest.mark.parametrize(
    ("name", "defect"),
    [
        ("stray-line-inside.eml", "stray line among the headers: 'X-Mailer Microsoft Outlook"),
        ("pop-banner-before.eml", "banner before the headers: '+OK 412 octets'"),
        ("blank-lines-before.eml", "2 blank lines before the headers"),
        ("space-before-colon.eml", "space before the colon of Subject"),
    ],
)
def test_damaged_header_block_records_what_was_wrong(name: str, defect: str) -> None:
    parsed = parse((CORPUS / "damaged-headers" / name).read_bytes())

    assert any(d.startswith(defect) for d in parsed.defects), parsed.defects


def test_message_without_any_header_is_read_as_text() -> None:
    parsed = parse(b"\r\n\r\nJust some words, no headers at all.\r\n")

    assert parsed.text == "Just some words, no headers at all."
    assert parsed.sender is None


def test_body_line_with_a_colon_after_the_headers_is_not_taken_for_a_header() -> None:
    raw = b"From: bob@customer.test\r\nSubject: Hi\r\nHello team,\r\nNote: it broke\r\n"

    parsed = parse(raw)

    assert parsed.subject == "Hi"
    assert "Note: it broke" in parsed.text


@pytest.mark.parametrize(
    ("label", "codec"),
    [
        ("utf8", "utf-8"),
        ("latin1", "cp1252"),
        ("us-ascii", "cp1252"),
        ("ks_c_5601-1987", "cp949"),
        ("windows-874", "cp874"),
        ("gb2312", "gb18030"),
        ("shift_jis", "cp932"),
        ("iso-gb2312", "gb18030"),
        ("unicode-1-1-utf-7", "utf-7"),
        ("iso-2022-kr", "iso2022_kr"),
    ],
)
def test_real_world_labels_map_to_the_whatwg_reading(label: str, codec: str) -> None:
    info = codec_for(label)

    assert info is not None
    assert info.name == codec


@pytest.mark.parametrize("label", ["x-unknown", "base64", "unknown-8bit", "x\udcff"])
def test_labels_nothing_knows_have_no_codec(label: str) -> None:
    assert codec_for(label) is None


def test_utf8_with_one_broken_byte_stays_utf8() -> None:
    text, defect = decode_text("Grüße aus Köln ".encode() + b"\xff", "utf-8")

    assert text == "Grüße aus Köln \ufffd"
    assert defect == "charset utf-8: 1 broken sequences replaced"


def test_encoded_words_in_labels_the_email_package_misreads_are_read_as_whatwg_does() -> None:
    value = "=?iso-8859-1?Q?10_=80?= =?ks_c_5601-1987?B?x8HB2A==?="

    assert "10 €" in str(parse(b"Subject: " + normalise_encoded_words(value).encode()).subject)


def test_encoded_words_splitting_a_character_are_joined_before_decoding() -> None:
    data = "打印机".encode("gb2312")
    first, second = data[:3], data[3:]

    value = " ".join(f"=?x-gbk?B?{base64.b64encode(part).decode()}?=" for part in (first, second))

    assert parse(b"Subject: " + normalise_encoded_words(value).encode()).subject == "打印机"
