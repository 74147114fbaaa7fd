"""Who sent the message. Only a signed reply address (or our own MTA's authentication
verdict) makes a sender an agent. A From that merely names an agent, a signed address used
by someone it was not given to, or a participant's address with nothing to prove it, is an
unverified sender: their mail is kept as a note for the agents and changes nothing."""

from __future__ import annotations

import structlog
from sqlalchemy import select

from mailflow.db.models import Agent, Customer, Ticket
from mailflow.db.record import Approval
from mailflow.mail.addresses import parse_mailbox
from mailflow.mail.authres import aligned_pass
from mailflow.mail.automatic import AutoKind
from mailflow.people.usergroups import is_supervisor
from mailflow.pipeline.conversation import is_participant
from mailflow.pipeline.intake import Disposition, Intake, Joined, Quarantine, Services
from mailflow.tokens import ReplyToken, Role

log = structlog.get_logger(__name__)

# How a message may find its ticket without showing it was ever sent our mail.
UNPROVEN = (Joined.PLUS_ADDRESS, Joined.SUBJECT_TAG)


async def sender(services: Services, intake: Intake) -> Disposition:
    """From, else the envelope sender; a message with neither cannot be answered."""
    mailbox = intake.parsed.sender or parse_mailbox(intake.envelope.mail_from)
    if mailbox is None:
        raise Quarantine("no sender address in From or the envelope")
    if intake.parsed.sender is None:
        intake.decide("sender", f"no usable From; using envelope sender {mailbox.address}")
    intake.sender = mailbox
    return Disposition.CONTINUE


async def identify(services: Services, intake: Intake) -> Disposition:
    assert intake.sender is not None
    assert intake.route is not None
    address = intake.sender.address
    intake.token = services.signer.verify_reply_tag(intake.route.tag)
    if intake.token is not None and await _signed(services, intake, intake.token):
        return Disposition.CONTINUE
    agent = await services.session.scalar(select(Agent).where(Agent.email == address, Agent.active))
    if agent is not None:
        verdict = _authenticated(services, intake)
        if verdict:
            return _agent(intake, agent, verdict)
        if intake.impersonation is None:
            _impersonation(
                intake,
                f"From names agent {address} without the signed reply "
                "address or an authentication result we trust",
            )
    if intake.unverified is None:
        intake.decide("identity", f"customer {address}")
    return Disposition.CONTINUE


async def verify(services: Services, intake: Intake) -> Disposition:
    """Mail joining a ticket speaks for its sender only if they take part in the ticket and
    showed it: a signed address of theirs, References to its mail, or our MTA's verdict.
    A subject tag or a bare plus-address anyone can type."""
    ticket, sender = intake.ticket, intake.sender
    assert sender is not None
    if ticket is None or intake.unverified or intake.agent or intake.approval or intake.supervisor:
        return Disposition.CONTINUE
    if intake.automatic is not None and intake.automatic.kind is AutoKind.AUTO_REPLY:
        return Disposition.CONTINUE  # kept, and nothing else, whoever sent it
    if not await is_participant(services, ticket, sender.address):
        _unverified(intake, f"{sender.address} takes no part in ticket {ticket.id}")
    elif intake.joined_by in UNPROVEN and not _authenticated(services, intake):
        _unverified(
            intake,
            f"{sender.address} named ticket {ticket.id} by {intake.joined_by} only, "
            "which anyone can write",
        )
    return Disposition.CONTINUE


async def _signed(services: Services, intake: Intake, token: ReplyToken) -> bool:
    """What the signed address says of the sender; True when that settles who they are."""
    assert intake.sender is not None
    address = intake.sender.address
    session = services.session
    if token.role is Role.AGENT:
        agent = await session.get(Agent, token.person_id)
        if agent is not None and agent.active and agent.email == address:
            _agent(intake, agent, "signed reply address")
            return True
        owner = agent.email if agent else f"agent {token.person_id}"
        _impersonation(intake, f"{address} wrote to the signed reply address of {owner}")
    elif token.role is Role.SUPERVISOR:
        await _supervisor(services, intake, token.ticket_id, token.person_id)
    elif token.role is Role.APPROVER:
        approval = await session.get(Approval, token.person_id)
        if approval is not None and approval.ticket_id == token.ticket_id:
            if approval.approver == address:
                intake.approval = approval
                intake.decide("identity", f"approver {address} of approval {approval.id}")
                return True
            _unverified(intake, f"{address} wrote to the address of approval {approval.id}")
    else:
        await _customer(services, intake, token)
    return False


async def _customer(services: Services, intake: Intake, token: ReplyToken) -> None:
    """A customer's signed address binds the customer, and those in Cc on the ticket, who
    answer the same mail: anyone else is replaying it."""
    assert intake.sender is not None
    address = intake.sender.address
    customer = await services.session.get(Customer, token.person_id)
    if customer is not None and customer.email == address:
        return
    ticket = await services.session.get(Ticket, token.ticket_id)
    if ticket is not None and await is_participant(services, ticket, address):
        return
    owner = customer.email if customer else f"customer {token.person_id}"
    _unverified(intake, f"{address} wrote to the signed reply address of {owner}")


async def _supervisor(services: Services, intake: Intake, ticket_id: int, person_id: int) -> None:
    """A supervisor acts on their usergroup's tickets from their own signed address; a
    private ticket is none of their business."""
    assert intake.sender is not None
    session = services.session
    customer = await session.get(Customer, person_id)
    ticket = await session.get(Ticket, ticket_id)
    if customer is None or ticket is None or customer.email != intake.sender.address:
        owner = customer.email if customer else f"supervisor {person_id}"
        _unverified(intake, f"{intake.sender.address} wrote to the signed address of {owner}")
        return
    if ticket.private or ticket.usergroup_id is None:
        intake.decide("identity", f"{customer.email} supervises nothing on this ticket")
        return
    if await is_supervisor(session, customer.id, ticket.usergroup_id):
        intake.supervisor = customer
        intake.decide("identity", f"supervisor {customer.email} of the ticket's usergroup")


def _authenticated(services: Services, intake: Intake) -> str | None:
    """Our own MTA's aligned DKIM or SPF pass for the From, if we trust it."""
    assert intake.sender is not None
    headers = intake.parsed.headers.get("authentication-results", ())
    trusted = services.config.identity.trusted_authserv_ids
    return aligned_pass(headers, trusted, intake.sender.address)


def _agent(intake: Intake, agent: Agent, how: str) -> Disposition:
    intake.agent = agent
    intake.decide("identity", f"agent {agent.email} ({how})")
    return Disposition.CONTINUE


def _impersonation(intake: Intake, what: str) -> None:
    intake.impersonation = intake.unverified = what
    intake.decide("identity", f"not acting as an agent: {what}")
    log.warning("identity.not_an_agent", reason=what, message_id=intake.parsed.message_id)


def _unverified(intake: Intake, why: str) -> None:
    intake.unverified = why
    intake.decide("identity", f"unverified sender: {why}")
    log.warning("identity.unverified", reason=why, message_id=intake.parsed.message_id)
