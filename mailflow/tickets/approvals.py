"""Approvals: asked for by an agent (#approval) or a rule, decided by the approver through a
single-use link or a reply, expired by the sweep. Every outcome is in the ticket's history,
tells whoever asked, and raises the approval_decided event for the rules."""

from __future__ import annotations

import enum
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mailflow.config import Config
from mailflow.db.models import (
    Agent,
    History,
    Message,
    OutboxMessage,
    OutboxState,
    Ticket,
)
from mailflow.db.record import Approval, ApprovalNonce, ApprovalState
from mailflow.mail.addresses import Mailbox
from mailflow.outbox.mailer import Mailer, Recipient, TemplateMail
from mailflow.tickets import ops
from mailflow.tickets.events import ApprovalDecided, Event
from mailflow.tokens import Role

# The outbox purpose of the mail that tells the requester the outcome.
NOTICE_TEMPLATE = "agent/approval_decided"
NOTICE_PURPOSE = NOTICE_TEMPLATE.rpartition("/")[2]


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """256 bits, URL-safe: unguessable, and only its hash is stored."""
    return secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class Requester:
    label: str
    agent: Agent | None = None


def link(config: Config, token: str) -> str:
    return f"{config.web.base_url.rstrip('/')}/approval/{token}"


async def request(
    session: AsyncSession,
    mailer: Mailer,
    ticket: Ticket,
    *,
    approver: str,
    reason: str,
    requester: Requester,
    actor: ops.Actor,
    now: datetime,
    details: str = "",
) -> Approval:
    """Record the request and mail the approver their link (Accept and Reject), with the
    reason and what the requester wrote to explain it."""
    token = new_token()
    config = mailer.config
    approval = Approval(
        ticket_id=ticket.id,
        approver=approver.lower(),
        reason=reason,
        details=details,
        requested_by=requester.label,
        requested_by_agent_id=requester.agent.id if requester.agent else None,
        token_hash=digest(token),
        created_at=now,
        expires_at=now + config.approvals.expire_after,
        state=ApprovalState.PENDING,
    )
    session.add(approval)
    await session.flush()
    ops.record(
        session,
        ticket,
        actor,
        "approval_requested",
        now,
        approval=approval.id,
        approver=approval.approver,
        reason=reason,
    )
    url = link(config, token)
    mail = TemplateMail(
        template="approver/request",
        to=Recipient(Mailbox("", approval.approver), Role.APPROVER, approval.id),
        purpose="approval_request",
        actor=actor,
        context={
            "approval": approval,
            "approve_url": f"{url}?choice=approve",
            "reject_url": f"{url}?choice=reject",
            "requester": requester.label,
        },
    )
    await mailer.send(session, ticket, mail, now)
    return approval


async def find(session: AsyncSession, token: str) -> Approval | None:
    return await session.scalar(select(Approval).where(Approval.token_hash == digest(token)))


def open_to_decision(approval: Approval, now: datetime) -> bool:
    """Pending and not expired, or decided a moment ago and still within the change window."""
    if approval.state is ApprovalState.PENDING:
        return now < approval.expires_at
    return approval.changeable_until is not None and now < approval.changeable_until


class Refusal(enum.StrEnum):
    """Why a decision form was not taken; the page shows it again and says so in words."""

    FOREIGN_SITE = "foreign_site"
    NO_CHOICE = "no_choice"
    NOT_THIS_PAGE = "not_this_page"
    OUT_OF_DATE = "out_of_date"
    PAGE_TOO_OLD = "page_too_old"
    TOO_QUICK = "too_quick"


async def issue_nonce(session: AsyncSession, approval: Approval, now: datetime) -> str:
    """The nonce of a new view of the page; it replaces those of earlier views, so a form
    left open in an old tab or held by a scanner decides nothing."""
    await _spend(session, ApprovalNonce.approval_id == approval.id)
    nonce = secrets.token_urlsafe(24)
    session.add(ApprovalNonce(approval_id=approval.id, nonce_hash=digest(nonce), issued_at=now))
    return nonce


async def spend_nonce(
    session: AsyncSession, config: Config, approval: Approval, nonce: str, now: datetime
) -> Refusal | None:
    """Spend the page's nonce, whatever follows; None when it may decide, else why not."""
    row = await session.scalar(
        select(ApprovalNonce).where(
            ApprovalNonce.nonce_hash == digest(nonce), ApprovalNonce.approval_id == approval.id
        )
    )
    if row is None:
        return Refusal.NOT_THIS_PAGE
    # One conditional UPDATE: of a double click's two POSTs, running at once in two
    # transactions, only one finds the nonce unused (PostgreSQL re-checks after the lock).
    if row.used or not await _spend(session, ApprovalNonce.id == row.id):
        return Refusal.OUT_OF_DATE
    age = now - row.issued_at
    if age >= config.approvals.page_expire_after:
        return Refusal.PAGE_TOO_OLD
    if age < config.approvals.min_decision_delay:
        return Refusal.TOO_QUICK
    return None


async def _spend(session: AsyncSession, which: ColumnElement[bool]) -> int:
    """Mark the unused nonces `which` selects as used; how many there were."""
    spent = await session.execute(
        update(ApprovalNonce)
        .where(which, ApprovalNonce.used.is_(False))
        .values(used=True)
        .execution_options(synchronize_session=False)
    )
    return int(spent.rowcount)  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Decision:
    approve: bool
    via: str  # "web" or "email"
    comment: str = ""
    client: str = ""
    user_agent: str = ""


async def decide(
    session: AsyncSession,
    mailer: Mailer,
    approval: Approval,
    decision: Decision,
    now: datetime,
) -> list[Event]:
    ticket = await session.get(Ticket, approval.ticket_id)
    assert ticket is not None
    changed = approval.state is not ApprovalState.PENDING
    state = ApprovalState.APPROVED if decision.approve else ApprovalState.REJECTED
    if changed and state is approval.state:  # the same answer again: nobody is told twice
        if decision.comment and decision.comment != approval.comment:
            approval.comment = decision.comment
            ops.record(
                session,
                ticket,
                ops.Actor.approver(approval.approver),
                "approval_commented",
                now,
                approval=approval.id,
                comment=decision.comment,
            )
        return []
    approval.state = state
    approval.decided_at = now
    approval.decided_via = decision.via
    approval.decided_from = decision.client[:100]
    approval.decided_agent = decision.user_agent[:500]
    approval.comment = decision.comment
    if not changed:
        approval.changeable_until = now + mailer.config.approvals.change_window
    actor = ops.Actor.approver(approval.approver)
    ops.record(
        session,
        ticket,
        actor,
        "approval_changed" if changed else "approval_decided",
        now,
        approval=approval.id,
        decision=approval.state.value,
        via=decision.via,
        client=decision.client,
        user_agent=decision.user_agent[:200],
        comment=decision.comment,
    )
    await _tell_requester(session, mailer, ticket, approval, now)
    return [ApprovalDecided(ticket.id, approval.id, approval.state.value)]


async def expire_due(session: AsyncSession, mailer: Mailer, now: datetime) -> list[Event]:
    """Pending approvals past their time: expired, and whoever asked is told."""
    approvals = (
        await session.scalars(
            select(Approval).where(
                Approval.state == ApprovalState.PENDING, Approval.expires_at <= now
            )
        )
    ).all()
    events: list[Event] = []
    for approval in approvals:
        approval.state = ApprovalState.EXPIRED
        ticket = await session.get(Ticket, approval.ticket_id)
        assert ticket is not None
        ops.record(
            session,
            ticket,
            ops.Actor.system("approvals"),
            "approval_expired",
            now,
            approval=approval.id,
            approver=approval.approver,
        )
        await _tell_requester(session, mailer, ticket, approval, now)
        events.append(ApprovalDecided(ticket.id, approval.id, approval.state.value))
    return events


async def keep_reply(
    session: AsyncSession,
    mailer: Mailer,
    approval: Approval,
    message: Message,
    why: str,
    now: datetime,
) -> None:
    """The approver answered by mail but decided nothing (a question, or after the decision):
    the answer is on the ticket already; say so in the history and tell whoever asked."""
    ticket = await session.get(Ticket, approval.ticket_id)
    assert ticket is not None
    ops.record(
        session,
        ticket,
        ops.Actor.approver(approval.approver),
        "approval_answered",
        now,
        approval=approval.id,
        message=message.id,
        reason=why,
    )
    await _tell_requester(
        session, mailer, ticket, approval, now, "agent/approval_reply", message, why=why
    )


async def _requester(session: AsyncSession, ticket: Ticket, approval: Approval) -> Agent | None:
    """Who is told of the outcome: the agent who asked; when a rule asked, the ticket's
    assignee; no one when that agent is inactive."""
    agent = (
        await session.get(Agent, approval.requested_by_agent_id)
        if approval.requested_by_agent_id
        else ticket.assignee
    )
    return agent if agent is not None and agent.active else None


async def _tell_requester(
    session: AsyncSession,
    mailer: Mailer,
    ticket: Ticket,
    approval: Approval,
    now: datetime,
    template: str = NOTICE_TEMPLATE,
    message: Message | None = None,
    **context: str,
) -> None:
    """The requester (see `_requester`) is told of the outcome, or of the approver's answer."""
    agent = await _requester(session, ticket, approval)
    if agent is None:
        return
    mail = TemplateMail(
        template=template,
        to=Recipient(ops.mailbox_of(agent), Role.AGENT, agent.id),
        purpose=template.rpartition("/")[2],
        actor=ops.Actor.system("approvals"),
        message=message,
        answering_id=message.message_id if message else None,
        context={"approval": approval, **context},
    )
    await mailer.send(session, ticket, mail, now)


@dataclass(frozen=True, slots=True)
class ExpiryNotice:
    """Who is told by mail that a request expired (None: no one), and when that mail went
    out (None: not yet), so that the expired page says only what is so."""

    to: Agent | None
    sent_at: datetime | None = None


async def expiry_notice(session: AsyncSession, approval: Approval, ticket: Ticket) -> ExpiryNotice:
    agent = await _requester(session, ticket, approval)
    if agent is None or approval.state is not ApprovalState.EXPIRED:
        return ExpiryNotice(agent)
    # The sweep that expired it queued the notice at the moment it wrote the history.
    expired = await session.execute(
        select(History.at, History.details).where(
            History.ticket_id == ticket.id, History.action == "approval_expired"
        )
    )
    moments = [at for at, details in expired if details.get("approval") == approval.id]
    sent = await session.execute(
        select(OutboxMessage.sent_at, OutboxMessage.rcpt_tos).where(
            OutboxMessage.ticket_id == ticket.id,
            OutboxMessage.purpose == NOTICE_PURPOSE,
            OutboxMessage.created_at.in_(moments),
            OutboxMessage.state == OutboxState.SENT,
        )
    )
    return ExpiryNotice(agent, next((at for at, to in sent if agent.email in to), None))
