"""Split the new text of a reply from the quoted history and signature below it."""

from __future__ import annotations

import re
from dataclasses import dataclass

from mailparser_reply import EmailReplyParser

# English, French, German and Polish clients, plus the other formats the parser knows.
LANGUAGES = ["en", "de", "fr", "pl", "nl", "es", "it", "sv"]
_parser = EmailReplyParser(languages=LANGUAGES)
# "<anything>:" directly above a block of "> " lines is an attribution line in any language.
_ATTRIBUTION_THEN_QUOTE = re.compile(r"^[^\n>][^\n]*:[ \t]*\n(?:[ \t]*\n)?>", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Reply:
    new: str
    signature: str

    @property
    def with_signature(self) -> str:
        return f"{self.new}\n\n{self.signature}".strip() if self.signature else self.new


def _cut_generic_quote(text: str) -> str:
    match = _ATTRIBUTION_THEN_QUOTE.search(text)
    if match and match.start() > 0:
        text = text[: match.start()]
    lines = text.rstrip().splitlines()
    while lines and lines[-1].lstrip().startswith(">"):
        lines.pop()
    return "\n".join(lines).strip()


def split_reply(text: str) -> Reply:
    """The part of a reply the sender wrote now; the whole text when nothing is quoted."""
    if not text.strip():
        return Reply("", "")
    try:
        replies = _parser.read(text=text).replies
    except Exception:  # the parser's regexes on pathological input: keep everything
        replies = []
    if not replies:
        return Reply(_cut_generic_quote(text) or text.strip(), "")
    first = replies[0]
    new = _cut_generic_quote(str(first.body)) or text.strip()
    return Reply(new, str(first.signatures).strip())
