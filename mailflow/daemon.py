"""The daemon's lifespan: start every part in order, stop them in reverse, losing nothing."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator

import structlog

from mailflow.app import App
from mailflow.automation.schema import RuleError
from mailflow.automation.sweep import sweep
from mailflow.credentials import check_secret_files
from mailflow.db import migrate
from mailflow.i18n import detect as language_model
from mailflow.ingest.envelope import Channel
from mailflow.ingest.imap import FolderWatcher, watchers
from mailflow.ingest.inflight import InFlight
from mailflow.ingest.smtp import MailListener
from mailflow.outbox.sender import Sender
from mailflow.outbox.transports import Transport, transport_for
from mailflow.render import TemplateProblem
from mailflow.scheduler import Scheduler
from mailflow.web.server import WebServer

log = structlog.get_logger(__name__)


class Daemon:
    def __init__(self, app: App, transport: Transport | None = None) -> None:
        self.app = app
        self.inflight = InFlight()
        self.sender = Sender(app, transport or transport_for(app.config))
        self.scheduler = Scheduler()
        self.listeners: list[MailListener] = []
        self.watchers: list[FolderWatcher] = []
        self.smtp_address: tuple[str, int] | None = None
        self.lmtp_at: str | None = None
        self.stopped = False
        self.web: WebServer | None = None
        for index, account in enumerate(app.config.imap):
            check_secret_files(app.config, account, f"imap[{index}]")

    async def start(self) -> None:
        config = self.app.config
        await migrate.ensure_current(self.app.db, config)
        await asyncio.to_thread(language_model.load)  # once, before the first mail waits on it
        self.app.on_outbox_change(self.sender.wake)
        self.sender.start()
        if config.smtp.enabled:
            smtp = await self._listen(Channel.SMTP)
            self.smtp_address = (config.smtp.host, smtp.port)
        if config.lmtp.enabled:
            self.lmtp_at = (await self._listen(Channel.LMTP)).where
        self.watchers = watchers(self.app, self.inflight)
        for watcher, account in ((w, w.account) for w in self.watchers):
            watcher.start()
            self.scheduler.every(
                account.poll_interval, watcher.wake, f"imap-poll-{account.name}-{watcher.folder}"
            )
        if config.web.enabled:
            self.web = WebServer(self.app)
            with _naming("web"):
                await self.web.start()
        self.scheduler.every(config.rules.sweep_interval, self.sweep, "rules-sweep")
        self.scheduler.start()
        log.info("daemon.started", database=self.app.db.url.render_as_string(hide_password=True))

    async def _listen(self, channel: Channel) -> MailListener:
        listener = MailListener(self.app, self.inflight, channel)
        self.listeners.append(listener)
        with _naming(channel.value):
            await listener.start()
        return listener

    def reload(self) -> None:
        """SIGHUP: read rules and templates again; a bad file keeps the old ones."""
        try:
            self.app.reload()
        except (RuleError, TemplateProblem) as exc:
            log.error("daemon.reload_refused", reason=str(exc))
            return
        log.info("daemon.reloaded", rules=len(self.app.rules.rules))

    async def sweep(self) -> None:
        """Time-based rules; a failure is logged and the next sweep tries again."""
        try:
            await self.inflight.run(sweep(self.app))
        except Exception:  # the edge of the scheduled job
            log.exception("rules.sweep_failed")

    async def stop(self) -> None:
        """Stop accepting, let messages under way commit, let deliveries under way finish."""
        if self.stopped:
            return
        self.stopped = True
        log.info("daemon.stopping")
        self.scheduler.stop()
        for listener in self.listeners:
            listener.stop_listening()
        if self.web is not None:
            await self.web.stop()
        await asyncio.gather(*(watcher.stop() for watcher in self.watchers))
        await self.inflight.drain()
        for listener in self.listeners:
            listener.close_connections()
        await self.sender.stop()
        await self.app.close()
        log.info("daemon.stopped")


async def run_until_signalled(daemon: Daemon) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    loop.add_signal_handler(signal.SIGHUP, daemon.reload)
    try:
        await daemon.start()
    except BaseException:
        await daemon.stop()
        raise
    try:
        await stop.wait()
    finally:
        await daemon.stop()


@contextlib.contextmanager
def _naming(section: str) -> Iterator[None]:
    """A listener that cannot start says which configuration section to change."""
    try:
        yield
    except OSError as exc:
        raise OSError(exc.errno, f"[{section}] {exc}") from exc
