"""Split the new text of a reply from the quoted history and signature below it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from mailparser_reply import EmailReplyParser

# English, French, German and Polish clients, plus the other formats the parser knows.
LANGUAGES = ["en", "de", "fr", "pl", "nl", "es", "it", "sv"]
_parser = EmailReplyParser(languages=LANGUAGES)
# A line that ends a reply's own text when only quoted history follows it: an attribution
# in any language ("Bob wrote:", "Le …, Bob a écrit :") or a separator such as Outlook's
# "-----Ursprüngliche Nachricht-----" or "________________".
_ATTRIBUTION = re.compile(r"^[^>\s].*:\s*$")
_SEPARATOR = re.compile(r"^\s*(?:-{2,}[^-]*-{2,}|_{5,})\s*$")
# Forwarding is not replying: what follows these is new to us, so it stays.
# No dash inside the words between the dashes: with [^\n]*? there, a long line of dashes
# took quadratic time on the event loop and stalled every other mail.
_FORWARD = re.compile(
    r"^[ \t]*(?:-{2,}[^\n-]*?(?:forwarded message|weitergeleitete nachricht"
    r"|message transf[ée]r[ée]|przekazana wiadomo|wiadomo\S* przekazana)[^\n-]*?-{2,}"
    r"|(?:begin forwarded message|anfang der weitergeleiteten nachricht"
    r"|d[ée]but du message r[ée]exp[ée]di[ée]|pocz\S* przekazanej wiadomo\S*)[ \t]*:)[ \t]*$",
    re.IGNORECASE | re.MULTILINE,
)


@dataclass(frozen=True, slots=True)
class Reply:
    new: str
    signature: str

    @property
    def with_signature(self) -> str:
        return f"{self.new}\n\n{self.signature}".strip() if self.signature else self.new


def _cut_generic_quote(text: str) -> str:
    """Drop the quoted tail, and the attribution or separator line just above it. Quotes
    followed by more of the sender's own text are inline answers and stay."""
    lines = text.rstrip().splitlines()
    end = len(lines)
    while end and (not lines[end - 1].strip() or lines[end - 1].lstrip().startswith(">")):
        end -= 1
    quoted_tail = end < len(lines)
    while end > 1 and _SEPARATOR.match(lines[end - 1]):
        end -= 1
    if quoted_tail and end >= 1 and _ATTRIBUTION.match(lines[end - 1]):
        end -= 1
    return "\n".join(lines[:end]).strip()


def _replies(text: str) -> list[Any]:
    """The parser's reading of a text, newest first; none when its regexes fail on
    pathological input (the callers then judge the text itself)."""
    try:
        return list(_parser.read(text=text).replies)
    except Exception:
        return []


def split_reply(text: str) -> Reply:
    """The part of a reply the sender wrote now; the whole text when nothing is quoted."""
    if not text.strip():
        return Reply("", "")
    replies = _replies(text)
    if not replies:
        return Reply(_cut_generic_quote(text) or text.strip(), "")
    first = replies[0]
    if _FORWARD.search(str(first.body)):
        return Reply(text.strip(), "")
    new = _cut_generic_quote(str(first.body)) or text.strip()
    return Reply(new, str(first.signatures).strip())


def written_now(text: str) -> str:
    """What the sender wrote above the quoted history, or "" when the text is nothing but a
    quote: the reply that carries only commands over the mail it answers says nothing."""
    if not text.strip():
        return ""
    replies = _replies(text)
    if replies and str(replies[0].headers).strip():
        return ""  # the text opens with a quoted mail's attribution or header block
    body = str(replies[0].body) if replies else text
    if _FORWARD.search(body):
        return text.strip()
    return _cut_generic_quote(body)
