"""Bounces of and complaints about our own mail: VERP return paths name the outbox row; the
report's quoted Message-ID is the fallback when a relay rewrote the return path."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mailflow.db.models import OutboxMessage, Ticket
from mailflow.mail.addresses import split_tag, with_tag
from mailflow.mail.dsn import Bounce, Feedback
from mailflow.outbox import suppressions
from mailflow.outbox.queue import mark_failed
from mailflow.tickets import ops
from mailflow.tickets.events import Event
from mailflow.tokens import Signer

_VERP = re.compile(r"^bounce-(\d{1,12})-([a-z2-7]+)$")


@dataclass(slots=True)
class Applied:
    summary: str
    events: list[Event] = field(default_factory=list)


def return_path(signer: Signer, address: str, outbox_id: int) -> str:
    """support+bounce-42-<mac>@example.com: a bounce to it names outbox row 42."""
    return with_tag(address, f"bounce-{outbox_id}-{signer.signature('bounce', outbox_id)}")


def outbox_id_of(signer: Signer, address: str) -> int | None:
    _, tag = split_tag(address)
    match = _VERP.match(tag or "")
    if match is None:
        return None
    outbox_id = int(match.group(1))
    return outbox_id if signer.signature("bounce", outbox_id) == match.group(2) else None


async def _rows(
    session: AsyncSession,
    signer: Signer,
    report: Bounce | Feedback,
    rcpt_tos: Sequence[str],
) -> tuple[list[OutboxMessage], str]:
    """Our mail the report is about: by the return path it was sent to, else by the one it
    quotes, else by the quoted Message-ID."""
    for addresses, how in ((rcpt_tos, "return path"), (report.return_paths, "quoted return path")):
        ids = [i for i in (outbox_id_of(signer, a) for a in addresses) if i is not None]
        if ids:
            rows = (
                await session.scalars(select(OutboxMessage).where(OutboxMessage.id.in_(ids)))
            ).all()
            if rows:
                return list(rows), how
        # Signed by us, but naming no row (a restored database): look further.
    if report.message_ids:
        rows = (
            await session.scalars(
                select(OutboxMessage).where(OutboxMessage.message_id.in_(report.message_ids))
            )
        ).all()
        return list(rows), "quoted Message-ID"
    return [], ""


async def apply(
    session: AsyncSession, signer: Signer, report: Bounce, rcpt_tos: Sequence[str], now: datetime
) -> Applied:
    """Mark the bounced outbox rows failed and say so on their tickets."""
    if report.delivered:
        return Applied("a report of successful delivery; nothing to record")
    rows, how = await _rows(session, signer, report, rcpt_tos)
    if not rows:
        return Applied(f"matches none of our mail ({report.diagnostic})")
    applied = Applied(f"outbox {', '.join(str(r.id) for r in rows)} by {how}: {report.diagnostic}")
    actor = ops.Actor.system("bounce")
    for row in rows:
        ticket = await session.get(Ticket, row.ticket_id) if row.ticket_id else None
        if not report.permanent:
            if ticket is not None:
                ops.record(
                    session,
                    ticket,
                    actor,
                    "delivery_delayed",
                    now,
                    outbox=row.id,
                    error=report.diagnostic,
                )
            continue
        # As when the relay refuses it, and with the same guard: no event for mail to an
        # agent, or an agent's dead mailbox would be written to again at every bounce.
        applied.events += await mark_failed(
            session, row.id, f"bounced: {report.diagnostic}", actor, now
        )
    return applied


async def complaint(
    session: AsyncSession,
    signer: Signer,
    report: Feedback,
    rcpt_tos: Sequence[str],
    now: datetime,
    ours: Callable[[str], bool],
) -> Applied:
    """Record the complaint on the tickets of the mail it is about, and send the complaining
    address no more automatic mail (RFC 6449 §3.2: a complaint is an unsubscribe)."""
    rows, how = await _rows(session, signer, report, rcpt_tos)
    addresses = [a for r in rows for a in r.rcpt_tos] or list(report.recipients)
    addresses = [a for a in dict.fromkeys(addresses) if not ours(a)]
    about = f"outbox {', '.join(str(r.id) for r in rows)} by {how}" if rows else "none of our mail"
    actor = ops.Actor.system("feedback")
    for row in rows:
        ticket = await session.get(Ticket, row.ticket_id) if row.ticket_id else None
        if ticket is not None:
            ops.record(
                session,
                ticket,
                actor,
                "complaint_received",
                now,
                outbox=row.id,
                to=row.rcpt_tos,
                feedback_type=report.feedback_type,
            )
    reason = f"complaint ({report.feedback_type}) about {about}"
    for address in addresses:
        await suppressions.suppress(session, address, reason, now)
    listed = ", ".join(addresses) or "no address named"
    return Applied(f"{report.feedback_type} complaint about {about}; suppressed: {listed}")
