"""Turn the decided message into ticket changes: open a ticket, or add to one."""

from __future__ import annotations

from sqlalchemy import select

from mailflow.db.models import Agent, Direction, Message, Ticket
from mailflow.outbox.mailer import TemplateMail
from mailflow.pipeline.intake import Intake, Services
from mailflow.tickets import ops
from mailflow.tickets.events import AgentReplied, CustomerReplied, TicketCreated
from mailflow.tickets.messages import add_incoming
from mailflow.tickets.numbers import clean_subject


async def apply(services: Services, intake: Intake) -> None:
    if intake.ticket is None:
        await _open(services, intake)
    elif intake.agent is not None:
        await _agent_reply(services, intake, intake.ticket, intake.agent)
    else:
        await _customer_reply(services, intake, intake.ticket)


async def _open(services: Services, intake: Intake) -> None:
    assert intake.route is not None
    assert intake.sender is not None
    session, now = services.session, intake.now
    customer = await ops.customer_for(session, intake.sender, now)
    actor = ops.Actor.customer(customer)
    ticket = await ops.open_ticket(
        session,
        ticket_type=intake.route.ticket_type,
        customer=customer,
        subject=clean_subject(intake.parsed.subject) or "(no subject)",
        actor=actor,
        now=now,
    )
    message = await add_incoming(
        session,
        ticket,
        intake.parsed,
        inbound_id=intake.inbound.id,
        actor=actor,
        customer_id=customer.id,
        now=now,
    )
    intake.ticket = ticket
    intake.events.append(TicketCreated(ticket_id=ticket.id, message_id=message.id))
    intake.decide("apply", f"opened ticket {ticket.id} for {customer.email}")


async def _customer_reply(services: Services, intake: Intake, ticket: Ticket) -> None:
    assert intake.sender is not None
    session, now = services.session, intake.now
    customer = await ops.customer_for(session, intake.sender, now)
    message = await add_incoming(
        session,
        ticket,
        intake.parsed,
        inbound_id=intake.inbound.id,
        actor=ops.Actor.customer(customer),
        customer_id=customer.id,
        now=now,
    )
    intake.events.append(CustomerReplied(ticket_id=ticket.id, message_id=message.id))
    intake.decide("apply", f"customer reply added to ticket {ticket.id}")


async def _agent_reply(services: Services, intake: Intake, ticket: Ticket, agent: Agent) -> None:
    """A public answer: stored, then sent to the customer from the type's address."""
    session, now = services.session, intake.now
    actor = ops.Actor.agent(agent)
    message = await add_incoming(
        session,
        ticket,
        intake.parsed,
        inbound_id=intake.inbound.id,
        actor=actor,
        customer_id=None,
        now=now,
    )
    customer = ticket.customer
    await services.mailer.send(
        session,
        ticket,
        TemplateMail(
            template="customer/agent_reply",
            to=ops.mailbox_of(customer),
            purpose="agent_reply",
            actor=actor,
            message=message,
            answering_id=await _last_customer_message_id(services, ticket),
            sender_name=agent.name,
            auto_submitted=None,
            attachments=intake.parsed.attachments,
        ),
        now,
    )
    intake.events.append(
        AgentReplied(ticket_id=ticket.id, message_id=message.id, agent_id=agent.id)
    )
    intake.decide("apply", f"agent reply added to ticket {ticket.id} and sent to {customer.email}")


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
