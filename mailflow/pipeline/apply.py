"""Turn the decided message into ticket changes: open a ticket, or add to one."""

from __future__ import annotations

from sqlalchemy import select

from mailflow.db.models import (
    ActorKind,
    Agent,
    Customer,
    Direction,
    InboundState,
    Message,
    Participant,
    ParticipantRole,
    Ticket,
)
from mailflow.db.record import Approval
from mailflow.mail.addresses import Mailbox
from mailflow.mail.automatic import AutoKind
from mailflow.outbox.mailer import Recipient, TemplateMail
from mailflow.people.languages import learn_language
from mailflow.people.usergroups import settle_usergroup
from mailflow.pipeline.intake import Disposition, Intake, Services
from mailflow.tickets import approvals, ops
from mailflow.tickets.attachment_files import AttachmentFiles
from mailflow.tickets.events import (
    AgentReplied,
    CustomerReplied,
    NoteAdded,
    TicketCreated,
    UnverifiedMessage,
)
from mailflow.tickets.messages import add_incoming, add_participants, attachments_of
from mailflow.tickets.numbers import clean_subject
from mailflow.tokens import Role


async def apply(services: Services, intake: Intake) -> Disposition:
    sender = intake.sender
    assert sender is not None
    if _stored_only(intake):
        return await _store_only(services, intake)
    if intake.ticket is None:
        await _open(services, intake, sender)
    elif intake.approval is not None:
        return await _approver_reply(services, intake, intake.ticket, intake.approval)
    elif intake.unverified is not None:
        await _unverified_note(services, intake, intake.ticket, intake.unverified)
    elif intake.agent is not None:
        await _agent_reply(services, intake, intake.ticket, intake.agent)
    else:
        await _customer_reply(services, intake, intake.ticket, sender)
    _record_refusals(services, intake)
    return Disposition.CONTINUE


def _stored_only(intake: Intake) -> bool:
    """An auto-reply acts on nothing; nor does anything automatic from an agent or an
    approver: a machine's answer is never relayed to a customer, nor decides."""
    automatic = intake.automatic
    if automatic is None:
        return False
    return automatic.kind is AutoKind.AUTO_REPLY or bool(intake.agent or intake.approval)


async def _store(
    services: Services,
    intake: Intake,
    ticket: Ticket,
    actor: ops.Actor,
    customer_id: int | None,
    *,
    public: bool = True,
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
        public=public,
        automatic=intake.automatic.kind.value if intake.automatic else None,
        max_attachment_size=services.config.hygiene.max_attachment_size,
        text=intake.body,
    )
    return intake.message


async def _store_only(services: Services, intake: Intake) -> Disposition:
    """An out-of-office or read receipt: kept on its ticket, but it changes and sends nothing."""
    ticket = intake.ticket
    if ticket is None:
        intake.decide("apply", "automatic reply to no ticket of ours; stored only")
        return intake.finish(InboundState.STORED_ONLY, "automatic reply, no ticket")
    actor = ops.Actor.agent(intake.agent) if intake.agent else ops.Actor.system("automatic")
    await _store(
        services, intake, ticket, actor, None, public=not (intake.agent or intake.approval)
    )
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


def _asks_for_privacy(services: Services, intake: Intake) -> bool:
    """The customer's marker: a subject tag such as [private], or a header set to yes."""
    people = services.config.people
    marker = people.private_subject_marker.lower()
    header = (intake.parsed.header(people.private_header) or "").strip().lower()
    return (bool(marker) and marker in intake.parsed.subject.lower()) or header in ("yes", "1")


async def _open(services: Services, intake: Intake, sender: Mailbox) -> None:
    assert intake.route is not None
    session = services.session
    customer = await ops.customer_for(session, sender, intake.now)
    actor = ops.Actor.customer(customer)
    private = _asks_for_privacy(services, intake)
    subject = intake.parsed.subject
    if private:
        subject = subject.replace(services.config.people.private_subject_marker, "")
    ticket = await ops.open_ticket(
        session,
        ticket_type=intake.route.ticket_type,
        customer=customer,
        subject=clean_subject(subject) or "(no subject)",
        actor=actor,
        now=intake.now,
    )
    undecided = await settle_usergroup(session, ticket, customer, intake.route.tag, intake.now)
    if private:
        ops.make_private(ticket, actor=actor, now=intake.now, session=session)
    await _participants(services, intake, ticket, ParticipantRole.CUSTOMER)
    message = await _store(services, intake, ticket, actor, customer.id)
    await learn_language(session, customer, ticket, f"{subject}\n{message.text}", intake.now)
    intake.ticket = ticket
    intake.events.append(TicketCreated(ticket.id, message.id, usergroups_to_choose=undecided))
    where = f" in usergroup {ticket.usergroup.name}" if ticket.usergroup else ""
    where += f", no usergroup: {' or '.join(undecided)}, none the default" if undecided else ""
    intake.decide("apply", f"opened ticket {ticket.id} for {customer.email}{where}")


async def _unverified_note(services: Services, intake: Intake, ticket: Ticket, reason: str) -> None:
    """A stranger's mail, or one claiming an address it cannot prove: a note for the agents,
    flagged. It moves no status, joins no Cc and fires only `unverified_message` rules."""
    assert intake.sender is not None
    address = intake.sender.address
    message = await _store(
        services, intake, ticket, ops.Actor.unverified(address), None, public=False
    )
    ops.record(
        services.session,
        ticket,
        ops.Actor.system("identity"),
        "unverified_sender",
        intake.now,
        sender=address,
        reason=reason,
        message=message.id,
    )
    intake.events.append(UnverifiedMessage(ticket.id, message.id, reason))
    intake.decide("apply", f"kept on ticket {ticket.id} as a note from an unverified sender")


async def _approver_reply(
    services: Services, intake: Intake, ticket: Ticket, approval: Approval
) -> Disposition:
    """The approver's answer goes on the ticket for the agents, never to the customer. One
    that decided nothing (a question, or too late) is told to whoever asked."""
    actor = ops.Actor.approver(approval.approver)
    message = await _store(services, intake, ticket, actor, None, public=False)
    if intake.undecided is None:
        intake.decide("apply", f"the approver's answer kept on ticket {ticket.id}")
        return intake.finish(InboundState.STORED_ONLY, f"approval {approval.state.value} by email")
    session, mailer = services.session, services.mailer
    await approvals.keep_reply(session, mailer, approval, message, intake.undecided, intake.now)
    intake.decide("apply", f"the approver's answer kept on ticket {ticket.id}; requester told")
    return intake.finish(InboundState.STORED_ONLY, f"approval reply: {intake.undecided}")


async def _customer_reply(
    services: Services, intake: Intake, ticket: Ticket, sender: Mailbox
) -> None:
    """A customer's answer, or a supervisor's; a supervisor's bare commands are no answer."""
    customer = await ops.customer_for(services.session, sender, intake.now)
    actor = ops.Actor.supervisor(customer) if intake.supervisor else ops.Actor.customer(customer)
    if _asks_for_privacy(services, intake) and customer.id == ticket.customer_id:
        ops.make_private(ticket, actor=actor, now=intake.now, session=services.session)
    await _participants(services, intake, ticket, ParticipantRole.CC)
    message = await _store(services, intake, ticket, actor, customer.id)
    if intake.commands and not intake.body:
        intake.decide("apply", f"supervisor's commands for ticket {ticket.id}")
        return
    ticket.last_customer_at = intake.now  # the clock of "no agent reply for N" rules
    intake.events.append(CustomerReplied(ticket_id=ticket.id, message_id=message.id))
    intake.decide("apply", f"customer reply added to ticket {ticket.id}")


async def _agent_reply(services: Services, intake: Intake, ticket: Ticket, agent: Agent) -> None:
    """A public answer goes to the customer (and Cc) from the type's address; a #note stays
    between agents; commands alone change the ticket and send nothing."""
    session, now = services.session, intake.now
    actor = ops.Actor.agent(agent)
    people = {agent.email: ParticipantRole.AGENT} | dict.fromkeys(intake.cc, ParticipantRole.CC)
    await add_participants(session, ticket, people, now)  # #cc holds for later answers too
    if "private" in intake.command_names:
        ops.make_private(ticket, actor=actor, now=now, session=session)
    note = "note" in intake.command_names
    # A resolution is told its own way, and the text under #approval is the approver's.
    internal = note or bool({"resolution", "approval"} & intake.command_names)
    message = await _store(services, intake, ticket, actor, None, public=not internal)
    if internal and not note:
        intake.decide("apply", f"resolution or approval request for ticket {ticket.id}")
        return
    if note:  # shared after the commands: a note handing the ticket on reaches its new hands
        intake.after_commands.append(
            NoteAdded(ticket_id=ticket.id, message_id=message.id, agent_id=agent.id)
        )
        intake.decide("apply", f"internal note added to ticket {ticket.id}")
        return
    if intake.commands and not intake.body:
        intake.decide("apply", f"commands only, for ticket {ticket.id}; nothing sent")
        return
    ticket.last_agent_at = now  # the clock of "no customer reply for N" rules
    await _relay(services, intake, ticket, agent, message)
    intake.events.append(
        AgentReplied(ticket_id=ticket.id, message_id=message.id, agent_id=agent.id)
    )


async def _relay(
    services: Services, intake: Intake, ticket: Ticket, agent: Agent, message: Message
) -> None:
    session = services.session
    customer = ticket.customer
    copied = await _copied(services, ticket, customer)
    reply = TemplateMail(
        template="customer/agent_reply",
        to=Recipient(ops.mailbox_of(customer), Role.CUSTOMER, customer.id),
        cc=tuple(Mailbox("", address) for address in copied),
        purpose="agent_reply",
        actor=ops.Actor.agent(agent),
        message=message,
        answering_id=await _last_customer_message_id(services, ticket),
        sender_name=agent.name,
        auto_submitted=None,
        attachments=tuple(
            await attachments_of(session, message, AttachmentFiles.from_config(services.config))
        ),
    )
    await services.mailer.send(session, ticket, reply, intake.now)
    also = f" (Cc {', '.join(copied)})" if copied else ""
    intake.decide(
        "apply", f"agent reply added to ticket {ticket.id}, sent to {customer.email}{also}"
    )


async def _copied(services: Services, ticket: Ticket, customer: Customer) -> list[str]:
    """Everyone in Cc on the ticket, who is neither the customer nor an agent."""
    agents = select(Agent.email)
    rows = await services.session.scalars(
        select(Participant.address)
        .where(
            Participant.ticket_id == ticket.id,
            Participant.role == ParticipantRole.CC,
            Participant.address != customer.email,
            Participant.address.not_in(agents),
        )
        .order_by(Participant.id)
    )
    return list(rows.all())


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
            reason=intake.refused_because,
        )
        ops.record(
            session,
            ticket,
            actor,
            "opened_instead_of_joining",
            now,
            named=refused.id,
            reason=intake.refused_because,
        )


async def _last_customer_message_id(services: Services, ticket: Ticket) -> str | None:
    return await services.session.scalar(
        select(Message.message_id)
        .where(
            Message.ticket_id == ticket.id,
            Message.direction == Direction.IN,
            Message.author_kind.in_([ActorKind.CUSTOMER, ActorKind.SUPERVISOR]),
            Message.public.is_(True),
            Message.message_id.is_not(None),
        )
        .order_by(Message.id.desc())
        .limit(1)
    )
