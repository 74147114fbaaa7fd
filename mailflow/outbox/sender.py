"""The sender task: claim due rows, hand them to the transport, record how it went."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from mailflow.app import App
from mailflow.outbox.queue import (
    Claimed,
    backoff,
    claim_due,
    mark_failed,
    mark_retry,
    mark_sent,
    recipients_failed,
    split_off,
)
from mailflow.outbox.transports import PermanentFailure, Refusal, TemporaryFailure, Transport
from mailflow.tickets import ops
from mailflow.tickets.events import Event

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
            sent = await self.transport.send(mail)
            return Attempt(note=sent.note, refused=sent.refused)
        except PermanentFailure as exc:
            return Attempt(error=str(exc), permanent=True)
        except TemporaryFailure as exc:
            return Attempt(error=str(exc))
        except Exception as exc:  # the edge: an unexpected transport error is retried
            log.exception("outbox.transport_error", outbox=mail.id, ticket=mail.ticket_id)
            return Attempt(error=f"{type(exc).__name__}: {exc}")

    async def _settle(self, results: list[tuple[Claimed, Attempt]]) -> None:
        """Record every result in one transaction, then run the rules for the failures in
        another: a rule that breaks must not undo the record of mail already delivered
        (which would send it again when the lease runs out)."""
        now = self.app.clock.now()
        async with self.app.db.transaction() as session:
            events = []
            for mail, attempt in results:
                events += await self._record(session, mail, attempt, now)
        if not events:
            return
        try:
            async with self.app.db.transaction() as session:
                await self.app.engine.run(session, events, now)
        except Exception:  # the edge: the deliveries stand; the rules' failure is logged
            tickets = sorted({e.ticket_id for e in events})
            log.exception("outbox.failure_rules_failed", tickets=tickets)
        self.wake()  # rules may have queued mail about the failures

    async def _record(
        self, session: AsyncSession, mail: Claimed, attempt: Attempt, now: datetime
    ) -> list[Event]:
        outbox = self.app.config.outbox
        actor = ops.Actor.system("outbox")
        next_at = now + backoff(mail.attempts, outbox.retry_initial, outbox.retry_max)
        if attempt.error is None:
            await mark_sent(session, mail, now, attempt.note)
            log.info("outbox.sent", outbox=mail.id, ticket=mail.ticket_id, to=list(mail.rcpt_tos))
            return await self._refusals(session, mail, attempt.refused, next_at, now)
        if attempt.permanent or next_at - mail.created_at > outbox.give_up_after:
            error = (
                attempt.error
                if attempt.permanent
                else f"gave up after {mail.attempts} attempts: {attempt.error}"
            )
            log.error("outbox.failed", outbox=mail.id, ticket=mail.ticket_id, error=error)
            return await mark_failed(session, mail.id, error, actor, now)
        await mark_retry(session, mail, attempt.error, next_at)
        log.warning(
            "outbox.retry",
            outbox=mail.id,
            ticket=mail.ticket_id,
            error=attempt.error,
            attempts=mail.attempts,
            next_attempt=next_at.isoformat(),
        )
        return []

    async def _refusals(
        self,
        session: AsyncSession,
        mail: Claimed,
        refused: tuple[Refusal, ...],
        next_at: datetime,
        now: datetime,
    ) -> list[Event]:
        """Recipients the relay refused while it took the mail for the others: for good
        (on the ticket, and to the rules), or for now (a row of their own, retried)."""
        lost = [r for r in refused if r.permanent]
        later = [r for r in refused if not r.permanent]
        if later:
            error = "; ".join(map(str, later))
            await split_off(session, mail, [r.address for r in later], error, next_at)
            log.warning(
                "outbox.recipients_deferred", outbox=mail.id, ticket=mail.ticket_id, error=error
            )
        if not lost:
            return []
        error = "; ".join(map(str, lost))
        log.error("outbox.recipients_refused", outbox=mail.id, ticket=mail.ticket_id, error=error)
        actor = ops.Actor.system("outbox")
        return await recipients_failed(session, mail, [r.address for r in lost], error, actor, now)


@dataclass(frozen=True, slots=True)
class Attempt:
    """How one delivery went: a note when sent, else the error and whether it is final."""

    note: str = ""
    error: str | None = None
    permanent: bool = False
    refused: tuple[Refusal, ...] = ()  # recipients refused while the others were taken
