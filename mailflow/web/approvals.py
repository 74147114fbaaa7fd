"""The approval link. GET shows the request and decides nothing (mail scanners and link
previews fetch links); the decision is a POST from that page, carrying the one-time nonce
issued with it, and not sooner than a person could have read it. A refused POST shows the
page again, the approver's choice and comment kept, and says why."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlsplit

from aiohttp import hdrs, web
from sqlalchemy.ext.asyncio import AsyncSession

from mailflow.app import App
from mailflow.db.models import Ticket
from mailflow.db.record import Approval, ApprovalState
from mailflow.i18n.choice import Speech
from mailflow.tickets import approvals
from mailflow.tickets.approvals import Refusal
from mailflow.web.pages import page, person_page_speech
from mailflow.web.server_key import APP_KEY

CHOICES = ("approve", "reject")
COMMENT_LIMIT = 5000


async def show(request: web.Request) -> web.Response:
    app = request.app[APP_KEY]
    now = app.clock.now()
    async with app.db.transaction() as session:
        approval, ticket = await _found(session, request)
        speech = await person_page_speech(app, session, request, approval.approver, ticket)
        if not approvals.open_to_decision(approval, now):
            return await _closed(app, speech, session, approval, ticket)
        # A HEAD answer has no body to read a nonce from: the page's nonce stays as it is.
        head = request.method == hdrs.METH_HEAD
        nonce = "" if head else await approvals.issue_nonce(session, approval, now)
        choice = request.query.get("choice", "")
        return _form(app, speech, approval, ticket, nonce, choice, approval.comment)


async def submit(request: web.Request) -> web.Response:
    app = request.app[APP_KEY]
    now = app.clock.now()
    form = await request.post()
    choice, nonce = str(form.get("decision", "")), str(form.get("nonce", ""))
    comment = str(form.get("comment", ""))[:COMMENT_LIMIT]
    async with app.db.transaction() as session:
        approval, ticket = await _found(session, request)
        speech = await person_page_speech(app, session, request, approval.approver, ticket)
        if not approvals.open_to_decision(approval, now):
            return await _closed(app, speech, session, approval, ticket, comment)
        # Spent first: every refusal spends it, so a refused POST never decides on replay.
        spent = await approvals.spend_nonce(session, app.config, approval, nonce, now)
        refusal = _foreign_origin(app, request) or _no_choice(choice) or spent
        if refusal:
            await session.refresh(approval)  # a POST running alongside may have decided it
            if refusal is Refusal.OUT_OF_DATE and _decided_so(approval, choice, comment):
                return _thanks(app, speech, approval, ticket, request.path, now)  # a double click
            fresh = await approvals.issue_nonce(session, approval, now)
            return _form(app, speech, approval, ticket, fresh, choice, comment, refusal)
        decision = approvals.Decision(
            approve=choice == "approve",
            via="web",
            comment=comment,
            client=request.remote or "",
            user_agent=request.headers.get("User-Agent", ""),
        )
        events = await approvals.decide(session, app.mailer, approval, decision, now)
        await app.engine.run(session, events, now)
        result = _thanks(app, speech, approval, ticket, request.path, now)
    app.wake_sender()
    return result


def _decided_so(approval: Approval, choice: str, comment: str) -> bool:
    """Already decided just as this form asks: the second POST of a double click, which
    Chromium sends when the clicks are far enough apart, answered as the first was."""
    state = ApprovalState.APPROVED if choice == "approve" else ApprovalState.REJECTED
    return approval.state is state and approval.comment == comment


def _thanks(
    app: App, speech: Speech, approval: Approval, ticket: Ticket, link: str, now: datetime
) -> web.Response:
    changeable = approvals.open_to_decision(approval, now)
    return page(
        app,
        "decided",
        speech,
        approval=approval,
        ticket=ticket,
        thanks=True,
        changeable=changeable,
        link=link,
        lost="",
    )


async def _found(session: AsyncSession, request: web.Request) -> tuple[Approval, Ticket]:
    approval = await approvals.find(session, request.match_info["token"])
    if approval is None:
        raise web.HTTPNotFound()
    ticket = await session.get(Ticket, approval.ticket_id)
    assert ticket is not None
    return approval, ticket


def _form(
    app: App,
    speech: Speech,
    approval: Approval,
    ticket: Ticket,
    nonce: str,
    choice: str,
    comment: str,
    refusal: Refusal | None = None,
) -> web.Response:
    settings = app.config.approvals
    return page(
        app,
        "approval",
        speech,
        status=200 if refusal is None else 400,
        approval=approval,
        ticket=ticket,
        nonce=nonce,
        choice=choice,
        comment=comment,
        refusal=refusal,
        pending=approval.state is ApprovalState.PENDING,
        delay=settings.min_decision_delay,
        page_life=settings.page_expire_after,
    )


async def _closed(
    app: App,
    speech: Speech,
    session: AsyncSession,
    approval: Approval,
    ticket: Ticket,
    comment: str = "",
) -> web.Response:
    """No longer open to a decision: expired, or decided and past the change window."""
    lost = comment if comment != approval.comment else ""
    if approval.state in (ApprovalState.PENDING, ApprovalState.EXPIRED):
        notice = await approvals.expiry_notice(session, approval, ticket)
        return page(
            app,
            "expired",
            speech,
            status=410,
            approval=approval,
            ticket=ticket,
            notice=notice,
            lost=lost,
        )
    return page(
        app,
        "decided",
        speech,
        approval=approval,
        ticket=ticket,
        thanks=False,
        changeable=False,
        lost=lost,
    )


def _no_choice(choice: str) -> Refusal | None:
    return None if choice in CHOICES else Refusal.NO_CHOICE


def _foreign_origin(app: App, request: web.Request) -> Refusal | None:
    """A POST sent from another site's page (CSRF). Our pages' referrer policy makes browsers
    send our origin; "null" (a privacy setting, or a page that hides its origin) and no
    Origin at all leave the nonce as the guard."""
    origin = request.headers.get("Origin", "null")
    if origin == "null" or _site(origin) == _site(app.config.web.base_url):
        return None
    return Refusal.FOREIGN_SITE


def _site(url: str) -> tuple[str, str, int | None]:
    """Scheme, host and port as a browser writes its Origin: the host in lower case, the
    scheme's default port filled in (https://Help.example.com:443 is https://help.example.com)."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:  # a port that is no number: nothing of ours
        return ("", "", None)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or ""), port or {"http": 80, "https": 443}.get(scheme)
