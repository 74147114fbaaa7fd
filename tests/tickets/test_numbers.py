"""Ticket numbers as people quote them back to us: subject tags and plus-addresses."""

from __future__ import annotations

import pytest

from mailflow.tickets.numbers import (
    MAX_NUMBER,
    clean_subject,
    find_tag,
    number_from_tag,
    reply_subject,
    tag,
)


def test_tag_is_hash_number_in_brackets() -> None:
    assert tag(123) == "[#123]"


@pytest.mark.parametrize(
    ("subject", "number"),
    [
        ("[#123] Re: Printer", 123),
        ("Re: Printer [#123]", 123),
        ("AW: [#7] Drucker", 7),
        ("Printer[#42]still broken", 42),
        ("[#5] and later [#6]", 5),
    ],
)
def test_tag_is_found_anywhere_in_the_subject(subject: str, number: int) -> None:
    assert find_tag(subject) == number


@pytest.mark.parametrize(
    "subject",
    [
        "Printer",
        "#123 Printer",
        "[123] Printer",
        "[# 123] Printer",
        "[#] Printer",
        "[#abc] Printer",
        "[#١٢٣] Printer",  # Arabic-Indic digits are not our tag
        "[#0] Printer",
    ],
)
def test_subject_without_our_tag_names_no_ticket(subject: str) -> None:
    assert find_tag(subject) is None


def test_number_too_large_for_a_ticket_id_names_no_ticket() -> None:
    # PostgreSQL refuses to look up an INTEGER key beyond 2**31 - 1.
    assert find_tag(f"[#{MAX_NUMBER}] x") == MAX_NUMBER
    assert find_tag(f"[#{MAX_NUMBER + 1}] x") is None
    assert find_tag("[#999999999999] x [#12] y") == 12


@pytest.mark.parametrize(
    ("subject", "clean"),
    [
        ("Printer on fire", "Printer on fire"),
        ("Re: Printer", "Printer"),
        ("RE: RE: Re: Printer", "Printer"),
        ("Re:Re:Printer", "Printer"),
        ("Re : Imprimante", "Imprimante"),
        ("Re[2]: Printer", "Printer"),
        ("AW: WG: Drucker", "Drucker"),
        ("SV: VS: Skrivare", "Skrivare"),
        ("Odp: Drukarka", "Drukarka"),
        ("Antw: Printer", "Printer"),
        ("TR: Imprimante", "Imprimante"),
        ("Fwd: Fw: Printer", "Printer"),
        ("[#12] Re: Printer", "Printer"),
        ("Re: [#12] AW: Printer", "Printer"),
        ("Re:   Printer   on    fire  ", "Printer on fire"),
        ("Rechnung: offen", "Rechnung: offen"),
        ("Regarding: invoice", "Regarding: invoice"),
        ("Printer Re: again", "Printer Re: again"),
        ("Re:", ""),
    ],
)
def test_clean_subject_drops_reply_prefixes_and_our_tag(subject: str, clean: str) -> None:
    assert clean_subject(subject) == clean


@pytest.mark.parametrize(
    ("subject", "reply"),
    [
        ("Printer", "[#7] Re: Printer"),
        ("Re: [#7] Printer", "[#7] Re: Printer"),
        ("AW: AW: [#7] Re: Printer", "[#7] Re: Printer"),
        ("", "[#7] Re: (no subject)"),
        ("Re: ", "[#7] Re: (no subject)"),
    ],
)
def test_reply_subject_has_one_tag_and_one_prefix(subject: str, reply: str) -> None:
    assert reply_subject(7, subject) == reply


def test_reply_subject_is_stable_over_a_long_conversation() -> None:
    subject = "Printer"
    for _ in range(5):
        subject = reply_subject(7, f"AW: {subject}")

    assert subject == "[#7] Re: Printer"
    assert find_tag(subject) == 7


@pytest.mark.parametrize(("address_tag", "number"), [("123", 123), ("0042", 42)])
def test_numeric_plus_tag_names_a_ticket(address_tag: str, number: int) -> None:
    assert number_from_tag(address_tag) == number


@pytest.mark.parametrize(
    "address_tag",
    [
        None,
        "",
        "12a",
        "123-c4-0123abcd",
        "bounce-5-abc",
        "²",  # isdigit() is true for it, and int() raises
        "١٢",
        "1234567890123",
        str(MAX_NUMBER + 1),
        "0",
    ],
)
def test_other_plus_tags_name_no_ticket(address_tag: str | None) -> None:
    assert number_from_tag(address_tag) is None
