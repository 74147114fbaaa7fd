"""What templates speak with: gettext (Jinja2's i18n extension), the greeting, and dates,
durations, weekdays and time zones as the reader's language writes them. One environment
serves every language: each rendering's context names its `language` and `timezone`."""

from __future__ import annotations

import gettext
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_time, get_datetime_format, get_day_names
from babel.dates import get_timezone_name as _zone_long_name
from babel.lists import format_list
from babel.messages.extract import extract_from_file
from jinja2 import Environment, pass_context
from jinja2.runtime import Context

from mailflow.i18n.catalogs import SOURCE_LANGUAGE, Catalogs, Used

DEFAULT_TIMEZONE = "UTC"
_UTC_NAMES = frozenset({"UTC", "Etc/UTC", "Etc/UCT", "UCT", "Universal", "Zulu", "Etc/Zulu"})
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def language_of(context: Context) -> str:
    return str(context.get("language") or SOURCE_LANGUAGE)


def zone_of(context: Context) -> ZoneInfo:
    return ZoneInfo(str(context.get("timezone") or DEFAULT_TIMEZONE))


def greeting(words: gettext.NullTranslations, person: Any) -> str:
    """Greets by name ("Hello Bob Customer,"), or with "Hello," when we know no name; never
    by address, which reads as a machine's."""
    name = str(getattr(person, "name", "") or "").strip()
    if name and "@" not in name:
        return words.gettext("Hello %(name)s,") % {"name": name}
    return words.gettext("Hello,")


def spoken(words: gettext.NullTranslations, delta: timedelta) -> str:
    """A duration in words, each unit in its plural form: "1 hour 30 minutes", "2 dni"."""
    left, parts = int(delta.total_seconds()), []
    units: tuple[tuple[int, Callable[[int], str]], ...] = (
        (86400, lambda n: words.ngettext("%(num)d day", "%(num)d days", n)),
        (3600, lambda n: words.ngettext("%(num)d hour", "%(num)d hours", n)),
        (60, lambda n: words.ngettext("%(num)d minute", "%(num)d minutes", n)),
        (1, lambda n: words.ngettext("%(num)d second", "%(num)d seconds", n)),
    )
    for seconds, word in units:
        count, left = divmod(left, seconds)
        if count:
            parts.append(word(count) % {"num": count})
    if parts:
        return " ".join(parts)
    return words.gettext("less than a second") if delta else words.gettext("no time")


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def zone_label(moment: datetime, zone: ZoneInfo, language: str) -> str:
    """The short name of the zone at that moment ("UTC", "CET", "EST"), else its offset as
    the language writes it ("UTC+01:00" in French, "GMT+01:00" in English)."""
    if zone.key in _UTC_NAMES:
        return "UTC"
    short = format_time(_aware(moment), "z", tzinfo=zone, locale=language)
    if short.startswith(("+", "-")):
        return format_time(_aware(moment), "ZZZZ", tzinfo=zone, locale=language)
    return short


def moment_text(moment: datetime, zone: ZoneInfo, language: str) -> str:
    """A date and time as the language writes it, in the reader's zone: "January 5, 2026,
    9:00 AM UTC", "5 janvier 2026, 10:00 CET", "5 stycznia 2026 10:00 CET"."""
    local = _aware(moment).astimezone(zone)
    day = format_date(local, "long", locale=language)
    hour = format_time(local, "short", tzinfo=zone, locale=language)
    pattern = str(get_datetime_format("long", locale=language)).replace("'", "")
    joined = pattern.replace("{0}", hour).replace("{1}", day)
    return f"{joined} {zone_label(moment, zone, language)}"


def zone_name(zone: str, language: str) -> str:
    """A time zone as people call it: "Central European Time", "heure d’Europe centrale"."""
    if zone in _UTC_NAMES:
        return "UTC"
    return str(_zone_long_name(ZoneInfo(zone), "long", locale=language))


def weekdays(days: Sequence[str], language: str) -> str:
    """["mon", "tue"] as "Monday and Tuesday", "lundi et mardi", "poniedziałek i wtorek"."""
    names = get_day_names("wide", locale=language)
    return format_list([names[WEEKDAYS.index(day)] for day in days], locale=language)


def install(env: Environment, catalogs: Catalogs) -> None:
    """gettext and ngettext, the greeting and the filters, on one environment for every
    language; `{% trans %}` blocks are trimmed (a paragraph is one message, one line)."""
    env.add_extension("jinja2.ext.i18n")
    env.policies["ext.i18n.trimmed"] = True

    def words(context: Context) -> gettext.NullTranslations:
        return catalogs.translations(language_of(context))

    @pass_context
    def translate(context: Context, message: str) -> str:
        return words(context).gettext(message)

    @pass_context
    def translate_plural(context: Context, singular: str, plural: str, count: int) -> str:
        return words(context).ngettext(singular, plural, count)

    cast(Any, env).install_gettext_callables(translate, translate_plural, newstyle=True)
    env.globals["greeting"] = pass_context(lambda c, person: greeting(words(c), person))
    env.filters["datetime"] = pass_context(
        lambda c, moment: moment_text(moment, zone_of(c), language_of(c))
    )
    env.filters["date"] = pass_context(
        lambda c, day: format_date(_local_day(day, zone_of(c)), "long", locale=language_of(c))
    )
    env.filters["duration"] = pass_context(lambda c, delta: spoken(words(c), delta))
    env.filters["weekdays"] = pass_context(lambda c, days: weekdays(days, language_of(c)))
    env.filters["zone_name"] = pass_context(lambda c, zone: zone_name(zone, language_of(c)))


def _local_day(value: date | datetime, zone: ZoneInfo) -> date:
    return _aware(value).astimezone(zone).date() if isinstance(value, datetime) else value


def own_messages() -> list[Used]:
    """The messages this module says itself (the greeting, the words of durations), found
    as `pybabel extract` finds them."""
    found = extract_from_file("python", __file__)
    return [
        Used(message if isinstance(message, str) else (message[0], message[1]), f"{_NAME}:{line}")
        for line, message, _comments, _context in found
    ]


_NAME = "mailflow/i18n/speaking.py"
