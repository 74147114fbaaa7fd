"""Raw bytes → ParsedMessage. Pure, and never raises: problems become defects."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.errors import MissingHeaderBodySeparatorDefect as _NO_SEPARATOR
from email.message import EmailMessage, Message
from email.utils import parsedate_to_datetime
from html import unescape

from inscriptis import get_annotated_text
from inscriptis.model.config import ParserConfig

from mailflow.mail import headerblock
from mailflow.mail.addresses import (
    Mailbox,
    parse_mailbox,
    parse_mailboxes,
    with_control_characters,
)
from mailflow.mail.charsets import clean_label, codec_for, decode_text, detect
from mailflow.mail.charsets import normalise_encoded_words as _normalise_encoded_words
from mailflow.mail.quotes import HTML_QUOTES, mark_quoted

__all__ = ["ParsedAttachment", "ParsedMessage", "decode_text", "message_ids", "parse"]

_MSGID = re.compile(r"<([^<>\s]+)>")
# Bytes the parser could not decode as ASCII, kept as lone surrogates (surrogateescape).
_RAW_8BIT = re.compile("[\udc80-\udcff]")
_HTML_TEXT = ParserConfig(annotation_rules=HTML_QUOTES)


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
    # The content type of every MIME part, in order (not inside forwarded messages).
    parts: tuple[str, ...] = ()
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


def html_to_text(html: str) -> str:
    """The text of an HTML body, with the mail it quotes marked "> " as in plain text."""
    try:
        annotated = get_annotated_text(html, _HTML_TEXT)
        spans = [(start, end) for start, end, _label in annotated.get("label", [])]
        return mark_quoted(str(annotated.get("text", "")), spans).strip()
    except Exception:  # inscriptis/lxml on hostile markup: fall back on stripping tags
        return unescape(re.sub(r"<[^>]+>", " ", html)).strip()


# Text a person wrote; a file name on such a part does not make it an attachment by itself.
_BODY_TYPES = ("text/plain", "text/html")
# Machine-readable parts of reports (RFC 3464, 5965, 8098): field groups, not text.
_REPORT_PARTS = (
    "message/delivery-status",
    "message/feedback-report",
    "message/disposition-notification",
    "message/global-delivery-status",
)


class _Collector:
    """Walks the MIME tree once, sorting parts into bodies and attachments."""

    def __init__(self) -> None:
        self.plain: list[str] = []
        self.html: list[str] = []
        self.attachments: list[ParsedAttachment] = []
        self.defects: list[str] = []
        self.parts: list[str] = []
        # Text parts kept as attachments for their file name: the body after all when there
        # is no other text.
        self.named: list[tuple[Message, str, ParsedAttachment]] = []

    def walk(self, part: Message) -> None:
        content_type = part.get_content_type()
        self.parts.append(content_type)
        # is_multipart() is true for message/rfc822 too; a forward is kept whole as an
        # attachment (_leaf), not walked into, which would mix its text into ours. The field
        # groups of a delivery-status or feedback report are neither text nor a file (mail.dsn
        # reads them from the raw message).
        if content_type in _REPORT_PARTS:
            return
        if part.is_multipart() and content_type != "message/rfc822":
            payload = part.get_payload()
            children = (
                [c for c in payload if isinstance(c, Message)] if isinstance(payload, list) else []
            )
            if content_type == "multipart/alternative":
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
        elif content_type in _BODY_TYPES and (filename or disposition == "attachment"):
            if disposition == "inline":  # shown in place by the sender's client: the body
                self._body(part, content_type)
            else:
                self._named(part, content_type, filename or _default_name(content_type))
        elif content_type == "message/rfc822" or disposition == "attachment" or filename:
            self._attachment(part, content_type, filename or _default_name(content_type))
        elif content_type.startswith("text/") and content_type != "text/rfc822-headers":
            self._body(part, content_type)
        else:
            self._attachment(part, content_type, _default_name(content_type))

    def _body(self, part: Message, content_type: str) -> None:
        (self.html if content_type == "text/html" else self.plain).append(self._text(part))

    def _named(self, part: Message, content_type: str, filename: str) -> None:
        self._attachment(part, content_type, filename)
        self.named.append((part, content_type, self.attachments[-1]))

    def finish(self) -> None:
        """Text parts kept for their file name are the body when there is no other text."""
        if any(t.strip() for t in self.plain + self.html):
            return
        named = [attachment for _, _, attachment in self.named]
        self.attachments = [a for a in self.attachments if not any(a is n for n in named)]
        for part, content_type, _ in self.named:
            self._body(part, content_type)

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
    items = [(name, str(value)) for name, value in message.raw_items()]
    eight_bit = [value for _, value in items if _RAW_8BIT.search(value)]
    declared = _declared_charset(message) if eight_bit or any("=?" in v for _, v in items) else ""
    codec = _header_codec(declared, eight_bit) if eight_bit else "utf-8"
    headers: dict[str, list[str]] = {}
    for name, value in items:
        text = _header_text(name, value, codec, declared)
        headers.setdefault(name.lower(), []).append(_clean(text))
    return {name: tuple(values) for name, values in headers.items()}


def _declared_charset(message: Message) -> str:
    """The charset the first text part declares: the sender's client wrote the headers too."""
    return clean_label(next((c for p in message.walk() if (c := p.get_content_charset())), ""))


def _header_codec(declared: str, values: list[str]) -> str:
    """One reading for the raw 8-bit bytes of a header block: UTF-8 when they are, else the
    charset the body declares (the sender's client wrote both), else detection over them all."""
    data = b"\n".join(v.encode("utf-8", "surrogateescape") for v in values)
    try:
        data.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    info = codec_for(declared) if declared else None
    if info is not None:
        try:
            info.decode(data, "strict")
            return info.name
        except UnicodeDecodeError:
            pass
    return detect(data)


def _header_text(name: str, raw: str, codec: str, declared: str) -> str:
    """The decoded value. Raw 8-bit bytes are read in the block's charset rather than becoming
    U+FFFD as the email package would have them; encoded words in charsets it does not know
    are read as the body's text is."""
    if _RAW_8BIT.search(raw):
        raw = raw.encode("utf-8", "surrogateescape").decode(codec, "replace")
    if "=?" in raw:
        raw = _normalise_encoded_words(raw, declared)
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


def _read(raw: bytes) -> tuple[Message, list[str]]:
    try:
        message: Message = message_from_bytes(raw, _class=EmailMessage, policy=policy.default)
        return message, []
    except Exception as exc:  # header parsing inside the feed parser; compat32 parses none
        message = message_from_bytes(raw, policy=policy.compat32)
        return message, [f"MIME headers read leniently: {exc!r}"]


def _parse(raw: bytes) -> ParsedMessage:
    mended = headerblock.repair(raw) if headerblock.looks_damaged(raw) else None
    message, lenient = _read(mended[0] if mended else raw)
    if mended is None and any(isinstance(d, _NO_SEPARATOR) for d in message.defects):
        # A line that is not a header ended the block early: perhaps only a stray line.
        mended = headerblock.repair(raw)
        if mended is not None:
            message, lenient = _read(mended[0])
    if mended is not None:
        lenient += mended[1]
    headers = _header_values(message)

    def first(name: str) -> str | None:
        values = headers.get(name)
        return values[0] if values else None

    collector = _Collector()
    collector.walk(message)
    collector.finish()
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
        parts=tuple(collector.parts),
        headers=headers,
        defects=tuple(defects),
    )
