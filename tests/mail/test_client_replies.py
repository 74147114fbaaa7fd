"""The text a person wrote now, from replies as Gmail, Outlook, Apple Mail and Thunderbird
write them in English, French, Polish and German, in plain text and in HTML: what is quoted
below it, its attribution and the quoted mail's signature are never part of it."""

from __future__ import annotations

from email import policy
from email.message import EmailMessage

import pytest

from mailflow.mail.parse import parse
from mailflow.mail.quotes import split_reply, written_now
from tests.mail.clients import CLIENTS, LANGUAGES, Client, Quoted

NOTICE = Quoted(
    name="Example Support",
    address="support@example.com",
    to="Alice <alice@staff.test>",
    subject="[#1] Printer is on fire",
    text=(
        "New ticket [#1] from Bob Customer <bob@customer.test>\n"
        "Usergroup: Acme\n  phone: +44 20 7946 0000\n\nHelp, my printer is on fire.\n\n"
        "-- \nReply to this email to answer the customer."
    ),
)
NEW = {
    "en": "The fuser was replaced.\n\nIt works again.",
    "fr": "L'unité a été remplacée.\n\nÇa remarche !",
    "pl": "Utrwalacz wymieniony.\n\nDziała.",
    "de": "Die Fixiereinheit wurde ersetzt.\n\nEs geht wieder.",
}


def _text(client: Client, lang: str) -> str:
    message = EmailMessage()
    message["From"] = "Alice <alice@staff.test>"
    message["Subject"] = "Re: " + NOTICE.subject
    client.body(message, lang, NEW[lang], NOTICE)
    return parse(message.as_bytes(policy=policy.SMTP)).text


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("client", CLIENTS, ids=[c.name for c in CLIENTS])
def test_the_new_text_is_what_was_written_above_the_quote(client: Client, lang: str) -> None:
    text = _text(client, lang)
    reply = split_reply(text)

    assert reply.new.split() == NEW[lang].split()  # HTML paragraphs may come out closer
    assert "Reply to this email" not in reply.with_signature, "the quoted mail's signature"
    assert written_now(text).split() == NEW[lang].split()


@pytest.mark.parametrize("lang", LANGUAGES)
def test_an_html_only_reply_marks_its_quote_as_plain_text_does(lang: str) -> None:
    html_only = next(c for c in CLIENTS if c.text is None)
    text = _text(html_only, lang)

    assert "> Help, my printer is on fire." in text
    assert NEW[lang].split("\n\n")[0] in text.splitlines()


@pytest.mark.parametrize("lang", LANGUAGES)
def test_outlook_html_without_its_text_part_still_loses_the_quote(lang: str) -> None:
    """Outlook's HTML marks only the header block; the old text below it is unmarked."""
    outlook = next(c for c in CLIENTS if c.name == "outlook-html")
    text = _text(Client("outlook-html-only", None, outlook.html), lang)

    assert split_reply(text).new.split() == NEW[lang].split()


def test_an_outlook_header_block_in_the_new_text_of_a_forward_is_kept() -> None:
    text = (
        "See below.\n\n---------- Forwarded message ---------\n"
        "From: Ann <ann@example.org>\nSent: Monday, November 30, 2026 10:02 AM\n"
        "To: Bob\nSubject: broken\n\nThe printer is broken.\n"
    )

    assert split_reply(text).new.endswith("The printer is broken.")


def test_lines_that_only_look_like_headers_are_text() -> None:
    text = "From: the accounts team\nWe need the invoice.\nSubject: renewal\n"

    assert split_reply(text).new == text.strip()
