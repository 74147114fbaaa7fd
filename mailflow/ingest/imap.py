"""Reads an IMAP folder into accept(): IDLE or polling, the folder's UIDVALIDITY and last
UID committed with each message, and \\Seen or MOVE only after that commit."""

from __future__ import annotations

import asyncio
import contextlib
import random
from datetime import datetime
from typing import Any

import aioimaplib
import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mailflow.app import App
from mailflow.config import ImapAccountConfig
from mailflow.credentials import CredentialError
from mailflow.db.models import ImapFolder, InboundMessage, InboundState
from mailflow.db.session import DatabaseUnavailable
from mailflow.ingest import imap_client as imap
from mailflow.ingest.accept import accept
from mailflow.ingest.envelope import Channel, Envelope
from mailflow.ingest.inflight import InFlight
from mailflow.mail.addresses import parse_mailboxes
from mailflow.mail.parse import parse

log = structlog.get_logger(__name__)

IDLE_RENEW_SECONDS = 300  # well inside RFC 2177's 29 minutes, and most NATs' idle limits
BACKOFF_FIRST, BACKOFF_MAX = 1.0, 300.0
FETCH_ATTEMPTS = 3  # a message that cannot be fetched this often is quarantined
ROUTING_HEADERS = ("delivered-to", "x-original-to", "to", "cc")


class Deferred(Exception):
    """The database could not take the message; stop and come back later."""


class FolderWatcher:
    """One folder of one account, on its own connection (IDLE watches one folder)."""

    def __init__(
        self, app: App, account: ImapAccountConfig, folder: str, inflight: InFlight
    ) -> None:
        self.app, self.account, self.folder, self.inflight = app, account, folder, inflight
        self.log = log.bind(account=account.name, folder=folder)
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"imap-{self.account.name}")

    def wake(self) -> None:
        """Poll now (the scheduler calls this in poll mode)."""
        self._wake.set()

    async def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        delay = BACKOFF_FIRST
        while not self._stop.is_set():
            self._selected = False
            try:
                await self._until_lost()
            except (
                imap.ImapError,
                CredentialError,
                Deferred,
                DatabaseUnavailable,
                OSError,
                TimeoutError,
                asyncio.IncompleteReadError,
                aioimaplib.Abort,
                aioimaplib.CommandTimeout,
            ) as exc:
                self.log.warning(
                    "imap.disconnected",
                    error=str(exc) or type(exc).__name__,
                    retry_in=round(delay, 1),
                )
            except Exception:  # the edge: an unexpected failure must not end the watcher
                self.log.exception("imap.failed", retry_in=round(delay, 1))
            if self._stop.is_set():
                break
            if self._selected:  # a session that worked: the next failure starts afresh
                delay = BACKOFF_FIRST
            await self._sleep(delay * random.uniform(0.5, 1.5))  # jitter: no thundering herd
            delay = min(delay * 2, BACKOFF_MAX)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)

    async def _until_lost(self) -> None:
        """A session, ended as soon as the server drops the connection: aioimaplib leaves a
        command that was waiting for its answer to wait until its timeout (a minute)."""
        lost = asyncio.Event()
        session = asyncio.ensure_future(self._session(lost))
        gone = asyncio.ensure_future(lost.wait())
        try:
            await asyncio.wait({session, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
        if not session.done():
            session.cancel()  # a commit under way is shielded (InFlight) and completes
            with contextlib.suppress(asyncio.CancelledError):
                await session
            raise imap.ImapError("the server closed the connection")
        session.result()  # raises what ended it

    async def _session(self, lost: asyncio.Event) -> None:
        client = await imap.connect(
            self.account, self.app.config.base_dir, on_lost=lambda _exc: lost.set()
        )
        self.log.info("imap.connected")
        try:
            if self.account.after == "move" and self.account.move_to:
                await imap.ensure_folder(client, self.account.move_to)
            uidvalidity = await imap.select(client, self.folder)
            self._selected = True
            idle = self.account.mode == "idle" and client.has_capability("IDLE")
            while not self._stop.is_set():
                # Again until nothing is new: mail that arrives during a batch is announced
                # inside the batch's answers, and not again once IDLE starts.
                while await self._sync(client, uidvalidity) and not self._stop.is_set():
                    pass
                if idle:
                    await self._idle(client)
                else:
                    await self._poll_wait()
        finally:
            if lost.is_set():
                imap.close(client)
            else:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(client.logout(), 5)

    async def _poll_wait(self) -> None:
        self._wake.clear()
        await self._wake.wait()

    async def _idle(self, client: aioimaplib.IMAP4) -> None:
        """Wait for the server to announce new mail, the renewal time, or a stop. A lost
        connection cancels the whole session (`_until_lost`)."""
        idle = await client.idle_start(timeout=IDLE_RENEW_SECONDS + 30)
        push = asyncio.ensure_future(client.wait_server_push(IDLE_RENEW_SECONDS))
        stop = asyncio.ensure_future(self._stop.wait())
        try:
            try:
                await asyncio.wait({push, stop, idle}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in (push, stop):
                    waiter.cancel()
            if _says_bye(push):
                # "* BYE Selected mailbox was deleted": the server is about to hang up.
                raise imap.ImapError("the server said BYE")
        except (imap.ImapError, asyncio.CancelledError):
            idle.cancel()  # its connection is gone; it would never end
            raise
        if idle.done():
            idle.result()  # raises what ended it
            raise imap.ImapError("the server ended IDLE")
        client.idle_done()
        await asyncio.wait_for(idle, 10)

    async def _sync(self, client: aioimaplib.IMAP4, uidvalidity: int) -> bool:
        """Take what is new since the last UID; True when there was something."""
        state = await self._state(uidvalidity)
        await self._finish_committed(client, state.last_uid)
        uids = [
            u
            for u in await imap.search_uids(client, f"UID {state.last_uid + 1}:*")
            if u > state.last_uid
        ]
        if not uids:
            return False
        limit = self.app.config.smtp.max_message_size
        sizes = await imap.sizes(client, uids)
        for uid in uids:
            if self._stop.is_set():
                break
            await self._take(client, uidvalidity, uid, sizes.get(uid, 0), limit)
        return True

    async def _take(
        self, client: aioimaplib.IMAP4, uidvalidity: int, uid: int, size: int, limit: int
    ) -> None:
        if size > limit:
            head = await imap.fetch(client, uid, "BODY.PEEK[HEADER]")
            await self._quarantine(
                uidvalidity,
                uid,
                head.raw,
                f"{size} bytes is over the limit of {limit}; left in the mailbox",
            )
        else:
            try:
                fetched = await imap.fetch(client, uid)
            except imap.ImapError as exc:
                await self._fetch_failed(uidvalidity, uid, str(exc))
                return
            outcome = await self.inflight.run(
                accept(
                    self.app,
                    fetched.raw,
                    self._envelope(fetched.raw),
                    also=self._advance(uidvalidity, uid),
                )
            )
            if not outcome.owned:
                raise Deferred(outcome.reason)
            self.log.info(
                "imap.accepted", uid=uid, inbound=outcome.inbound_id, ticket=outcome.ticket_id
            )
        await self._after(client, [uid])

    def _envelope(self, raw: bytes) -> Envelope:
        """Our address first: the configured one, else those in the delivery headers."""
        parsed = parse(raw[:65536])
        if self.account.deliver_to:
            rcpt_tos: tuple[str, ...] = (self.account.deliver_to,)
        else:
            found = [
                m.address
                for name in ROUTING_HEADERS
                for m in parse_mailboxes(list(parsed.headers.get(name, ())))
            ]
            rcpt_tos = tuple(dict.fromkeys(found))
        return_path = parsed.header("return-path") or ""
        return Envelope(Channel.IMAP, return_path.strip() or "", rcpt_tos, self.app.clock.now())

    async def _after(self, client: aioimaplib.IMAP4, uids: list[int]) -> None:
        """Only ever for committed messages: mark them read, or move them away."""
        if self.account.after == "move" and self.account.move_to:
            await imap.move(client, uids, self.account.move_to)
        else:
            await imap.mark_seen(client, uids)

    async def _finish_committed(self, client: aioimaplib.IMAP4, last_uid: int) -> None:
        """Messages committed before a crash or disconnect but never marked: mark them now."""
        if last_uid == 0:
            return
        criteria = f"UID 1:{last_uid}" + ("" if self.account.after == "move" else " UNSEEN")
        pending = [u for u in await imap.search_uids(client, criteria) if u <= last_uid]
        if pending:
            self.log.info("imap.finishing", uids=len(pending))
            await self._after(client, pending)

    # ------------------------------------------------------------------ bookkeeping

    async def _state(self, uidvalidity: int) -> ImapFolder:
        async with self.app.db.transaction() as session:
            state = await self._row(session)
            if state is None:
                state = ImapFolder(
                    account=self.account.name,
                    folder=self.folder,
                    uidvalidity=uidvalidity,
                    last_uid=0,
                    failures=0,
                    updated_at=self.app.clock.now(),
                )
                session.add(state)
            elif state.uidvalidity != uidvalidity:
                # The server renumbered the folder: read it all again; the duplicate check
                # (Message-ID or content) keeps what we already have from coming in twice.
                self.log.warning("imap.uidvalidity_changed", old=state.uidvalidity, new=uidvalidity)
                state.uidvalidity, state.last_uid = uidvalidity, 0
                state.failing_uid, state.failures = None, 0
            return state

    async def _row(self, session: AsyncSession) -> ImapFolder | None:
        return await session.scalar(
            select(ImapFolder).where(
                ImapFolder.account == self.account.name, ImapFolder.folder == self.folder
            )
        )

    def _advance(self, uidvalidity: int, uid: int):  # type: ignore[no-untyped-def]
        async def advance(session: AsyncSession) -> None:
            state = await self._row(session)
            if state is not None and state.uidvalidity == uidvalidity:
                state.last_uid = max(state.last_uid, uid)
                state.failing_uid, state.failures = None, 0
                state.updated_at = self.app.clock.now()

        return advance

    async def _fetch_failed(self, uidvalidity: int, uid: int, error: str) -> None:
        async with self.app.db.transaction() as session:
            state = await self._row(session)
            assert state is not None
            state.failures = state.failures + 1 if state.failing_uid == uid else 1
            state.failing_uid = uid
            tries = state.failures
        self.log.warning("imap.fetch_failed", uid=uid, error=error, tries=tries)
        if tries < FETCH_ATTEMPTS:
            raise imap.ImapError(error)
        await self._quarantine(
            uidvalidity, uid, b"", f"could not be fetched {tries} times: {error}"
        )

    async def _quarantine(self, uidvalidity: int, uid: int, raw: bytes, reason: str) -> None:
        """Keep what we have of a message we cannot take whole, and move past it."""
        now = self.app.clock.now()
        async with self.app.db.transaction() as session:
            session.add(
                _kept(raw, now, f"IMAP {self.account.name}/{self.folder} UID {uid}: {reason}")
            )
            await self._advance(uidvalidity, uid)(session)
        self.log.error("imap.quarantined", uid=uid, reason=reason)


def _kept(raw: bytes, now: datetime, reason: str) -> InboundMessage:
    return InboundMessage(
        received_at=now,
        channel=Channel.IMAP.value,
        mail_from="",
        rcpt_tos=[],
        message_id=parse(raw).message_id if raw else None,
        size=len(raw),
        raw=raw,
        state=InboundState.QUARANTINED,
        reason=reason,
        decisions=[],
    )


def watchers(app: App, inflight: InFlight) -> list[FolderWatcher]:
    return [
        FolderWatcher(app, account, folder, inflight)
        for account in app.config.imap
        for folder in account.folders
    ]


def _says_bye(push: asyncio.Future[Any]) -> bool:
    """Whether what the server pushed during IDLE was its goodbye."""
    if not push.done() or push.cancelled() or push.exception() is not None:
        return False
    lines = push.result()
    return isinstance(lines, list) and any(
        bytes(line).lstrip(b"* ").upper().startswith(b"BYE")
        for line in lines
        if isinstance(line, bytes | bytearray)
    )
