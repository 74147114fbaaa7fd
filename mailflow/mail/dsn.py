"""Delivery status notifications (RFC 3464) and the common non-standard bounces: which of
our messages failed, and why."""

from __future__ import annotations

import re
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import Message

_MESSAGE_ID_LINE = re.compile(r"^message-id:\s*<([^<>\s]+)>", re.I | re.M)
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


def _fields(part: Message) -> list[Message]:
    """The per-message and per-recipient field groups of a message/delivery-status part."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [p for p in payload if isinstance(p, Message)]
    text = part.get_payload(decode=True)
    if not isinstance(text, bytes):
        return []
    return [message_from_bytes(block.strip() + b"\n") for block in re.split(rb"\n\s*\n", text)]


def _report(message: Message) -> Bounce | None:
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
        recipients=(),
        permanent=permanent,
        diagnostic=code[:300] or str(message.get("Subject", "delivery failed")),
    )


def read_bounce(raw: bytes) -> Bounce:
    message = message_from_bytes(raw, policy=policy.compat32)
    return _report(message) or _informal(message, raw)
