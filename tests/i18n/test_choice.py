"""Which language a reader gets: a browser's Accept-Language, and a person's wishes in order."""

from __future__ import annotations

import pytest

from mailflow.i18n.choice import accepted, first_served, served

AVAILABLE = ("en", "fr", "pl")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("pl", "pl"),
        ("fr-CH, fr;q=0.9, en;q=0.8, de;q=0.7, *;q=0.5", "fr"),
        ("de-DE,de;q=0.9,pl;q=0.8,en;q=0.7", "pl"),
        ("en;q=0.5, pl;q=0.9", "pl"),
        ("pl;q=0, fr", "fr"),
        ("de, *", None),
        ("", None),
        (None, None),
        ("pl;q=abc, fr;q=0.3", "fr"),
        ("this is not a header", None),
        ("en-US,en;q=0.9", "en"),
    ],
)
def test_accept_language_picks_the_most_wanted_language_we_have(
    header: str | None, expected: str | None
) -> None:
    assert accepted(header, AVAILABLE) == expected


def test_a_regional_language_is_served_by_its_base_language() -> None:
    assert served("fr_CA", AVAILABLE) == "fr"
    assert served("pt_BR", AVAILABLE) is None


def test_the_first_wish_a_catalog_serves_wins_and_english_is_the_last_resort() -> None:
    assert first_served([None, "de", "pl", "fr"], AVAILABLE) == "pl"
    assert first_served([None, "de"], AVAILABLE) == "en"
