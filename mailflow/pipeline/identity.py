"""Who sent the message. Only a signed reply address (or our own MTA's authentication
verdict) makes a sender an agent; a From that merely names an agent is a customer."""

from __future__ import annotations

import structlog
from sqlalchemy import select

from mailflow.db.models import Agent, Customer, Ticket
from mailflow.db.record import Approval
from mailflow.mail.addresses import parse_mailbox
from mailflow.mail.authres import aligned_pass
from mailflow.people.usergroups import is_supervisor
from mailflow.pipeline.intake import Disposition, Intake, Quarantine, Services
from mailflow.tokens import Role

log = structlog.get_logger(__name__)


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
    token = intake.token
    if token is not None and token.role is Role.AGENT:
        agent = await services.session.get(Agent, token.person_id)
        if agent is not None and agent.active and agent.email == address:
            return _agent(intake, agent, "signed reply address")
        owner = agent.email if agent else f"agent {token.person_id}"
        _impersonation(intake, f"{address} wrote to the signed reply address of {owner}")
    if token is not None and token.role is Role.SUPERVISOR:
        await _supervisor(services, intake, token.ticket_id, token.person_id)
    if token is not None and token.role is Role.APPROVER:
        approval = await services.session.get(Approval, token.person_id)
        if approval is not None and approval.ticket_id == token.ticket_id:
            if approval.approver == address:
                intake.approval = approval
                intake.decide("identity", f"approver {address} of approval {approval.id}")
            else:
                intake.decide("identity", f"approval {approval.id}'s address, used by {address}")
    agent = await services.session.scalar(select(Agent).where(Agent.email == address, Agent.active))
    if agent is not None:
        headers = intake.parsed.headers.get("authentication-results", ())
        trusted = services.config.identity.trusted_authserv_ids
        verdict = aligned_pass(headers, trusted, address)
        if verdict:
            return _agent(intake, agent, verdict)
        if intake.impersonation is None:
            _impersonation(
                intake,
                f"From names agent {address} without the signed reply "
                "address or an authentication result we trust",
            )
    intake.decide("identity", f"customer {address}")
    return Disposition.CONTINUE


async def _supervisor(services: Services, intake: Intake, ticket_id: int, person_id: int) -> None:
    """A supervisor acts on their usergroup's tickets from their own signed address; a
    private ticket is none of their business."""
    assert intake.sender is not None
    session = services.session
    customer = await session.get(Customer, person_id)
    ticket = await session.get(Ticket, ticket_id)
    if customer is None or ticket is None or customer.email != intake.sender.address:
        intake.decide("identity", "a supervisor's signed address, used by someone else")
        return
    if ticket.private or ticket.usergroup_id is None:
        intake.decide("identity", f"{customer.email} supervises nothing on this ticket")
        return
    if await is_supervisor(session, customer.id, ticket.usergroup_id):
        intake.supervisor = customer
        intake.decide("identity", f"supervisor {customer.email} of the ticket's usergroup")


def _agent(intake: Intake, agent: Agent, how: str) -> Disposition:
    intake.agent = agent
    intake.decide("identity", f"agent {agent.email} ({how})")
    return Disposition.CONTINUE


def _impersonation(intake: Intake, what: str) -> None:
    intake.impersonation = what
    intake.decide("identity", f"not acting as an agent: {what}")
    log.warning("identity.not_an_agent", reason=what, message_id=intake.parsed.message_id)
