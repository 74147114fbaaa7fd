"""Business hours and holidays: is someone there to answer at a given moment?"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from mailflow.config import WEEKDAYS, BusinessHoursConfig


def local(hours: BusinessHoursConfig, moment: datetime) -> datetime:
    return moment.astimezone(ZoneInfo(hours.timezone))


def weekday(hours: BusinessHoursConfig, moment: datetime) -> str:
    return WEEKDAYS[local(hours, moment).weekday()]


def in_business_hours(hours: BusinessHoursConfig, moment: datetime) -> bool:
    """Within start–end on a working day that is no holiday, in the configured time zone."""
    there = local(hours, moment)
    if there.date() in hours.holidays or WEEKDAYS[there.weekday()] not in hours.days:
        return False
    return hours.start <= there.strftime("%H:%M") < hours.end
