"""The daemon's lifespan: start every part in order, stop them in reverse, losing nothing."""

from __future__ import annotations

import asyncio
import signal

import structlog

from mailflow.app import App
from mailflow.db import migrate
from mailflow.ingest.inflight import InFlight
from mailflow.ingest.smtp import SmtpListener
from mailflow.outbox.sender import Sender
from mailflow.outbox.transports import Transport, transport_for

log = structlog.get_logger(__name__)


class Daemon:
    def __init__(self, app: App, transport: Transport | None = None) -> None:
        self.app = app
        self.inflight = InFlight()
        self.sender = Sender(app, transport or transport_for(app.config))
        self.smtp: SmtpListener | None = None
        self.smtp_address: tuple[str, int] | None = None
        self.stopped = False

    async def start(self) -> None:
        config = self.app.config
        await migrate.ensure_current(self.app.db, config)
        self.app.on_outbox_change(self.sender.wake)
        self.sender.start()
        if config.smtp.enabled:
            self.smtp = SmtpListener(self.app, self.inflight)
            self.smtp_address = await self.smtp.start()
        log.info("daemon.started", database=self.app.db.url.render_as_string(hide_password=True))

    async def stop(self) -> None:
        """Stop accepting, let messages under way commit, let deliveries under way finish."""
        if self.stopped:
            return
        self.stopped = True
        log.info("daemon.stopping")
        if self.smtp is not None:
            self.smtp.stop_listening()
        await self.inflight.drain()
        if self.smtp is not None:
            self.smtp.close_connections()
        await self.sender.stop()
        await self.app.close()
        log.info("daemon.stopped")


async def run_until_signalled(daemon: Daemon) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await daemon.start()
    except BaseException:
        await daemon.stop()
        raise
    try:
        await stop.wait()
    finally:
        await daemon.stop()
