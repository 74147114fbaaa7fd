"""Dates, durations and weekdays as each language writes them, in the reader's time zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from mailflow.i18n.choice import Speech
from mailflow.i18n.speaking import moment_text, spoken, weekdays
from mailflow.render import Renderer
from mailflow.resources import templates_dir

WINTER = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
SUMMER = datetime(2026, 7, 6, 9, 0, tzinfo=UTC)
LATE = datetime(2026, 1, 5, 23, 30, tzinfo=UTC)  # the next day in Warsaw


@pytest.mark.parametrize(
    ("moment", "zone", "language", "expected"),
    [
        (WINTER, "UTC", "en", "January 5, 2026, 9:00\u202fAM UTC"),
        (WINTER, "Europe/Paris", "fr", "5 janvier 2026, 10:00 UTC+01:00"),
        (WINTER, "Europe/Warsaw", "pl", "5 stycznia 2026 10:00 CET"),
        (SUMMER, "Europe/Warsaw", "pl", "6 lipca 2026 11:00 CEST"),
        (WINTER, "America/Toronto", "en", "January 5, 2026, 4:00\u202fAM EST"),
        (
            datetime(2026, 1, 5, 23, 30, tzinfo=UTC),
            "Europe/Warsaw",
            "fr",
            "6 janvier 2026, 00:30 UTC+01:00",
        ),
    ],
)
def test_a_moment_is_written_in_the_language_and_zone_of_the_reader(
    moment: datetime, zone: str, language: str, expected: str
) -> None:
    assert moment_text(moment, ZoneInfo(zone), language) == expected


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer([templates_dir()])


@pytest.mark.parametrize(
    ("delta", "polish", "french", "english"),
    [
        (timedelta(days=1), "1 dzień", "1 jour", "1 day"),
        (timedelta(days=2), "2 dni", "2 jours", "2 days"),
        (timedelta(days=5), "5 dni", "5 jours", "5 days"),
        (timedelta(hours=1), "1 godzina", "1 heure", "1 hour"),
        (timedelta(hours=3), "3 godziny", "3 heures", "3 hours"),
        (timedelta(hours=12), "12 godzin", "12 heures", "12 hours"),
        (timedelta(minutes=22), "22 minuty", "22 minutes", "22 minutes"),
        (timedelta(minutes=25), "25 minut", "25 minutes", "25 minutes"),
        (timedelta(seconds=2), "2 sekundy", "2 secondes", "2 seconds"),
        (timedelta(seconds=14), "14 sekund", "14 secondes", "14 seconds"),
        (
            timedelta(hours=1, minutes=30),
            "1 godzina 30 minut",
            "1 heure 30 minutes",
            "1 hour 30 minutes",
        ),
        (
            timedelta(milliseconds=300),
            "mniej niż sekunda",
            "moins d’une seconde",
            "less than a second",
        ),
    ],
)
def test_durations_take_the_plural_form_their_number_needs(
    renderer: Renderer, delta: timedelta, polish: str, french: str, english: str
) -> None:
    catalogs = renderer.catalogs
    assert spoken(catalogs.translations("pl"), delta) == polish
    assert spoken(catalogs.translations("fr"), delta) == french
    assert spoken(catalogs.translations("en"), delta) == english


def test_weekdays_are_named_and_listed_as_the_language_does() -> None:
    days = ["mon", "tue", "fri"]
    assert weekdays(days, "en") == "Monday, Tuesday, and Friday"
    assert weekdays(days, "fr") == "lundi, mardi et vendredi"
    assert weekdays(days, "pl") == "poniedziałek, wtorek i piątek"


def test_a_page_is_rendered_in_the_language_it_is_given(renderer: Renderer) -> None:
    context = {"instance": {"name": "Example"}, "articles": []}
    page = renderer.page("web/kb_index.html.j2", context, Speech("pl", "UTC"))
    assert '<html lang="pl">' in page
    assert "Centrum pomocy" in page
    assert "Na razie nic tu nie ma." in page
