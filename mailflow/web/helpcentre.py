"""The help centre: published resolutions, an index and one page each, under /kb/."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import select

from mailflow.db.record import Resolution
from mailflow.web.pages import page
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
        return page(app, "kb_index", articles=articles)


async def article(request: web.Request) -> web.Response:
    app = request.app[APP_KEY]
    async with app.db.transaction() as session:
        found = await session.scalar(
            select(Resolution).where(
                Resolution.slug == request.match_info["slug"], Resolution.published
            )
        )
        if found is None:
            raise web.HTTPNotFound()
        return page(app, "kb_article", article=found)
