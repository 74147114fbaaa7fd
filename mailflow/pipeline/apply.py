"""Turn the decided message into ticket changes: open a ticket, or add to one."""

from __future__ import annotations

from sqlalchemy import select

from mailflow.db.models import Agent, Direction, Message, Ticket
from mailflow.mail.addresses import Mailbox
from mailflow.outbox.mailer import TemplateMail
from mailflow.pipeline.intake import Intake, Services
from mailflow.tickets import ops
from mailflow.tickets.events import AgentReplied, CustomerReplied, TicketCreated
from mailflow.tickets.messages import add_incoming
from mailflow.tickets.numbers import clean_subject


async def apply(services: Services, intake: Intake) -> None:
    sender = intake.sender
    assert sender is not None
    if intake.ticket is None:
        await _open(services, intake, sender)
    elif intake.agent is not None:
        await _agent_reply(services, intake, intake.ticket, intake.agent)
    else:
        await _customer_reply(services, intake, intake.ticket, sender)


async def _store(
    services: Services, intake: Intake, ticket: Ticket, actor: ops.Actor, customer_id: int | None
) -> Message:
    assert intake.sender is not None
    return await add_incoming(
        services.session,
        ticket,
        intake.parsed,
        sender=intake.sender,
        inbound_id=intake.inbound.id,
        actor=actor,
        customer_id=customer_id,
        now=intake.now,
    )


async def _open(services: Services, intake: Intake, sender: Mailbox) -> None:
    assert intake.route is not None
    customer = await ops.customer_for(services.session, sender, intake.now)
    actor = ops.Actor.customer(customer)
    ticket = await ops.open_ticket(
        services.session,
        ticket_type=intake.route.ticket_type,
        customer=customer,
        subject=clean_subject(intake.parsed.subject) or "(no subject)",
        actor=actor,
        now=intake.now,
    )
    message = await _store(services, intake, ticket, actor, customer.id)
    intake.ticket = ticket
    intake.events.append(TicketCreated(ticket_id=ticket.id, message_id=message.id))
    intake.decide("apply", f"opened ticket {ticket.id} for {customer.email}")


async def _customer_reply(
    services: Services, intake: Intake, ticket: Ticket, sender: Mailbox
) -> None:
    customer = await ops.customer_for(services.session, sender, intake.now)
    message = await _store(services, intake, ticket, ops.Actor.customer(customer), customer.id)
    intake.events.append(CustomerReplied(ticket_id=ticket.id, message_id=message.id))
    intake.decide("apply", f"customer reply added to ticket {ticket.id}")


async def _agent_reply(services: Services, intake: Intake, ticket: Ticket, agent: Agent) -> None:
    """A public answer: stored, then sent to the customer from the type's address."""
    actor = ops.Actor.agent(agent)
    message = await _store(services, intake, ticket, actor, None)
    customer = ticket.customer
    reply = TemplateMail(
        template="customer/agent_reply",
        to=ops.mailbox_of(customer),
        purpose="agent_reply",
        actor=actor,
        message=message,
        answering_id=await _last_customer_message_id(services, ticket),
        sender_name=agent.name,
        auto_submitted=None,
        attachments=intake.parsed.attachments,
    )
    await services.mailer.send(services.session, ticket, reply, intake.now)
    intake.events.append(
        AgentReplied(ticket_id=ticket.id, message_id=message.id, agent_id=agent.id)
    )
    intake.decide("apply", f"agent reply added to ticket {ticket.id}, sent to {customer.email}")


async def _last_customer_message_id(services: Services, ticket: Ticket) -> str | None:
    return await services.session.scalar(
        select(Message.message_id)
        .where(
            Message.ticket_id == ticket.id,
            Message.direction == Direction.IN,
            Message.agent_id.is_(None),
            Message.message_id.is_not(None),
        )
        .order_by(Message.id.desc())
        .limit(1)
    )
