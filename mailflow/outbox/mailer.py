"""Turns "send this template about this ticket to this person" into an outbox row."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mailflow.config import Config, TicketTypeConfig
from mailflow.db.models import AutomaticMail, Message, OutboxMessage, Ticket
from mailflow.mail.addresses import Mailbox, with_tag
from mailflow.mail.compose import AutoSubmitted, Outgoing, compose, new_message_id
from mailflow.mail.parse import ParsedAttachment
from mailflow.outbox import suppressions
from mailflow.outbox.bounces import return_path
from mailflow.outbox.queue import enqueue
from mailflow.people.languages import reader_speech
from mailflow.render import Renderer
from mailflow.tickets.authors import author_of
from mailflow.tickets.messages import root_ref
from mailflow.tickets.numbers import reply_subject, tag
from mailflow.tickets.ops import Actor, record
from mailflow.tokens import ReplyToken, Role, Signer


@dataclass(frozen=True, slots=True)
class Recipient:
    mailbox: Mailbox
    role: Role
    # The customer's or agent's id; 0 for an address that is neither.
    person_id: int = 0


@dataclass(frozen=True, slots=True)
class TemplateMail:
    template: str
    to: Recipient
    purpose: str
    actor: Actor
    # The message the template talks about, and the Message-ID this mail answers.
    message: Message | None = None
    answering_id: str | None = None
    sender_name: str | None = None
    auto_submitted: str | None = AutoSubmitted.AUTO_GENERATED
    attachments: tuple[ParsedAttachment, ...] = ()
    context: Mapping[str, Any] = field(default_factory=dict)
    cc: tuple[Mailbox, ...] = ()


class Mailer:
    def __init__(self, config: Config, renderer: Renderer, signer: Signer) -> None:
        self.config = config
        self.renderer = renderer
        self.signer = signer

    def reply_address(self, ticket: Ticket, recipient: Recipient) -> Mailbox:
        """The type's address with a signed tag naming the ticket and the recipient: an answer
        to it finds the ticket even when a provider rewrote Message-IDs and dropped References."""
        ticket_type = self.config.ticket_type(ticket.type)
        token = ReplyToken(ticket.id, recipient.role, recipient.person_id)
        address = with_tag(ticket_type.addresses[0], self.signer.reply_tag(token))
        return Mailbox(self.sender_name(ticket_type), address)

    def sender_name(self, ticket_type: TicketTypeConfig) -> str:
        return ticket_type.display_name or self.config.instance.name

    def context(self, ticket: Ticket, mail: TemplateMail) -> dict[str, Any]:
        ticket_type = self.config.ticket_type(ticket.type)
        return {
            "ticket": ticket,
            "customer": ticket.customer,
            "assignee": ticket.assignee,
            "message": mail.message,
            "author": author_of(mail.message, ticket) if mail.message else None,
            "recipient": mail.to.mailbox,
            "ticket_type": ticket_type,
            "instance": self.config.instance,
            "tag": tag(ticket.id),
            "usergroup_fields": self.config.people.usergroup_fields,
            "business_hours": self.config.business_hours,
            **mail.context,
        }

    async def _held_back(
        self, session: AsyncSession, ticket: Ticket, mail: TemplateMail, now: datetime
    ) -> str | None:
        """Why this automatic mail must not go out (RFC 3834 §2), or None. Every automatic
        mail counts, to agents too: a loop through an agent's mailbox is a loop all the same."""
        if mail.auto_submitted is None:
            return None
        message = mail.message
        address = mail.to.mailbox.address
        if message and message.automatic and message.from_address == address:
            return f"the message it answers was automatic ({message.automatic})"
        if suppressed := await suppressions.held(session, address):
            return suppressed
        hygiene = self.config.hygiene
        since = now - hygiene.automatic_mail_window
        limit = hygiene.automatic_mail_limit
        if mail.to.role is Role.AGENT:
            limit = hygiene.agent_automatic_mail_limit
        if await _sent_since(session, AutomaticMail.address == address, since) >= limit:
            return "per-address limit on automatic mail"
        ceiling = hygiene.ticket_automatic_mail_limit
        if await _sent_since(session, AutomaticMail.ticket_id == ticket.id, since) >= ceiling:
            return "per-ticket limit on automatic mail"
        return None

    async def send(
        self, session: AsyncSession, ticket: Ticket, mail: TemplateMail, now: datetime
    ) -> OutboxMessage | None:
        """Queue the mail; None when a cap on automatic mail holds it back."""
        address = mail.to.mailbox.address
        held = await self._held_back(session, ticket, mail, now)
        if held:
            record(
                session,
                ticket,
                mail.actor,
                "automatic_mail_suppressed",
                now,
                to=address,
                template=mail.template,
                reason=held,
            )
            return None
        ticket_type = self.config.ticket_type(ticket.type)
        speech = await reader_speech(
            session, self.config, self.renderer.languages, ticket, mail.to.role, address
        )
        rendered = self.renderer.render(
            mail.template, ticket.type, self.context(ticket, mail), speech
        )
        subject = rendered.subject or reply_subject(ticket.id, ticket.subject)
        if tag(ticket.id) not in subject:
            subject = f"{tag(ticket.id)} {subject}"
        root = await root_ref(session, ticket.id)
        references = tuple(r for r in (root, mail.answering_id) if r)
        outgoing = Outgoing(
            sender=Mailbox(
                mail.sender_name or self.sender_name(ticket_type), ticket_type.addresses[0]
            ),
            to=(mail.to.mailbox,),
            cc=mail.cc,
            reply_to=self.reply_address(ticket, mail.to),
            subject=subject,
            text=rendered.text,
            html=rendered.html,
            message_id=new_message_id(self.config.message_id_domain),
            date=now,
            in_reply_to=mail.answering_id,
            references=tuple(dict.fromkeys(references)),
            auto_submitted=mail.auto_submitted,
            attachments=mail.attachments,
        )
        row = await enqueue(
            session,
            compose(outgoing),
            mail_from=ticket_type.addresses[0],
            rcpt_tos=[address, *(m.address for m in mail.cc)],
            ticket=ticket,
            purpose=mail.purpose,
            actor=mail.actor,
            now=now,
        )
        row.mail_from = return_path(self.signer, ticket_type.addresses[0], row.id)
        if mail.auto_submitted is not None:
            session.add(AutomaticMail(address=address, ticket_id=ticket.id, sent_at=now))
        return row


async def _sent_since(session: AsyncSession, which: ColumnElement[bool], since: datetime) -> int:
    """Automatic mail counted for the caps: to one address, or about one ticket."""
    sent = await session.scalar(
        select(func.count()).select_from(AutomaticMail).where(which, AutomaticMail.sent_at > since)
    )
    return sent or 0
