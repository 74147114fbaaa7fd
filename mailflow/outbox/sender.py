"""The sender task: claim due rows, hand them to the transport, record how it went."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

import structlog

from mailflow.app import App
from mailflow.outbox.queue import Claimed, backoff, claim_due, mark_failed, mark_retry, mark_sent
from mailflow.outbox.transports import PermanentFailure, TemporaryFailure, Transport
from mailflow.tickets import ops

log = structlog.get_logger(__name__)

BATCH_PER_SLOT = 8  # rows claimed per batch for each concurrent delivery


class Sender:
    def __init__(self, app: App, transport: Transport) -> None:
        self.app = app
        self.transport = transport
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="outbox-sender")

    async def stop(self) -> None:
        """Finish the deliveries under way, then return; pending rows wait for the next start."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await self._task

    async def _loop(self) -> None:
        interval = self.app.config.outbox.poll_interval.total_seconds()
        while not self._stopping:
            self._wake.clear()
            try:
                claimed = await self.run_once()
            except Exception:  # the edge: a database hiccup must not end the sender
                log.exception("outbox.cycle_failed")
                claimed = 0
            if claimed and not self._stopping:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), interval)

    async def run_once(self) -> int:
        """One batch: claim due rows, deliver them `concurrency` at a time, then record every
        result in one transaction. Two transactions a batch, however large: under load the
        sender waits in the same queue for the database as every incoming message."""
        outbox = self.app.config.outbox
        claimed = await claim_due(
            self.app.db, self.app.clock.now(), outbox.lease, outbox.concurrency * BATCH_PER_SLOT
        )
        if claimed:
            slots = asyncio.Semaphore(outbox.concurrency)
            results = await asyncio.gather(*(self._attempt(mail, slots) for mail in claimed))
            await self._settle(list(zip(claimed, results, strict=True)))
        return len(claimed)

    async def _attempt(self, mail: Claimed, slots: asyncio.Semaphore) -> Attempt:
        async with slots:
            return await self._deliver(mail)

    async def _deliver(self, mail: Claimed) -> Attempt:
        try:
            return Attempt(note=await self.transport.send(mail))
        except PermanentFailure as exc:
            return Attempt(error=str(exc), permanent=True)
        except TemporaryFailure as exc:
            return Attempt(error=str(exc))
        except Exception as exc:  # the edge: an unexpected transport error is retried
            log.exception("outbox.transport_error", outbox=mail.id, ticket=mail.ticket_id)
            return Attempt(error=f"{type(exc).__name__}: {exc}")

    async def _settle(self, results: list[tuple[Claimed, Attempt]]) -> None:
        outbox = self.app.config.outbox
        now = self.app.clock.now()
        actor = ops.Actor.system("outbox")
        async with self.app.db.transaction() as session:
            events = []
            for mail, attempt in results:
                if attempt.error is None:
                    await mark_sent(session, mail, now, attempt.note)
                    log.info(
                        "outbox.sent", outbox=mail.id, ticket=mail.ticket_id, to=list(mail.rcpt_tos)
                    )
                    continue
                next_at = now + backoff(mail.attempts, outbox.retry_initial, outbox.retry_max)
                if attempt.permanent or next_at - mail.created_at > outbox.give_up_after:
                    error = (
                        attempt.error
                        if attempt.permanent
                        else (f"gave up after {mail.attempts} attempts: {attempt.error}")
                    )
                    events += await mark_failed(session, mail.id, error, actor, now)
                    log.error("outbox.failed", outbox=mail.id, ticket=mail.ticket_id, error=error)
                    continue
                await mark_retry(session, mail, attempt.error, next_at)
                log.warning(
                    "outbox.retry",
                    outbox=mail.id,
                    ticket=mail.ticket_id,
                    error=attempt.error,
                    attempts=mail.attempts,
                    next_attempt=next_at.isoformat(),
                )
            await self.app.engine.run(session, events, now)
        if events:
            self.wake()  # rules may have queued mail about the failures


@dataclass(frozen=True, slots=True)
class Attempt:
    """How one delivery went: a note when sent, else the error and whether it is final."""

    note: str = ""
    error: str | None = None
    permanent: bool = False
