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
# What the first half of an attribution folded over two lines holds (Gmail folds at 76
# characters): the quoted sender's address or the time of their mail.
_ATTRIBUTION_HEAD = re.compile(r"@|\b\d{1,2}[:.]\d{2}\b")
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


# Outlook quotes no line: it writes the answered mail's From, Sent, To and Subject in the
# reader's language (with a no-break space before the colon in French), then the old text.
_FROM = r"from|von|de|od|van|da|fr[åa]n|fra"
_SENT = (
    r"sent|date|gesendet|datum|envoy[ée]|wys[łl]ano|data|verzonden|inviato|enviado|fecha|skickat"
)
_SUBJECT = r"subject|betreff|objet|temat|onderwerp|oggetto|asunto|[äa]mne"
_LABEL = r"^[ \t\u00a0]*\*?(?:{})[ \t\u00a0]*:\*?[ \t\u00a0]"
_HEADER_FROM = re.compile(_LABEL.format(_FROM), re.IGNORECASE)
_HEADER_SENT = re.compile(_LABEL.format(_SENT), re.IGNORECASE)
_HEADER_SUBJECT = re.compile(_LABEL.format(_SUBJECT), re.IGNORECASE)
HEADER_BLOCK_LINES = 6  # From, Sent, To, Cc, Subject, and one more (Importance, Date)


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
        folded = end >= 1 and lines[end - 1].strip() and not lines[end - 1].startswith(">")
        if folded and _ATTRIBUTION_HEAD.search(lines[end - 1] + lines[end]):
            end -= 1
    return "\n".join(lines[:end]).strip()


def _header_block_at(lines: list[str], index: int) -> bool:
    """An Outlook header block starts on this line: From, then Sent and Subject below it."""
    if not _HEADER_FROM.match(lines[index]):
        return False
    block = lines[index + 1 : index + HEADER_BLOCK_LINES]
    block = block[: next((i for i, line in enumerate(block) if not line.strip()), len(block))]
    return any(_HEADER_SENT.match(line) for line in block) and any(
        _HEADER_SUBJECT.match(line) for line in block
    )


def _cut_header_block(text: str) -> str:
    """The text above an Outlook header block and the rule or "Original Message" line over
    it; the whole text when there is none, or when a forward's marker comes first."""
    lines = text.splitlines()
    for index in range(len(lines)):
        if _FORWARD.match(lines[index]):
            return text
        if _header_block_at(lines, index):
            end = index
            while end and (not lines[end - 1].strip() or _SEPARATOR.match(lines[end - 1])):
                end -= 1
            return "\n".join(lines[:end])
    return text


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
    text = _cut_header_block(text) or text
    replies = _replies(text)
    if not replies:
        return Reply(_cut_generic_quote(text) or text.strip(), "")
    first = replies[0]
    if _FORWARD.search(str(first.body)):
        return Reply(text.strip(), "")
    new = _cut_generic_quote(str(first.body)) or text.strip()
    signature = str(first.signatures).strip()
    # The signature of the mail quoted below ("> -- "), not the sender's own.
    return Reply(new, "" if signature.startswith(">") else signature)


def written_now(text: str) -> str:
    """What the sender wrote above the quoted history, or "" when the text is nothing but a
    quote: the reply that carries only commands over the mail it answers says nothing."""
    text = _cut_header_block(text)
    if not text.strip():
        return ""
    replies = _replies(text)
    if replies and str(replies[0].headers).strip():
        return ""  # the text opens with a quoted mail's attribution or header block
    body = str(replies[0].body) if replies else text
    if _FORWARD.search(body):
        return text.strip()
    return _cut_generic_quote(body)


# How clients mark the mail they answer in HTML (inscriptis annotation rules): Gmail's
# gmail_quote, Apple Mail's and Thunderbird's blockquote type=cite, Thunderbird's
# attribution above it. Outlook marks only its header block (divRplyFwdMsg), not the old
# text after it: the header block is found in the text, as in Outlook's own text part.
HTML_QUOTES = {
    "blockquote#type=cite": ["quote"],
    "blockquote#class=gmail_quote": ["quote"],
    "div#class=gmail_quote": ["quote"],
    "div#class=moz-cite-prefix": ["quote"],
}


def mark_quoted(text: str, spans: list[tuple[int, int]]) -> str:
    """The text of an HTML mail with its quoted lines marked "> ", as a plain-text client
    writes them, so that the text's quote is found like any other."""
    lines, start = [], 0
    for line in text.split("\n"):
        end = start + len(line)
        inside = any(s <= start and end <= e for s, e in spans)
        lines.append(f"> {line}" if inside and line.strip() else (">" if inside else line))
        start = end + 1
    return "\n".join(lines)
