"""The HTML part of a mail, made from its text: paragraphs, lists, links, the ticket tag,
the signature apart, and everything escaped."""

from __future__ import annotations

from gettext import NullTranslations

from mailflow.i18n.speaking import greeting
from mailflow.render import text_to_html, with_signature_separator

ENGLISH = NullTranslations()


class Person:
    def __init__(self, name: str) -> None:
        self.name = name


def test_paragraphs_lines_and_the_signature_are_kept_apart() -> None:
    body, signature = text_to_html("Hello,\n\nFirst line\nsecond line.\n\n-- \nExample Support")

    assert body.count("<p ") == 2
    assert "First line<br>\nsecond line." in body
    assert "Example Support" not in body
    assert signature == "Example Support"


def test_the_last_separator_starts_the_signature() -> None:
    body, signature = text_to_html("Answer.\n\n-- \nAlice\n\n-- \nExample Support · ticket [#1]")

    assert "Alice" in body
    assert "Alice" not in signature


def test_everything_is_escaped_and_links_are_links() -> None:
    body, _ = text_to_html("<b>Bob</b> & co: https://example.com/a?b=1&c=2.", "[#1]")

    assert "&lt;b&gt;Bob&lt;/b&gt; &amp; co" in body
    assert (
        '<a href="https://example.com/a?b=1&amp;c=2">https://example.com/a?b=1&amp;c=2</a>.' in body
    )


def test_the_ticket_tag_stands_out_and_indentation_stays() -> None:
    body, _ = text_to_html("Ticket [#12]\n  Phone: +44 20", "[#12]")

    assert "<strong>[#12]</strong>" in body
    assert "&nbsp;&nbsp;Phone: +44 20" in body


def test_a_list_is_a_list() -> None:
    body, _ = text_to_html("Problems:\n\n  - one\n  - two <x>")

    assert "<ul><li>one</li><li>two &lt;x&gt;</li></ul>" in body


def test_a_bare_double_dash_becomes_the_rfc_3676_separator() -> None:
    assert with_signature_separator("Text\n--\nSupport\n") == "Text\n-- \nSupport\n"
    assert with_signature_separator("a -- b\n---\n") == "a -- b\n---\n"


def test_greeting_uses_a_name_never_an_address() -> None:
    assert greeting(ENGLISH, Person("Bob Customer")) == "Hello Bob Customer,"
    assert greeting(ENGLISH, Person("")) == "Hello,"
    assert greeting(ENGLISH, Person("bob@example.org")) == "Hello,"
    assert greeting(ENGLISH, None) == "Hello,"
