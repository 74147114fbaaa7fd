"""HTML pages from templates/web/, escaped by Jinja2's autoescape."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from mailflow.app import App


def page(app: App, name: str, status: int = 200, **context: Any) -> web.Response:
    html = app.renderer.page(f"web/{name}.html.j2", {"instance": app.config.instance, **context})
    response = web.Response(text=html, content_type="text/html", status=status)
    response.headers["Cache-Control"] = "no-store"
    return response
