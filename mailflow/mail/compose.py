"""The one way to build outgoing mail: safe headers, threading, text with an HTML alternative."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from email import message_from_bytes, policy
from email.errors import HeaderParseError
from email.header import decode_header, make_header
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

from mailflow.mail.addresses import Mailbox
from mailflow.mail.parse import ParsedAttachment, decode_text

# Everything str.splitlines() breaks at, which the email package refuses in a header.
_LINE_BREAKS = re.compile(r"[\r\n\x00\x0b\x0c\x1c-\x1e\x85\u2028\u2029]+")
_SURROGATE = re.compile("[\ud800-\udfff]")
_SMUGGLED_BYTES = re.compile("[\udc80-\udcff]+")  # what a surrogateescape decoder kept
_ENCODED_WORD = re.compile(r"=\?[^?\s]*\?[bBqQ]\?[^?\s]*\?=")
_CONTENT_TYPE = re.compile(r"^[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+$")
MAX_REFERENCES = 20


class AutoSubmitted:
    """RFC 3834 §5 values."""

    AUTO_REPLIED = "auto-replied"
    AUTO_GENERATED = "auto-generated"


@dataclass(frozen=True, slots=True)
class Outgoing:
    sender: Mailbox
    to: tuple[Mailbox, ...]
    subject: str
    text: str
    message_id: str
    date: datetime
    html: str | None = None
    reply_to: Mailbox | None = None
    cc: tuple[Mailbox, ...] = ()
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    auto_submitted: str | None = AutoSubmitted.AUTO_GENERATED
    attachments: tuple[ParsedAttachment, ...] = ()


def new_message_id(domain: str) -> str:
    return f"{uuid.uuid4().hex}@{domain}"


def writable(text: str) -> str:
    """Text a mail can carry. Bytes a decoder kept as surrogates are read as UTF-8 or
    windows-1252; any other lone surrogate (UTF-7 and unicode-escape can encode one, and no
    mail can carry it) becomes U+FFFD, rather than failing the whole mail."""
    if not _SURROGATE.search(text):
        return text
    text = _SMUGGLED_BYTES.sub(
        lambda run: decode_text(run.group().encode("utf-8", "surrogateescape"), "utf-8")[0], text
    )
    return _SURROGATE.sub("\ufffd", text)


def header_safe(value: str) -> str:
    """A header value with every line break and NUL removed, so nothing can inject a header.

    Encoded words are decoded first and any left are defused: the email package decodes
    "=?utf-8?q?a=0D=0ABcc...?=" inside a display name when it writes the header."""
    text = _LINE_BREAKS.sub(" ", writable(_decoded(value)))
    return _ENCODED_WORD.sub(lambda m: m.group(0).replace("=?", "= ?"), text).strip()


def _decoded(value: str) -> str:
    if "=?" not in value:
        return value
    try:
        return str(make_header(decode_header(value)))
    except (HeaderParseError, LookupError, UnicodeDecodeError, ValueError):
        return value


def _address(mailbox: Mailbox) -> Address:
    name = header_safe(mailbox.name)
    try:
        return Address(display_name=name, addr_spec=mailbox.address)
    except (ValueError, IndexError, HeaderParseError):
        # A local part that is no dot-atom ("bob.@example.com") is written quoted instead.
        local, _, domain = mailbox.address.rpartition("@")
        return Address(display_name=name, username=local, domain=domain)


def compose(out: Outgoing) -> EmailMessage:
    message = EmailMessage()
    message["From"] = _address(out.sender)
    message["To"] = [_address(m) for m in out.to]
    if out.cc:
        message["Cc"] = [_address(m) for m in out.cc]
    if out.reply_to:
        message["Reply-To"] = _address(out.reply_to)
    message["Subject"] = header_safe(out.subject)
    message["Date"] = format_datetime(out.date)
    message["Message-ID"] = f"<{out.message_id}>"
    if out.in_reply_to:
        message["In-Reply-To"] = f"<{header_safe(out.in_reply_to)}>"
    references = [header_safe(r) for r in out.references[-MAX_REFERENCES:]]
    if references:
        message["References"] = " ".join(f"<{r}>" for r in references)
    if out.auto_submitted:
        message["Auto-Submitted"] = out.auto_submitted
        # Asks Exchange and Outlook not to answer with out-of-office or read receipts.
        message["X-Auto-Response-Suppress"] = "All"
    message.set_content(writable(out.text))
    if out.html:
        message.add_alternative(writable(out.html), subtype="html")
    for attachment in out.attachments:
        _attach(message, attachment)
    _drop_inner_mime_version(message)
    return message


def _attach(message: EmailMessage, attachment: ParsedAttachment) -> None:
    filename = header_safe(attachment.filename)
    content_type = attachment.content_type.partition(";")[0].strip().lower()
    if content_type == "message/rfc822":
        forwarded = _as_message(attachment.data)
        if forwarded is not None:
            # RFC 2046 §5.2.1: no base64 here, or clients show the forward as gibberish.
            message.add_attachment(forwarded, filename=filename)
            return
    maintype, subtype = content_type.split("/") if _CONTENT_TYPE.match(content_type) else ("", "")
    if maintype in ("", "multipart", "message"):
        # A bare multipart/ or message/ body cannot be sent as a base64 leaf; send its bytes.
        maintype, subtype = "application", "octet-stream"
    message.add_attachment(attachment.data, maintype=maintype, subtype=subtype, filename=filename)


def _as_message(data: bytes) -> EmailMessage | None:
    try:
        parsed = message_from_bytes(data, _class=EmailMessage, policy=policy.default)
    except Exception:  # the stdlib parser's corner cases; the bytes go as a plain file
        return None
    return parsed if isinstance(parsed, EmailMessage) and len(parsed) else None


def _drop_inner_mime_version(part: EmailMessage) -> None:
    """The email package repeats MIME-Version on every part it adds; once is right. A forwarded
    message keeps its own."""
    if part.get_content_maintype() != "multipart":
        return
    for child in part.iter_parts():
        if isinstance(child, EmailMessage):
            del child["MIME-Version"]
            _drop_inner_mime_version(child)
