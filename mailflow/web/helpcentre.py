"""The help centre: published resolutions, an index and one page each, under /kb/."""

from __future__ import annotations

import re

from aiohttp import web
from sqlalchemy import select

from mailflow.db.record import Resolution
from mailflow.web.pages import browser_speech, page
from mailflow.web.server_key import APP_KEY


async def index(request: web.Request) -> web.Response:
    app = request.app[APP_KEY]
    async with app.db.transaction() as session:
        articles = (
            await session.scalars(
                select(Resolution)
                .where(Resolution.published)
                .order_by(Resolution.updated_at.desc())
            )
        ).all()
        return page(app, "kb_index", browser_speech(app, request), articles=articles)


# What resolutions.slug() makes: anything else is no article (and never reaches the
# database: PostgreSQL refuses a NUL in text with an error, not an empty result).
_SLUG = re.compile(r"[0-9]{1,12}(-[a-z0-9-]{1,100})?")


async def article(request: web.Request) -> web.Response:
    app = request.app[APP_KEY]
    slug = request.match_info["slug"]
    if not _SLUG.fullmatch(slug):
        raise web.HTTPNotFound()
    async with app.db.transaction() as session:
        found = await session.scalar(
            select(Resolution).where(Resolution.slug == slug, Resolution.published)
        )
        if found is None:
            raise web.HTTPNotFound()
        return page(app, "kb_article", browser_speech(app, request), article=found)
