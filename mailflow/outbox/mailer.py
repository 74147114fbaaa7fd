"""Turns "send this template about this ticket to these people" into an outbox row."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from mailflow.config import Config, TicketTypeConfig
from mailflow.db.models import Message, OutboxMessage, Ticket
from mailflow.mail.addresses import Mailbox, with_tag
from mailflow.mail.compose import AutoSubmitted, Outgoing, compose, new_message_id
from mailflow.mail.parse import ParsedAttachment
from mailflow.outbox.queue import enqueue
from mailflow.render import Renderer
from mailflow.tickets.messages import root_ref
from mailflow.tickets.numbers import reply_subject, tag
from mailflow.tickets.ops import Actor


@dataclass(frozen=True, slots=True)
class TemplateMail:
    template: str
    to: Mailbox
    purpose: str
    actor: Actor
    # The message the template talks about, and the Message-ID this mail answers.
    message: Message | None = None
    answering_id: str | None = None
    sender_name: str | None = None
    auto_submitted: str | None = AutoSubmitted.AUTO_GENERATED
    attachments: tuple[ParsedAttachment, ...] = ()
    context: Mapping[str, Any] = field(default_factory=dict)


class Mailer:
    def __init__(self, config: Config, renderer: Renderer) -> None:
        self.config = config
        self.renderer = renderer

    def ticket_address(self, ticket_type: TicketTypeConfig, ticket: Ticket) -> Mailbox:
        """The type's address with the ticket's plus-tag: replies to it find the ticket."""
        return Mailbox(
            self.sender_name(ticket_type), with_tag(ticket_type.addresses[0], str(ticket.id))
        )

    def sender_name(self, ticket_type: TicketTypeConfig) -> str:
        return ticket_type.display_name or self.config.instance.name

    def context(self, ticket: Ticket, mail: TemplateMail) -> dict[str, Any]:
        ticket_type = self.config.ticket_type(ticket.type)
        return {
            "ticket": ticket,
            "customer": ticket.customer,
            "assignee": ticket.assignee,
            "message": mail.message,
            "recipient": mail.to,
            "ticket_type": ticket_type,
            "instance": self.config.instance,
            "tag": tag(ticket.id),
            **mail.context,
        }

    async def send(
        self, session: AsyncSession, ticket: Ticket, mail: TemplateMail, now: datetime
    ) -> OutboxMessage:
        ticket_type = self.config.ticket_type(ticket.type)
        rendered = self.renderer.render(mail.template, ticket.type, self.context(ticket, mail))
        subject = rendered.subject or reply_subject(ticket.id, ticket.subject)
        if tag(ticket.id) not in subject:
            subject = f"{tag(ticket.id)} {subject}"
        root = await root_ref(session, ticket.id)
        references = tuple(r for r in (root, mail.answering_id) if r)
        address = ticket_type.addresses[0]
        outgoing = Outgoing(
            sender=Mailbox(mail.sender_name or self.sender_name(ticket_type), address),
            to=(mail.to,),
            reply_to=self.ticket_address(ticket_type, ticket),
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
        return await enqueue(
            session,
            compose(outgoing),
            mail_from=address,
            rcpt_tos=[mail.to.address],
            ticket=ticket,
            purpose=mail.purpose,
            actor=mail.actor,
            now=now,
        )
