"""Turn the decided message into ticket changes: open a ticket, or add to one."""

from __future__ import annotations

from sqlalchemy import select

from mailflow.db.models import Agent, Direction, InboundState, Message, ParticipantRole, Ticket
from mailflow.mail.addresses import Mailbox
from mailflow.mail.automatic import AutoKind
from mailflow.outbox.mailer import Recipient, TemplateMail
from mailflow.pipeline.intake import Disposition, Intake, Services
from mailflow.tickets import ops
from mailflow.tickets.events import AgentReplied, CustomerReplied, TicketCreated
from mailflow.tickets.messages import add_incoming, add_participants, attachments_of
from mailflow.tickets.numbers import clean_subject
from mailflow.tokens import Role


async def apply(services: Services, intake: Intake) -> Disposition:
    sender = intake.sender
    assert sender is not None
    if intake.automatic and intake.automatic.kind is AutoKind.AUTO_REPLY:
        return await _store_only(services, intake)
    if intake.ticket is None:
        await _open(services, intake, sender)
    elif intake.agent is not None:
        await _agent_reply(services, intake, intake.ticket, intake.agent)
    else:
        await _customer_reply(services, intake, intake.ticket, sender)
    _record_refusals(services, intake)
    return Disposition.CONTINUE


async def _store(
    services: Services, intake: Intake, ticket: Ticket, actor: ops.Actor, customer_id: int | None
) -> Message:
    assert intake.sender is not None
    intake.message = await add_incoming(
        services.session,
        ticket,
        intake.parsed,
        sender=intake.sender,
        inbound_id=intake.inbound.id,
        actor=actor,
        customer_id=customer_id,
        now=intake.now,
        automatic=intake.automatic.kind.value if intake.automatic else None,
        max_attachment_size=services.config.hygiene.max_attachment_size,
    )
    return intake.message


async def _store_only(services: Services, intake: Intake) -> Disposition:
    """An out-of-office or read receipt: kept on its ticket, but it changes and sends nothing."""
    ticket = intake.ticket
    if ticket is None:
        intake.decide("apply", "automatic reply to no ticket of ours; stored only")
        return intake.finish(InboundState.STORED_ONLY, "automatic reply, no ticket")
    actor = ops.Actor.agent(intake.agent) if intake.agent else ops.Actor.system("automatic")
    await _store(services, intake, ticket, actor, None)
    intake.decide("apply", f"automatic reply stored on ticket {ticket.id}; nothing else done")
    return intake.finish(InboundState.STORED_ONLY, "automatic reply")


async def _participants(
    services: Services, intake: Intake, ticket: Ticket, role: ParticipantRole
) -> None:
    """The sender in `role`, and everyone else on To and Cc who is not one of our addresses."""
    assert intake.sender is not None
    people = {intake.sender.address: role}
    for mailbox in (*intake.parsed.to, *intake.parsed.cc):
        if services.addresses.resolve(mailbox.address) is None:
            people.setdefault(mailbox.address, ParticipantRole.CC)
    await add_participants(services.session, ticket, people, intake.now)


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
    await _participants(services, intake, ticket, ParticipantRole.CUSTOMER)
    message = await _store(services, intake, ticket, actor, customer.id)
    intake.ticket = ticket
    intake.events.append(TicketCreated(ticket_id=ticket.id, message_id=message.id))
    intake.decide("apply", f"opened ticket {ticket.id} for {customer.email}")


async def _customer_reply(
    services: Services, intake: Intake, ticket: Ticket, sender: Mailbox
) -> None:
    customer = await ops.customer_for(services.session, sender, intake.now)
    await _participants(services, intake, ticket, ParticipantRole.CC)
    message = await _store(services, intake, ticket, ops.Actor.customer(customer), customer.id)
    intake.events.append(CustomerReplied(ticket_id=ticket.id, message_id=message.id))
    intake.decide("apply", f"customer reply added to ticket {ticket.id}")


async def _agent_reply(services: Services, intake: Intake, ticket: Ticket, agent: Agent) -> None:
    """A public answer: stored, then sent to the customer from the type's address."""
    actor = ops.Actor.agent(agent)
    await add_participants(
        services.session, ticket, {agent.email: ParticipantRole.AGENT}, intake.now
    )
    message = await _store(services, intake, ticket, actor, None)
    customer = ticket.customer
    reply = TemplateMail(
        template="customer/agent_reply",
        to=Recipient(ops.mailbox_of(customer), Role.CUSTOMER, customer.id),
        purpose="agent_reply",
        actor=actor,
        message=message,
        answering_id=await _last_customer_message_id(services, ticket),
        sender_name=agent.name,
        auto_submitted=None,
        attachments=tuple(await attachments_of(services.session, message)),
    )
    await services.mailer.send(services.session, ticket, reply, intake.now)
    intake.events.append(
        AgentReplied(ticket_id=ticket.id, message_id=message.id, agent_id=agent.id)
    )
    intake.decide("apply", f"agent reply added to ticket {ticket.id}, sent to {customer.email}")


def _record_refusals(services: Services, intake: Intake) -> None:
    """Say on the tickets involved why a sender did not act as an agent or join a ticket."""
    ticket, session, now = intake.ticket, services.session, intake.now
    assert ticket is not None
    assert intake.sender is not None
    actor = ops.Actor.system("identity")
    if intake.impersonation:
        ops.record(
            session,
            ticket,
            actor,
            "agent_identity_refused",
            now,
            reason=intake.impersonation,
            message_id=intake.parsed.message_id,
        )
    refused = intake.refused_ticket
    if refused is not None and refused.id != ticket.id:
        who = intake.sender.address
        ops.record(
            session,
            refused,
            actor,
            "join_refused",
            now,
            sender=who,
            opened=ticket.id,
            reason=f"{who} takes no part in this ticket",
        )
        ops.record(
            session,
            ticket,
            actor,
            "opened_instead_of_joining",
            now,
            named=refused.id,
            reason=f"{who} takes no part in ticket {refused.id}",
        )


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
