"""Before anything acts on a message: our own mail coming back, duplicates, machines."""

from __future__ import annotations

import hashlib

from sqlalchemy import select

from mailflow.db.models import InboundMessage, InboundState, OutboxMessage, Ticket
from mailflow.mail import dsn, signals
from mailflow.mail.addresses import parse_mailbox
from mailflow.mail.automatic import STOPPING, AutoKind, Known, Verdict, classify, envelope_sender
from mailflow.outbox import bounces
from mailflow.pipeline.intake import Disposition, Intake, Services


async def loop(services: Services, intake: Intake) -> Disposition:
    """Mail from one of our own addresses, or one of our own messages sent back at us."""
    sender = intake.parsed.sender
    if sender is not None and services.addresses.resolve(sender.address) is not None:
        intake.decide("loop", f"From is our own address {sender.address}")
        return intake.finish(InboundState.DISCARDED, f"loop: mail from our own {sender.address}")
    message_id = intake.parsed.message_id
    # Ours only if we sent it: a customer's Message-ID may look like ours by chance.
    if message_id and await _outbox_row(services, message_id) is not None:
        intake.decide("loop", f"Message-ID {message_id} is that of our outbox mail")
        return intake.finish(InboundState.DISCARDED, "loop: our own message came back")
    return Disposition.CONTINUE


async def _outbox_row(services: Services, message_id: str) -> OutboxMessage | None:
    return await services.session.scalar(
        select(OutboxMessage).where(OutboxMessage.message_id == message_id).limit(1)
    )


def dedupe_key(intake: Intake) -> str:
    """The same Message-ID from the same sender: another sender's mail that reuses an ID
    (scanners and scripts write <1@localhost>) is not a copy of this one."""
    parsed = intake.parsed
    sender = parsed.sender.address if parsed.sender else intake.envelope.mail_from
    if parsed.message_id:
        return f"mid:{sender}:{parsed.message_id}"[:1000]
    material = "\n".join([sender, parsed.header("date") or "", parsed.subject, parsed.text])
    return "sha:" + hashlib.sha256(material.encode("utf-8", "replace")).hexdigest()


async def duplicate(services: Services, intake: Intake) -> Disposition:
    """A second delivery of a message we already took (SMTP retry, two of our addresses,
    an IMAP re-fetch) changes nothing."""
    key = dedupe_key(intake)
    earlier = await services.session.scalar(
        select(InboundMessage.id)
        .where(
            InboundMessage.dedupe_key == key,
            InboundMessage.state.in_([InboundState.PROCESSED, InboundState.STORED_ONLY]),
        )
        .limit(1)
    )
    if earlier is not None:
        intake.decide("duplicate", f"same {key[:4]} as inbound {earlier}")
        return intake.finish(InboundState.DISCARDED, f"duplicate of inbound {earlier}")
    intake.dedupe_key = key
    return Disposition.CONTINUE


async def _to_return_path(services: Services, intake: Intake) -> Verdict | None:
    """Only machines write to a return path (RFC 3834 §4 sends auto-replies there): what is
    not a bounce is an auto-reply, kept on the ticket of the mail it answers."""
    for rcpt in intake.envelope.rcpt_tos:
        outbox_id = bounces.outbox_id_of(services.signer, rcpt)
        if outbox_id is None:
            continue
        row = await services.session.get(OutboxMessage, outbox_id)
        if row is not None and row.ticket_id is not None:
            intake.ticket = await services.session.get(Ticket, row.ticket_id)
        return Verdict(AutoKind.AUTO_REPLY, f"sent to the return path of outbox {outbox_id}")
    return None


# Parts that return a message to its sender: their headers tell whose mail it was.
_RETURNED = ("message/rfc822", "text/rfc822-headers")


async def _known(services: Services, intake: Intake) -> Known:
    """Ask the database only what can change the verdict on this message: whether a report
    quotes our mail, whether a lone sign of an auto-reply answers our automatic mail."""
    parsed = intake.parsed
    returns_ours = ""
    if signals.returned_message(parsed) or "message-id" in parsed.text[:4000].lower():
        quoted = [a.data for a in parsed.attachments if a.content_type in _RETURNED]
        returns_ours = await _ours(services, dsn.returned(quoted, parsed.text))
    answers = ""
    sender = envelope_sender(parsed, intake.envelope.mail_from)
    if parsed.thread_ids and len(signals.auto_reply_weak(parsed, sender)) == 1:
        for message_id in parsed.thread_ids[:5]:
            row = await _outbox_row(services, message_id)
            if row is not None and b"\nAuto-Submitted: auto-" in row.raw.partition(b"\r\n\r\n")[0]:
                answers = f"our automatic mail (outbox {row.id})"
                break
    return Known(returns_ours=returns_ours, answers_automatic=answers)


async def _ours(services: Services, quoted: dsn.Returned) -> str:
    for address in quoted.return_paths:
        outbox_id = bounces.outbox_id_of(services.signer, address)
        if outbox_id is not None:
            return f"our return path of outbox {outbox_id}"
    for message_id in quoted.message_ids[:10]:
        row = await _outbox_row(services, message_id)
        if row is not None:
            return f"our outbox {row.id}"
    return ""


async def automatic(services: Services, intake: Intake) -> Disposition:
    """Machines get no answers; bounces, complaints and challenges open no ticket."""
    verdict = classify(intake.parsed, intake.envelope.mail_from, await _known(services, intake))
    if verdict is None or verdict.kind not in STOPPING:
        verdict = await _to_return_path(services, intake) or verdict
    if verdict is None:
        return Disposition.CONTINUE
    intake.automatic = verdict
    intake.inbound.automatic = verdict.kind.value
    intake.decide("automatic", f"{verdict.kind.value}: {verdict.reason}")
    if verdict.kind is AutoKind.BOUNCE:
        return await _bounce(services, intake)
    if verdict.kind is AutoKind.FEEDBACK:
        return await _complaint(services, intake)
    if verdict.kind is AutoKind.CHALLENGE:
        return intake.finish(InboundState.STORED_ONLY, "challenge-response request; never answered")
    unsigned = intake.parsed.sender is None and parse_mailbox(intake.envelope.mail_from) is None
    if verdict.kind is AutoKind.AUTO_REPLY and unsigned:
        # Nobody to store it from, but surely a responder: kept with the reason, where a
        # sender-less mail of unknown kind waits in the quarantine for a person.
        return intake.finish(InboundState.STORED_ONLY, "automatic reply without a usable sender")
    return Disposition.CONTINUE


async def _bounce(services: Services, intake: Intake) -> Disposition:
    report = dsn.read_bounce(intake.inbound.raw)
    found = await bounces.apply(
        services.session, services.signer, report, intake.envelope.rcpt_tos, intake.now
    )
    intake.events += found.events
    intake.decide("bounce", found.summary)
    return intake.finish(InboundState.STORED_ONLY, f"bounce: {found.summary}")


async def _complaint(services: Services, intake: Intake) -> Disposition:
    report = dsn.read_feedback(intake.inbound.raw)
    found = await bounces.complaint(
        services.session,
        services.signer,
        report,
        intake.envelope.rcpt_tos,
        intake.now,
        ours=lambda address: services.addresses.resolve(address) is not None,
    )
    intake.decide("feedback", found.summary)
    return intake.finish(InboundState.STORED_ONLY, f"feedback report: {found.summary}")
