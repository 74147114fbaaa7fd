"""Raw bytes → ParsedMessage. Pure, and never raises: problems become defects."""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage, Message
from email.utils import parsedate_to_datetime
from html import unescape

from inscriptis import get_text

from mailflow.mail.addresses import (
    Mailbox,
    parse_mailbox,
    parse_mailboxes,
    with_control_characters,
)

_MSGID = re.compile(r"<([^<>\s]+)>")
# Labels that lie: us-ascii, latin-1 and windows-1252 are routinely put on UTF-8 text, and
# latin-1 on windows-1252 text. Keyed by codec name, so that every alias (latin1, l1, cp819,
# ansi_x3.4-1968) counts; valued by the readings that agree with the label.
_WESTERN = {"ascii": ("utf-8",), "iso8859-1": ("cp1252", "latin-1"), "cp1252": ("cp1252",)}
_FALLBACKS = ("utf-8", "cp1252", "latin-1")
# Bytes the parser could not decode as ASCII, kept as lone surrogates (surrogateescape).
_RAW_8BIT = re.compile("[\udc80-\udcff]")


@dataclass(frozen=True, slots=True)
class ParsedAttachment:
    filename: str
    content_type: str
    data: bytes
    inline: bool = False
    content_id: str | None = None
    # A large body is not held in memory (mail/large.py): where its base64 text lies in the
    # raw message; once decoded into the attachment store, its SHA-256 and size instead.
    body: tuple[int, int] | None = None
    stored: tuple[str, int] | None = None

    @property
    def size(self) -> int:
        if self.stored:
            return self.stored[1]
        if self.body:  # about: three bytes for every four characters of base64
            return (self.body[1] - self.body[0]) * 3 // 4
        return len(self.data)


@dataclass(frozen=True, slots=True)
class ParsedMessage:
    subject: str = ""
    sender: Mailbox | None = None
    reply_to: tuple[Mailbox, ...] = ()
    to: tuple[Mailbox, ...] = ()
    cc: tuple[Mailbox, ...] = ()
    message_id: str | None = None
    in_reply_to: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    date: datetime | None = None
    text: str = ""
    html: str | None = None
    attachments: tuple[ParsedAttachment, ...] = ()
    # Lower-cased header name → values, for the hygiene checks.
    headers: dict[str, tuple[str, ...]] = field(default_factory=dict)
    defects: tuple[str, ...] = ()

    def header(self, name: str) -> str | None:
        values = self.headers.get(name.lower())
        return values[0] if values else None

    @property
    def thread_ids(self) -> tuple[str, ...]:
        """Message-IDs this message answers, nearest first."""
        seen: dict[str, None] = {}
        for mid in (*self.in_reply_to, *reversed(self.references)):
            seen.setdefault(mid, None)
        return tuple(seen)


MAX_MESSAGE_ID = 900  # RFC 5322 lines end at 998 characters; longer "IDs" are garbage


def message_ids(value: str | None) -> tuple[str, ...]:
    if not value:
        return ()
    found = _MSGID.findall(value)
    if not found:
        words = value.split()  # an ID without its angle brackets, or missing one of them
        bare = words[0].strip("<>") if words else ""
        found = [bare] if bare else []
    return tuple(mid for mid in found if len(mid) <= MAX_MESSAGE_ID)


def decode_text(payload: bytes, charset: str | None) -> tuple[str, str | None]:
    """Decode with the declared charset, else the likely real one; return text and a defect."""
    declared = (charset or "us-ascii").strip().lower()
    codec = _codec(declared)
    candidates: tuple[str, ...] = _FALLBACKS
    fitting: tuple[str, ...] = ()
    if codec in _WESTERN:
        # Valid UTF-8 with non-ASCII bytes is almost never real latin-1 or windows-1252 text.
        fitting = _WESTERN[codec]
    elif codec:
        candidates, fitting = (codec, *_FALLBACKS), (codec,)
    for candidate in candidates:
        try:
            text = payload.decode(candidate)
        except (LookupError, ValueError):  # UnicodeError, and codecs that are not for text
            continue
        if candidate in fitting or (codec in _WESTERN and payload.isascii()):
            return text, None
        shown = "".join(c if c.isprintable() else "?" for c in declared[:40])
        return text, f"charset {shown} did not fit; read as {candidate}"
    raise AssertionError("latin-1 decodes every byte string")


def _codec(label: str) -> str | None:
    try:
        return codecs.lookup(label).name
    except (LookupError, ValueError):  # unknown, or a label holding NUL or surrogates
        return None


def html_to_text(html: str) -> str:
    try:
        return str(get_text(html)).strip()
    except Exception:  # inscriptis/lxml on hostile markup: fall back on stripping tags
        return unescape(re.sub(r"<[^>]+>", " ", html)).strip()


class _Collector:
    """Walks the MIME tree once, sorting parts into bodies and attachments."""

    def __init__(self) -> None:
        self.plain: list[str] = []
        self.html: list[str] = []
        self.attachments: list[ParsedAttachment] = []
        self.defects: list[str] = []

    def walk(self, part: Message) -> None:
        # is_multipart() is true for message/rfc822 too; a forward is kept whole as an
        # attachment (_leaf), not walked into, which would mix its text into ours.
        if part.is_multipart() and part.get_content_type() != "message/rfc822":
            payload = part.get_payload()
            children = (
                [c for c in payload if isinstance(c, Message)] if isinstance(payload, list) else []
            )
            if part.get_content_type() == "multipart/alternative":
                self._alternative(children)
            else:
                for child in children:
                    self.walk(child)
            return
        self._leaf(part)

    def _alternative(self, children: list[Message]) -> None:
        plain = [c for c in children if c.get_content_type() == "text/plain"]
        others = [c for c in children if c.get_content_type() != "text/plain"]
        for child in others:
            self.walk(child)
        if plain:
            self.walk(plain[-1])

    def _leaf(self, part: Message) -> None:
        content_type = part.get_content_type()
        disposition = (part.get_content_disposition() or "").lower()
        filename = _filename(part)
        if content_type.startswith("multipart/"):
            # A multipart whose boundary never appears: its body is all there is; read it.
            self.defects.append("multipart body without its boundary, read as text")
            self.plain.append(self._text(part))
        elif content_type == "message/rfc822" or disposition == "attachment" or filename:
            self._attachment(part, content_type, filename or _default_name(content_type))
        elif content_type == "text/plain":
            self.plain.append(self._text(part))
        elif content_type == "text/html":
            self.html.append(self._text(part))
        elif content_type.startswith("text/"):
            self.plain.append(self._text(part))
        else:
            self._attachment(part, content_type, _default_name(content_type))

    def _text(self, part: Message) -> str:
        payload = _payload(part)
        text, defect = decode_text(payload, part.get_content_charset())
        if defect:
            self.defects.append(defect)
        if "\x00" in text:  # PostgreSQL text cannot hold NUL
            self.defects.append("NUL characters removed from the text")
            text = text.replace("\x00", "")
        return text

    def _attachment(self, part: Message, content_type: str, filename: str) -> None:
        data = _forwarded(part) if content_type == "message/rfc822" else _payload(part)
        content_id = _clean(str(part.get("Content-ID") or "")).strip("<>")
        self.attachments.append(
            ParsedAttachment(
                filename=filename,
                content_type=content_type,
                data=data,
                inline=(part.get_content_disposition() or "") == "inline",
                content_id=content_id or None,
            )
        )


def _forwarded(part: Message) -> bytes:
    inner = part.get_payload()
    if not (isinstance(inner, list) and inner and isinstance(inner[0], Message)):
        return _payload(part)
    try:
        return inner[0].as_bytes(policy=policy.compat32)
    except Exception:  # the generator cannot re-encode every header the parser let through
        return inner[0].as_string(policy=policy.compat32).encode("utf-8", "replace")


def _payload(part: Message) -> bytes:
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        payload = None
    if isinstance(payload, bytes):
        return payload
    raw = part.get_payload()
    return raw.encode("utf-8", "replace") if isinstance(raw, str) else b""


def _filename(part: Message) -> str | None:
    try:
        name = part.get_filename()
    except Exception:
        return None
    return str(name) if name else None


def _default_name(content_type: str) -> str:
    if content_type == "message/rfc822":
        return "forwarded-message.eml"
    main, _, sub = content_type.partition("/")
    return f"{main or 'attachment'}.{sub or 'bin'}"


def _header_values(message: Message) -> dict[str, tuple[str, ...]]:
    headers: dict[str, list[str]] = {}
    for name, value in message.raw_items():
        headers.setdefault(name.lower(), []).append(_clean(_header_text(name, str(value))))
    return {name: tuple(values) for name, values in headers.items()}


def _header_text(name: str, raw: str) -> str:
    """The decoded value. Raw 8-bit bytes are read as UTF-8, else windows-1252, rather than
    becoming U+FFFD as the email package would have them."""
    if _RAW_8BIT.search(raw):
        raw, _ = decode_text(raw.encode("utf-8", "surrogateescape"), "utf-8")
    try:
        return str(policy.default.header_fetch_parse(name, raw))
    except Exception:  # a header the modern policy cannot parse: keep its raw text
        return raw


def _clean(value: str) -> str:
    return re.sub(r"\s+", " ", value.replace("\x00", "")).strip()


def _date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


ADDRESS_HEADERS = ("from", "reply-to", "to", "cc")


def _refused_addresses(headers: dict[str, tuple[str, ...]]) -> list[str]:
    """Why an address in From, Reply-To, To or Cc was left out."""
    return [
        f"{name.title()}: address {address} refused: it holds a control character"
        for name in ADDRESS_HEADERS
        for address in with_control_characters(list(headers.get(name, ())))
    ]


def parse(raw: bytes) -> ParsedMessage:
    """Parse a message as received; whatever is wrong with it is recorded in `defects`."""
    try:
        return _parse(raw)
    except Exception as exc:  # the stdlib parser has corner cases; never let one escape
        text, _ = decode_text(raw, "utf-8")
        return ParsedMessage(
            text=text.replace("\x00", ""), defects=(f"unparseable message: {exc!r}",)
        )


def _parse(raw: bytes) -> ParsedMessage:
    try:
        message: Message = message_from_bytes(raw, _class=EmailMessage, policy=policy.default)
        lenient: list[str] = []
    except Exception as exc:  # header parsing inside the feed parser; compat32 parses none
        message = message_from_bytes(raw, policy=policy.compat32)
        lenient = [f"MIME headers read leniently: {exc!r}"]
    headers = _header_values(message)

    def first(name: str) -> str | None:
        values = headers.get(name)
        return values[0] if values else None

    collector = _Collector()
    collector.walk(message)
    html = "\n".join(collector.html) if collector.html else None
    text = "\n".join(collector.plain).strip()
    if not text and html:
        text = html_to_text(html)
    defects = lenient + [type(d).__name__ for d in message.defects] + collector.defects
    defects += _refused_addresses(headers)
    message_id = message_ids(first("message-id"))
    return ParsedMessage(
        subject=first("subject") or "",
        sender=parse_mailbox(first("from")),
        reply_to=tuple(parse_mailboxes(list(headers.get("reply-to", ())))),
        to=tuple(parse_mailboxes(list(headers.get("to", ())))),
        cc=tuple(parse_mailboxes(list(headers.get("cc", ())))),
        message_id=message_id[0] if message_id else None,
        in_reply_to=message_ids(first("in-reply-to")),
        references=message_ids(" ".join(headers.get("references", ()))),
        date=_date(first("date")),
        text=text,
        html=html,
        attachments=tuple(collector.attachments),
        headers=headers,
        defects=tuple(defects),
    )
