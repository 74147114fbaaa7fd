"""Ticket numbers as people quote them: the "[#123]" subject tag and the plus-address."""

from __future__ import annotations

import re

# Ticket ids live in an INTEGER column; a larger number names no ticket, and PostgreSQL
# refuses to even look it up.
MAX_NUMBER = 2**31 - 1
_TAG = re.compile(r"\[#(\d{1,12})\]", re.ASCII)
_REPLY_PREFIX = re.compile(
    r"^\s*((re|aw|sv|antw|odp|r|rif|vs|wg|fw|fwd|tr)\s*(\[\d+\])?\s*:\s*)+", re.I
)


def tag(number: int) -> str:
    return f"[#{number}]"


def _ticket_number(digits: str) -> int | None:
    number = int(digits)
    return number if 0 < number <= MAX_NUMBER else None


def find_tag(subject: str) -> int | None:
    """The number of the first "[#123]" tag in the subject that can name a ticket."""
    for match in _TAG.finditer(subject):
        number = _ticket_number(match.group(1))
        if number is not None:
            return number
    return None


def clean_subject(subject: str) -> str:
    """The subject without reply prefixes or our tag, as stored on the ticket."""
    without_tag = _TAG.sub("", subject)
    return re.sub(r"\s+", " ", _REPLY_PREFIX.sub("", without_tag)).strip()


def reply_subject(number: int, subject: str) -> str:
    """ "[#123] Re: <subject>" for any mail we send about a ticket."""
    base = clean_subject(subject) or "(no subject)"
    return f"{tag(number)} Re: {base}"


def number_from_tag(address_tag: str | None) -> int | None:
    """The ticket number of a plus-address tag such as "123"."""
    # isdigit() alone lets "²" and "١٢" through, and int("²") raises.
    if address_tag and address_tag.isascii() and address_tag.isdigit() and len(address_tag) <= 12:
        return _ticket_number(address_tag)
    return None
