"""Is this mail from a machine? Decided by structure first (RFC 3464, 5965, 8098 reports),
then by signals real senders leave: each verdict says which signals made it."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from mailflow.mail import signals
from mailflow.mail.parse import ParsedMessage


class AutoKind(enum.StrEnum):
    BOUNCE = "bounce"  # a delivery status notification: never a ticket
    FEEDBACK = "feedback"  # a complaint from a mailbox provider: never a ticket; suppresses
    CHALLENGE = "challenge"  # "confirm you are a person": never answered, never a ticket
    AUTO_REPLY = "auto_reply"  # out-of-office, vacation, read receipts: stored, acts on nothing
    AUTO_GENERATED = "auto_generated"  # notifications, no-reply senders: a ticket, no reply
    LIST = "list"  # mailing lists and bulk mail: a ticket, no reply


# Kinds that end the message's journey in the hygiene step: no ticket, nothing sent.
STOPPING = frozenset({AutoKind.BOUNCE, AutoKind.FEEDBACK, AutoKind.CHALLENGE})


@dataclass(frozen=True, slots=True)
class Verdict:
    kind: AutoKind
    reason: str


@dataclass(frozen=True, slots=True)
class Known:
    """What only the database can tell about a message; empty when it was not asked."""

    returns_ours: str = ""  # the report quotes one of our messages: which
    answers_automatic: str = ""  # it answers automatic mail of ours: which


def envelope_sender(parsed: ParsedMessage, mail_from: str) -> str:
    """The envelope sender; mail that arrives without one (IMAP, inject) has Return-Path."""
    if mail_from.strip():
        return mail_from
    return parsed.header("return-path") or ""


def is_null_sender(sender: str) -> bool:
    """MAIL FROM:<> (RFC 5321 §4.5.5): bounces and RFC 3834 auto-replies; "" is unknown."""
    return sender.strip() == "<>"


def classify(parsed: ParsedMessage, mail_from: str, known: Known = Known()) -> Verdict | None:
    """None for a person's mail; otherwise what kind of machine sent it, and why we think so."""
    sender = envelope_sender(parsed, mail_from)
    return (
        _feedback(parsed)
        or _bounce(parsed, sender, known)
        or _challenge(parsed)
        or _auto_reply(parsed, sender, known)
        or _listed(parsed)
        or _generated(parsed, sender)
    )


def _verdict(kind: AutoKind, found: list[str]) -> Verdict:
    return Verdict(kind, "; ".join(found))


def _feedback(parsed: ParsedMessage) -> Verdict | None:
    found = signals.feedback_structure(parsed)
    if found:
        return _verdict(AutoKind.FEEDBACK, found)
    weak = signals.feedback_prose(parsed)
    if weak and signals.returned_message(parsed):
        return _verdict(AutoKind.FEEDBACK, [*weak, "carries the reported message"])
    return None


def _bounce(parsed: ParsedMessage, sender: str, known: Known) -> Verdict | None:
    found = signals.bounce_structure(parsed)
    if known.returns_ours and "text/rfc822-headers" in parsed.parts:
        found.append(f"returned headers of {known.returns_ours}")
    if found:
        return _verdict(AutoKind.BOUNCE, found)
    # A bounce's words count only from a machine: checked first, as a person's mail has none.
    machine = signals.machine_sender(parsed, sender)
    if known.returns_ours:
        machine.append(f"quotes {known.returns_ours}")
    prose = signals.bounce_prose(parsed) if machine else []
    return _verdict(AutoKind.BOUNCE, prose + machine) if prose else None


def _challenge(parsed: ParsedMessage) -> Verdict | None:
    found = signals.challenge(parsed)
    return _verdict(AutoKind.CHALLENGE, found) if len(found) >= 2 else None


def _auto_reply(parsed: ParsedMessage, sender: str, known: Known) -> Verdict | None:
    strong = signals.auto_reply_strong(parsed)
    if strong:
        return _verdict(AutoKind.AUTO_REPLY, strong)
    weak = signals.auto_reply_weak(parsed, sender)
    if known.answers_automatic:
        weak.append(f"answers {known.answers_automatic}")
    if len(weak) >= 2:
        return _verdict(AutoKind.AUTO_REPLY, weak)
    if weak:
        # One sign alone is no proof ("Absence request for May" is a person's mail): keep it
        # as a ticket, but answer nothing, in case it is a responder after all.
        return _verdict(AutoKind.AUTO_GENERATED, [f"one sign of an automatic reply: {weak[0]}"])
    return None


def _listed(parsed: ParsedMessage) -> Verdict | None:
    found = signals.list_headers(parsed)
    return _verdict(AutoKind.LIST, found) if found else None


def _generated(parsed: ParsedMessage, sender: str) -> Verdict | None:
    found = signals.generated(parsed, sender)
    return _verdict(AutoKind.AUTO_GENERATED, found) if found else None
