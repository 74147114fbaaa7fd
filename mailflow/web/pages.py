"""HTML pages from templates/web/, escaped by Jinja2's autoescape."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aiohttp import web

from mailflow.app import App


def page(app: App, name: str, status: int = 200, **context: Any) -> web.Response:
    html = app.renderer.page(f"web/{name}.html.j2", {"instance": app.config.instance, **context})
    response = web.Response(text=html, content_type="text/html", status=status)
    response.headers["Cache-Control"] = "no-store"
    return response


_UNITS = (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1))


def spoken(delta: timedelta) -> str:
    """A duration as the pages say it: "2 seconds", "30 minutes", "1 hour 30 minutes"."""
    left, words = int(delta.total_seconds()), []
    for unit, seconds in _UNITS:
        count, left = divmod(left, seconds)
        if count:
            words.append(f"{count} {unit}{'s' if count != 1 else ''}")
    return " ".join(words) or ("less than a second" if delta else "no time")
