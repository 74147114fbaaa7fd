"""Which language a reader gets: the first of their wishes that a catalog can serve."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from mailflow.i18n.catalogs import SOURCE_LANGUAGE


@dataclass(frozen=True, slots=True)
class Speech:
    """How we write to one reader: their language and the time zone of the dates they read."""

    language: str
    timezone: str


# Agents are staff: their notices are written in the templates' own English, in UTC.
STAFF = Speech(SOURCE_LANGUAGE, "UTC")


def served(wanted: str | None, available: Collection[str]) -> str | None:
    """The available language for a wish: itself, else its base language (fr_CA → fr)."""
    if not wanted:
        return None
    if wanted in available:
        return wanted
    base = wanted.replace("-", "_").split("_")[0].lower()
    return base if base in available else None


def first_served(wishes: Iterable[str | None], available: Collection[str]) -> str:
    """The first wish a catalog serves; the templates' own language when none is."""
    for wish in wishes:
        found = served(wish, available)
        if found:
            return found
    return SOURCE_LANGUAGE


# RFC 9110 §12.5.4: language-range [ ";" "q=" qvalue ], comma-separated.
_RANGE = re.compile(
    r"^\s*([A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*|\*)\s*(?:;\s*q\s*=\s*([0-9.]+))?\s*$"
)


def accepted(header: str | None, available: Collection[str]) -> str | None:
    """The available language a browser's Accept-Language prefers most, or None."""
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate((header or "").split(",")[:50]):
        match = _RANGE.match(part)
        if not match or match.group(1) == "*":
            continue
        try:
            weight = float(match.group(2)) if match.group(2) else 1.0
        except ValueError:
            continue
        if weight > 0:
            ranked.append((-weight, index, match.group(1)))
    for _weight, _index, wanted in sorted(ranked):
        found = served(wanted, available)
        if found:
            return found
    return None
