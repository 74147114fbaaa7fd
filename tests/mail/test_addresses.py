"""Addresses as they are compared, stored and tagged."""

from __future__ import annotations

import pytest

from mailflow.mail.addresses import (
    Mailbox,
    is_valid_address,
    normalise,
    parse_mailbox,
    parse_mailboxes,
    split_tag,
    with_tag,
)


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("Bob@Customer.Example", "bob@customer.example"),
        ("  <bob@customer.example>  ", "bob@customer.example"),
        ("< Bob@X.Example >", "bob@x.example"),
    ],
)
def test_addresses_are_compared_lower_case_without_brackets_or_spaces(
    raw: str, normal: str
) -> None:
    assert normalise(raw) == normal


@pytest.mark.parametrize(
    "address",
    [
        "bob@customer.example",
        "first.last+tag@mail.example.co.uk",
        "o'brien@example.ie",
        "x@x-y.example",
        "zoë@example.org",
        " bob@customer.example ",
    ],
)
def test_valid_addresses_are_accepted(address: str) -> None:
    assert is_valid_address(address)


@pytest.mark.parametrize(
    "address",
    [
        "",
        "bob",
        "@example.com",
        "bob@",
        "bob@@example.com",
        "bob smith@example.com",
        "<bob@example.com>",
        "bob@example..com",
        "bob@.example.com",
        "bob@example.com.",
        "bob@-example.com",
        "bob@example-.com",
        "bob@exa mple.com",
        "a,b@example.com",
        "bob@example.com\r\nBcc: x@y.example",
    ],
)
def test_invalid_addresses_are_refused(address: str) -> None:
    assert not is_valid_address(address)


def test_addresses_longer_than_smtp_allows_are_refused() -> None:
    longest = "a" * 64 + "@" + ".".join(["b" * 63, "c" * 63, "d" * 61])

    assert len(longest) == 254
    assert is_valid_address(longest)
    assert not is_valid_address("a" + longest)
    assert parse_mailbox(f"Bob <a{longest}>") is None


@pytest.mark.parametrize(
    ("address", "split"),
    [
        ("support+123@example.com", ("support@example.com", "123")),
        ("Support+AbC@Example.com", ("support@example.com", "abc")),
        ("support@example.com", ("support@example.com", None)),
        ("support+@example.com", ("support@example.com", "")),
        ("support+1+2@example.com", ("support@example.com", "1+2")),
        ("<support+7@example.com>", ("support@example.com", "7")),
    ],
)
def test_plus_tag_is_split_from_the_base_address(
    address: str, split: tuple[str, str | None]
) -> None:
    assert split_tag(address) == split


def test_with_tag_and_split_tag_are_inverse() -> None:
    tagged = with_tag("support@example.com", "42-c7-abc")

    assert tagged == "support+42-c7-abc@example.com"
    assert split_tag(tagged) == ("support@example.com", "42-c7-abc")


@pytest.mark.parametrize(
    ("value", "mailbox"),
    [
        ("Bob <Bob@Customer.Example>", Mailbox("Bob", "bob@customer.example")),
        ("bob@customer.example", Mailbox("", "bob@customer.example")),
        ("bob@customer.example (Bob)", Mailbox("Bob", "bob@customer.example")),
        ('"Doe, Jane" <jane@example.org>', Mailbox("Doe, Jane", "jane@example.org")),
        (
            '"jane@example.org" <eve@attacker.example>',
            Mailbox("jane@example.org", "eve@attacker.example"),
        ),
        ("  Zoë  <zoe@example.org>", Mailbox("Zoë", "zoe@example.org")),
    ],
)
def test_a_header_value_gives_its_mailbox(value: str, mailbox: Mailbox) -> None:
    assert parse_mailbox(value) == mailbox


def test_of_several_mailboxes_the_first_is_taken() -> None:
    # parseaddr() finds nothing here on Python 3.11.10+ / 3.12.6+; the first one counts.
    assert parse_mailbox("Bob <bob@x.example>, Alice <alice@y.example>") == Mailbox(
        "Bob", "bob@x.example"
    )


@pytest.mark.parametrize(
    "value", [None, "", "undisclosed-recipients:;", "Bob", "Bob <bob@x..example>"]
)
def test_no_valid_address_gives_no_mailbox(value: str | None) -> None:
    assert parse_mailbox(value) is None


def test_mailbox_lists_skip_invalid_entries_and_keep_order() -> None:
    values = ["Bob <bob@x.example>, nobody, <alice@y.example>", "Team: carol@z.example;"]

    assert parse_mailboxes(values) == [
        Mailbox("Bob", "bob@x.example"),
        Mailbox("", "alice@y.example"),
        Mailbox("", "carol@z.example"),
    ]


@pytest.mark.parametrize(
    ("mailbox", "formatted"),
    [
        (Mailbox("Bob", "bob@x.example"), "Bob <bob@x.example>"),
        (Mailbox("", "bob@x.example"), "bob@x.example"),
        (Mailbox("Doe, Jane", "jane@x.example"), '"Doe, Jane" <jane@x.example>'),
    ],
)
def test_mailbox_is_formatted_so_that_it_parses_back(mailbox: Mailbox, formatted: str) -> None:
    assert mailbox.formatted() == formatted
    assert parse_mailbox(formatted) == mailbox
