"""Delivery status notifications (RFC 3464), the common non-standard bounces and feedback
reports (RFC 5965, and the unlabelled ones): which of our messages they are about, and why."""

from __future__ import annotations

import re
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import Message

_MESSAGE_ID_LINE = re.compile(r"^\s*message-id\s*:\s*<([^<>\s]+)>", re.I | re.M)
# Our VERP return paths (outbox.bounces.return_path) as a report quotes them.
_VERP = re.compile(r"[a-z0-9._-]+\+bounce-\d{1,12}-[a-z2-7]+@[a-z0-9.-]+", re.I)
RETURNED_SCAN = 64 * 1024  # of a returned message, its headers are what tells whose it was
_STATUS = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")
_SMTP_REPLY = re.compile(r"\b([245]\d\d)[ -]([245]\.\d{1,3}\.\d{1,3})?[^\n]*", re.M)


@dataclass(frozen=True, slots=True)
class Bounce:
    message_ids: tuple[str, ...]  # of the original message, as the report quotes them
    recipients: tuple[str, ...]
    permanent: bool  # failed (5.x.x); a delay report (4.x.x) is not a failure
    diagnostic: str
    # Every recipient delivered, relayed or expanded (a success report someone asked for):
    # nothing went wrong, so nothing is recorded.
    delivered: bool = False
    # Our VERP addresses the report quotes (the returned message's Return-Path).
    return_paths: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Feedback:
    """A complaint (RFC 5965 §3): someone marked our mail as spam."""

    message_ids: tuple[str, ...]
    return_paths: tuple[str, ...]
    recipients: tuple[str, ...]  # the complaining address, when the report names it
    feedback_type: str


@dataclass(frozen=True, slots=True)
class Returned:
    """What a report quotes of the message it is about."""

    message_ids: tuple[str, ...] = ()
    return_paths: tuple[str, ...] = ()


def _fields(part: Message) -> list[Message]:
    """The per-message and per-recipient field groups of a message/delivery-status part."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [p for p in payload if isinstance(p, Message)]
    text = part.get_payload(decode=True)
    if not isinstance(text, bytes):
        return []
    return [message_from_bytes(block.strip() + b"\n") for block in re.split(rb"\n\s*\n", text)]


def _report(message: Message, raw: bytes) -> Bounce | None:
    status_parts = [p for p in message.walk() if p.get_content_type() == "message/delivery-status"]
    if not status_parts:
        return None
    recipients: list[str] = []
    actions: list[str] = []
    diagnostics: list[str] = []
    for group in _fields(status_parts[0]):
        recipient = group.get("Final-Recipient") or group.get("Original-Recipient")
        if recipient is None:
            continue
        recipients.append(str(recipient).partition(";")[2].strip() or str(recipient))
        actions.append(str(group.get("Action", "")).strip().lower())
        diagnostic = group.get("Diagnostic-Code") or group.get("Status") or ""
        diagnostics.append(" ".join(str(diagnostic).partition(";")[2].split()) or str(diagnostic))
    permanent = "failed" in actions or not actions
    return Bounce(
        message_ids=_quoted_message_ids(message),
        return_paths=_verps(raw),
        recipients=tuple(recipients),
        permanent=permanent,
        diagnostic="; ".join(d for d in diagnostics if d) or "delivery failed",
        delivered=bool(actions) and all(a in _SUCCESS for a in actions),
    )


_SUCCESS = ("delivered", "relayed", "expanded")  # RFC 3464 §2.3.3


def _quoted_message_ids(message: Message) -> tuple[str, ...]:
    """Message-IDs in the returned original (message/rfc822 or text/rfc822-headers)."""
    found: list[str] = []
    for part in message.walk():
        content_type = part.get_content_type()
        if content_type == "message/rfc822":
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                value = inner[0].get("Message-ID")
                if value:
                    found += re.findall(r"<([^<>\s]+)>", str(value))
        elif content_type in ("text/rfc822-headers", "text/plain"):
            body = part.get_payload(decode=True)
            if isinstance(body, bytes):
                found += _MESSAGE_ID_LINE.findall(body.decode("utf-8", "replace"))
    return tuple(dict.fromkeys(found))


def _informal(message: Message, raw: bytes) -> Bounce:
    """A bounce in prose (qmail, old Exchange, hosted services): scan its text."""
    text = raw.decode("utf-8", "replace")
    body = text.partition("\n\n")[2] or text
    reply = _SMTP_REPLY.search(body)
    status = _STATUS.search(body)
    code = reply.group(0).strip() if reply else (status.group(1) if status else "")
    permanent = not (code.startswith("4") or (status and status.group(1).startswith("4")))
    return Bounce(
        message_ids=tuple(dict.fromkeys(_MESSAGE_ID_LINE.findall(body))),
        return_paths=_verps(raw),
        recipients=(),
        permanent=permanent,
        diagnostic=code[:300] or str(message.get("Subject", "delivery failed")),
    )


def read_bounce(raw: bytes) -> Bounce:
    message = message_from_bytes(raw, policy=policy.compat32)
    return _report(message, raw) or _informal(message, raw)


def _verps(raw: bytes) -> tuple[str, ...]:
    text = raw.decode("utf-8", "replace")
    return tuple(dict.fromkeys(m.lower() for m in _VERP.findall(text)))


def _addresses(value: object) -> list[str]:
    text = str(value or "")
    return [a.lower() for a in re.findall(r"[^\s<>;:,]+@[^\s<>;:,]+", text)]


def read_feedback(raw: bytes) -> Feedback:
    """The reported message and the complaining address: RFC 5965 fields (Original-Rcpt-To,
    Removal-Recipient), Microsoft's X-HmXmrOriginalRecipient, the returned message."""
    message = message_from_bytes(raw, policy=policy.compat32)
    recipients = _addresses(message.get("X-HmXmrOriginalRecipient"))
    kind = ""
    for part in message.walk():
        if part.get_content_type() != "message/feedback-report":
            continue
        for group in _fields(part):
            kind = kind or str(group.get("Feedback-Type", "")).strip().lower()
            for name in ("Original-Rcpt-To", "Removal-Recipient"):
                recipients += _addresses(group.get(name))
    return Feedback(
        message_ids=_quoted_message_ids(message),
        return_paths=_verps(raw),
        recipients=tuple(dict.fromkeys(recipients)),
        feedback_type=kind or "abuse",
    )


def returned(quoted: list[bytes], text: str) -> Returned:
    """Message-IDs and VERP addresses in a returned message (message/rfc822 or
    text/rfc822-headers parts) or quoted as header lines in a report's text."""
    ids: list[str] = []
    verps: list[str] = []
    for data in quoted:
        headers = data[:RETURNED_SCAN].split(b"\n\n", 1)[0].split(b"\r\n\r\n", 1)[0]
        ids += _MESSAGE_ID_LINE.findall(headers.decode("utf-8", "replace"))
        verps += _verps(headers)
    ids += _MESSAGE_ID_LINE.findall(text[:RETURNED_SCAN])
    verps += [m.lower() for m in _VERP.findall(text[:RETURNED_SCAN])]
    return Returned(tuple(dict.fromkeys(ids)), tuple(dict.fromkeys(verps)))
