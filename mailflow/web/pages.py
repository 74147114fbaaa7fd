"""HTML pages from templates/web/, escaped by Jinja2's autoescape, in the reader's language:
the one their browser asks for (Accept-Language), else the person's own."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from mailflow.app import App
from mailflow.db.models import Ticket
from mailflow.i18n.choice import Speech, accepted, first_served
from mailflow.people.languages import person_speech


def page(app: App, name: str, speech: Speech, status: int = 200, **context: Any) -> web.Response:
    html = app.renderer.page(
        f"web/{name}.html.j2", {"instance": app.config.instance, **context}, speech
    )
    response = web.Response(text=html, content_type="text/html", status=status)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Language"] = speech.language
    response.headers["Vary"] = "Accept-Language"
    return response


def browser_speech(app: App, request: web.Request) -> Speech:
    """For anyone (the help centre): their browser's language, else the instance's."""
    languages = app.renderer.languages
    wished = accepted(request.headers.get("Accept-Language"), languages)
    language = wished or first_served([app.config.instance.language], languages)
    return Speech(language, app.config.business_hours.timezone)


async def person_page_speech(
    app: App, session: AsyncSession, request: web.Request, address: str, ticket: Ticket
) -> Speech:
    """For a known reader (an approver): their browser's language, else their own; their
    own time zone."""
    own = await person_speech(session, app.config, app.renderer.languages, address, ticket)
    wished = accepted(request.headers.get("Accept-Language"), app.renderer.languages)
    return Speech(wished or own.language, own.timezone)
