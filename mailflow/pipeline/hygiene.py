"""Before anything acts on a message: our own mail coming back, duplicates, machines."""

from __future__ import annotations

import hashlib
import re

from sqlalchemy import select

from mailflow.db.models import InboundMessage, InboundState, OutboxMessage, Ticket
from mailflow.mail.automatic import AutoKind, Verdict, classify
from mailflow.mail.dsn import read_bounce
from mailflow.outbox import bounces
from mailflow.pipeline.intake import Disposition, Intake, Services

_OURS = re.compile(r"^[0-9a-f]{32}@")


async def loop(services: Services, intake: Intake) -> Disposition:
    """Mail from one of our own addresses, or one of our own messages sent back at us."""
    sender = intake.parsed.sender
    if sender is not None and services.addresses.resolve(sender.address) is not None:
        intake.decide("loop", f"From is our own address {sender.address}")
        return intake.finish(InboundState.DISCARDED, f"loop: mail from our own {sender.address}")
    message_id = intake.parsed.message_id or ""
    domain = services.config.message_id_domain
    if _OURS.match(message_id) and message_id.endswith("@" + domain):
        intake.decide("loop", f"Message-ID {message_id} is one we generated")
        return intake.finish(InboundState.DISCARDED, "loop: our own message came back")
    return Disposition.CONTINUE


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


async def automatic(services: Services, intake: Intake) -> Disposition:
    """Machines get no answers; bounces update the outbox and open no ticket."""
    verdict = classify(intake.parsed, intake.envelope.mail_from)
    if verdict is None or verdict.kind is not AutoKind.BOUNCE:
        verdict = await _to_return_path(services, intake) or verdict
    if verdict is None:
        return Disposition.CONTINUE
    intake.automatic = verdict
    intake.inbound.automatic = verdict.kind.value
    intake.decide("automatic", f"{verdict.kind.value}: {verdict.reason}")
    if verdict.kind is not AutoKind.BOUNCE:
        return Disposition.CONTINUE
    report = read_bounce(intake.inbound.raw)
    found = await bounces.apply(
        services.session, services.signer, report, intake.envelope.rcpt_tos, intake.now
    )
    intake.events += found.events
    intake.decide("bounce", found.summary)
    return intake.finish(InboundState.STORED_ONLY, f"bounce: {found.summary}")
