"""aiohttp inside the daemon's loop: chosen because it serves and tests in that one loop with
no second framework (no ASGI server to embed), and is well kept and typed."""

from __future__ import annotations

from typing import Any

import structlog
from aiohttp import web

from mailflow.app import App
from mailflow.web import approvals, helpcentre
from mailflow.web.server_key import APP_KEY

log = structlog.get_logger(__name__)

# No scripts, no frames, no referrer to other sites: the pages are plain forms. Our own
# origin is sent with their POSTs (under no-referrer Chromium sends "Origin: null").
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


@web.middleware
async def _headers(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        response: web.StreamResponse = await handler(request)
    except web.HTTPException as answer:  # a 404 or 405 carries them too
        answer.headers.update(SECURITY_HEADERS)
        raise
    response.headers.update(SECURITY_HEADERS)
    return response


async def healthz(request: web.Request) -> web.Response:
    """200 when the database answers; 503 otherwise, for a load balancer or a monitor. It
    waits for no writer: a large message being committed is not an outage."""
    app = request.app[APP_KEY]
    try:
        await app.db.ping()
    except Exception as exc:  # the edge: any failure is "not healthy", said plainly
        log.warning("web.unhealthy", error=str(exc))
        return web.json_response({"status": "unavailable"}, status=503)
    return web.json_response({"status": "ok"})


def application(app: App) -> web.Application:
    site = web.Application(middlewares=[_headers], client_max_size=64 * 1024)
    site[APP_KEY] = app
    site.add_routes(
        [
            web.get("/healthz", healthz),
            web.get("/approval/{token}", approvals.show),
            web.post("/approval/{token}", approvals.submit),
            web.get("/kb/", helpcentre.index),
            web.get("/kb/{slug}", helpcentre.article),
        ]
    )
    return site


class WebServer:
    def __init__(self, app: App) -> None:
        self.app = app
        self.runner: web.AppRunner | None = None
        self.port = 0

    async def start(self) -> None:
        web_config = self.app.config.web
        self.runner = web.AppRunner(application(self.app), access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, web_config.host, web_config.port)
        await site.start()
        self.port = int(self.runner.addresses[0][1])
        log.info("web.listening", at=f"{web_config.host}:{self.port}")

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
