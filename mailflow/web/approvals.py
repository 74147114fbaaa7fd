"""The approval link. GET shows the request and decides nothing (mail scanners and link
previews fetch links); the decision is a POST from that page, carrying a one-time nonce
issued with it, and not sooner than a person could have read it."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlsplit

from aiohttp import web

from mailflow.app import App
from mailflow.db.models import Ticket
from mailflow.db.record import Approval, ApprovalState
from mailflow.tickets import approvals
from mailflow.web.pages import page
from mailflow.web.server_key import APP_KEY


def _app(request: web.Request) -> App:
    return request.app[APP_KEY]


async def show(request: web.Request) -> web.Response:
    app = _app(request)
    now = app.clock.now()
    async with app.db.transaction() as session:
        approval = await approvals.find(session, request.match_info["token"])
        if approval is None:
            raise web.HTTPNotFound()
        ticket = await session.get(Ticket, approval.ticket_id)
        if not approvals.open_to_decision(approval, now):
            return _closed(app, approval, now)
        nonce = await approvals.issue_nonce(session, approval, now)
        return page(
            app,
            "approval",
            approval=approval,
            ticket=ticket,
            nonce=nonce,
            choice=request.query.get("choice", ""),
            pending=_pending(approval),
        )


async def submit(request: web.Request) -> web.Response:
    app = _app(request)
    now = app.clock.now()
    form = await request.post()
    choice, nonce = str(form.get("decision", "")), str(form.get("nonce", ""))
    async with app.db.transaction() as session:
        approval = await approvals.find(session, request.match_info["token"])
        if approval is None:
            raise web.HTTPNotFound()
        ticket = await session.get(Ticket, approval.ticket_id)
        if not approvals.open_to_decision(approval, now):
            return _closed(app, approval, now)
        problem = (
            _foreign_origin(app, request)
            or ("choose Approve or Reject" if choice not in ("approve", "reject") else None)
            or await approvals.spend_nonce(session, app.config, approval, nonce, now)
        )
        if problem:
            fresh = await approvals.issue_nonce(session, approval, now)
            return page(
                app,
                "approval",
                status=400,
                approval=approval,
                ticket=ticket,
                nonce=fresh,
                choice=choice,
                problem=problem,
                pending=_pending(approval),
            )
        decision = approvals.Decision(
            approve=choice == "approve",
            via="web",
            comment=str(form.get("comment", ""))[:5000],
            client=request.remote or "",
            user_agent=request.headers.get("User-Agent", ""),
        )
        events = await approvals.decide(session, app.mailer, approval, decision, now)
        await app.engine.run(session, events, now)
        result = page(
            app,
            "decided",
            approval=approval,
            ticket=ticket,
            thanks=True,
            changeable=approvals.open_to_decision(approval, now),
        )
    app.wake_sender()
    return result


def _pending(approval: Approval) -> bool:
    return approval.state is ApprovalState.PENDING


def _closed(app: App, approval: Approval, now: datetime) -> web.Response:
    if approval.state in (ApprovalState.PENDING, ApprovalState.EXPIRED):
        return page(app, "expired", status=410, approval=approval)
    return page(app, "decided", approval=approval, thanks=False, changeable=False)


def _foreign_origin(app: App, request: web.Request) -> str | None:
    """A POST sent from another site's page (CSRF): its Origin is not ours."""
    origin = request.headers.get("Origin")
    if origin is None:  # not every client sends one; the nonce still guards the form
        return None
    if _site(origin) != _site(app.config.web.base_url):
        return "this form was sent from another site"
    return None


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
