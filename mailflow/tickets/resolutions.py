"""A ticket's resolution: one per ticket, set again to edit it; it may be told to the
customer and published in the help centre."""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from mailflow.db.models import Ticket
from mailflow.db.record import Resolution
from mailflow.outbox.mailer import Mailer, Recipient, TemplateMail
from mailflow.tickets import ops
from mailflow.tokens import Role


def slug(ticket: Ticket) -> str:
    """/kb/123-printer-is-on-fire: the ticket number keeps it unique."""
    ascii_text = unicodedata.normalize("NFKD", ticket.subject).encode("ascii", "ignore").decode()
    words = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:80].rstrip("-")
    return f"{ticket.id}-{words}" if words else str(ticket.id)


async def resolve(
    session: AsyncSession,
    mailer: Mailer,
    ticket: Ticket,
    text: str,
    *,
    notify: bool,
    publish: bool,
    actor: ops.Actor,
    now: datetime,
) -> Resolution:
    resolution = await session.get(Resolution, ticket.id)
    edited = resolution is not None
    if resolution is None:
        resolution = Resolution(
            ticket_id=ticket.id, text=text, author=actor.label, updated_at=now, published=False
        )
        session.add(resolution)
    resolution.text, resolution.author, resolution.updated_at = text, actor.label, now
    if publish:
        resolution.published, resolution.slug, resolution.title = True, slug(ticket), ticket.subject
    ops.record(
        session,
        ticket,
        actor,
        "resolution_edited" if edited else "resolution_set",
        now,
        notify=notify,
        published=resolution.published,
        slug=resolution.slug,
    )
    if notify:
        customer = ticket.customer
        mail = TemplateMail(
            template="customer/resolution",
            to=Recipient(ops.mailbox_of(customer), Role.CUSTOMER, customer.id),
            purpose="resolution",
            actor=actor,
            auto_submitted=None,
            context={"resolution": resolution},
        )
        await mailer.send(session, ticket, mail, now)
    return resolution
