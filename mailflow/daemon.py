"""The daemon's lifespan: start every part in order, stop them in reverse, losing nothing."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Iterator

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

# At a stop, messages still being committed and deliveries still under way are given up at
# this share of stop_timeout; the rest is for recording what happened to them.
GIVE_UP_SHARE = 0.8


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
        """Stop accepting at once; let the messages in DATA commit and the deliveries under
        way finish, within stop_timeout; whatever is left then is given up, unanswered or
        pending, so that nothing is lost."""
        if self.stopped:
            return
        self.stopped = True
        log.info("daemon.stopping")
        loop = asyncio.get_running_loop()
        timeout = self.app.config.daemon.stop_timeout.total_seconds()
        deadline = loop.time() + timeout
        give_up_at = loop.time() + timeout * GIVE_UP_SHARE
        self.scheduler.stop()
        for listener in self.listeners:
            listener.stop_listening()
        sender = asyncio.create_task(self.sender.stop(give_up_at))
        await _within(deadline, self._quiet(give_up_at))
        self.inflight.cancel()
        for listener in self.listeners:
            listener.close_connections()
        if not await _within(deadline, sender):
            log.warning("daemon.stop_timeout", note="deliveries under way left to the lease")
        await self.app.close()
        log.info("daemon.stopped")

    async def _quiet(self, until: float) -> None:
        """Every way in closed, and what came in before committed, until `until`."""
        if self.web is not None:
            await self.web.stop()
        await asyncio.gather(*(watcher.stop() for watcher in self.watchers))
        loop = asyncio.get_running_loop()
        transactions = [t for listener in self.listeners for t in listener.transactions]
        if transactions and until > loop.time():
            await asyncio.wait(transactions, timeout=until - loop.time())
        await self.inflight.drain(until)


async def _within(deadline: float, work: Awaitable[None]) -> bool:
    """Run `work` until `deadline` (loop time); cancel it then. Whether it finished."""
    remaining = deadline - asyncio.get_running_loop().time()
    try:
        await asyncio.wait_for(work, max(remaining, 0))
    except TimeoutError:
        return False
    return True


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
