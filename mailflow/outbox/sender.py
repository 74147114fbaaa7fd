"""The sender task: claim due rows, hand them to the transport, record how it went."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from mailflow.app import App
from mailflow.outbox.journal import Delivered, Journal, forget
from mailflow.outbox.queue import (
    Claimed,
    backoff,
    claim_due,
    mark_failed,
    mark_retry,
    mark_sent,
    put_back,
    recipients_failed,
    split_off,
    still_sending,
)
from mailflow.outbox.transports import PermanentFailure, Refusal, TemporaryFailure, Transport
from mailflow.tickets import ops
from mailflow.tickets.events import Event

log = structlog.get_logger(__name__)

BATCH_PER_SLOT = 8  # rows claimed per batch for each concurrent delivery


class Sender:
    def __init__(self, app: App, transport: Transport, journal: Journal | None = None) -> None:
        self.app = app
        self.transport = transport
        self.journal = journal or Journal(app.config.path(app.config.outbox.journal))
        self._wake = asyncio.Event()
        self._stopping = False
        self._giving_up = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # Journal entries not yet in the database: a dead process's files, and our own
        # entries whose batch could not be recorded.
        self._orphans: list[tuple[Path, list[Delivered]]] = []
        self._unrecorded: list[Delivered] = []

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._orphans = self.journal.open()
        self._task = asyncio.create_task(self._loop(), name="outbox-sender")

    async def stop(self, give_up_at: float | None = None) -> None:
        """No batch starts any more. The deliveries of the batch under way are made, or at
        `give_up_at` (loop time) given up and left pending; then the batch is recorded."""
        self._stopping = True
        self._wake.set()
        loop = asyncio.get_running_loop()
        timer = loop.call_at(give_up_at, self._give_up) if give_up_at is not None else None
        try:
            if self._task is not None:
                await self._task
        finally:
            if timer is not None:
                timer.cancel()
            self.journal.close()

    def _give_up(self) -> None:
        self._giving_up.set()

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
        sender waits in the same queue for the database as every incoming message. Each 250
        is in the journal meanwhile, so a kill in that wait sends nothing again."""
        await self._record_journal()
        outbox = self.app.config.outbox
        claimed = await claim_due(
            self.app.db, self.app.clock.now(), outbox.lease, outbox.concurrency * BATCH_PER_SLOT
        )
        if claimed:
            slots = asyncio.Semaphore(outbox.concurrency)
            results = await asyncio.gather(*(self._attempt(mail, slots) for mail in claimed))
            journaled = [a.journaled for a in results if a.journaled is not None]
            try:
                await self._settle(list(zip(claimed, results, strict=True)))
            except Exception:
                self._unrecorded += journaled  # in the database at the next batch
                raise
            self.journal.settled(len(journaled))
        return len(claimed)

    async def _record_journal(self) -> None:
        """Deliveries only the journal knows of, into the database before anything is
        claimed: a dead process's first (its rows' leases may have run out), then ours.
        Taken off the lists first, so that a second caller does not record them again."""
        orphans, self._orphans = self._orphans, []
        while orphans:
            path, entries = orphans[0]
            try:
                await self._settle([], entries)
            except Exception:
                self._orphans = orphans + self._orphans
                raise
            log.info("outbox.journal_recorded", file=str(path), deliveries=len(entries))
            forget(path)
            orphans.pop(0)
        unrecorded, self._unrecorded = self._unrecorded, []
        if unrecorded:
            try:
                await self._settle([], unrecorded)
            except Exception:
                self._unrecorded = unrecorded + self._unrecorded
                raise
            self.journal.settled(len(unrecorded))

    async def _attempt(self, mail: Claimed, slots: asyncio.Semaphore) -> Attempt:
        async with slots:
            if self._giving_up.is_set():
                return LEFT_PENDING  # the daemon's time to stop has run out
            delivery = asyncio.create_task(self._deliver(mail))
            giving_up = asyncio.create_task(self._giving_up.wait())
            await asyncio.wait((delivery, giving_up), return_when=asyncio.FIRST_COMPLETED)
            giving_up.cancel()
            if not delivery.done():
                # Not waited for: a cancelled client still says QUIT, which a hung relay
                # never answers.
                delivery.cancel()
                return LEFT_PENDING
            attempt = delivery.result()
            if attempt.error is None:
                attempt = await self._journaled(mail, attempt)
            return attempt

    async def _journaled(self, mail: Claimed, attempt: Attempt) -> Attempt:
        """On disk before this slot sends anything else."""
        delivered = Delivered(
            mail.id,
            mail.message_id,
            attempt.note,
            tuple((r.address, r.code, r.message) for r in attempt.refused),
        )
        try:
            await self.journal.write(delivered)
        except OSError as exc:  # the mail is sent; only the crash window widens
            log.error("outbox.journal_failed", outbox=mail.id, error=str(exc))
            return attempt
        return replace(attempt, journaled=delivered)

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

    async def _settle(
        self, results: list[tuple[Claimed, Attempt]], replayed: Sequence[Delivered] = ()
    ) -> None:
        """Record every result in one transaction, then run the rules for the failures in
        another: a rule that breaks must not undo the record of mail already delivered
        (which would send it again when the lease runs out)."""
        now = self.app.clock.now()
        async with self.app.db.transaction() as session:
            results = results + await _from_journal(session, replayed)
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
        if attempt.left:
            await put_back(session, mail)
            log.info("outbox.left_pending", outbox=mail.id, ticket=mail.ticket_id)
            return []
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
    left: bool = False  # not made, or given up half way, because the daemon is stopping
    journaled: Delivered | None = None


LEFT_PENDING = Attempt(left=True)


async def _from_journal(
    session: AsyncSession, entries: Sequence[Delivered]
) -> list[tuple[Claimed, Attempt]]:
    """Journal entries as results, for the rows still waiting for them; a row already
    recorded (the process died after its commit) is left as it is."""
    if not entries:
        return []
    rows = await still_sending(session, [entry.outbox_id for entry in entries])
    return [
        (rows[entry.outbox_id], _sent(entry))
        for entry in entries
        if entry.outbox_id in rows and rows[entry.outbox_id].message_id == entry.message_id
    ]


def _sent(entry: Delivered) -> Attempt:
    refused = tuple(Refusal(address, int(code), text) for address, code, text in entry.refused)
    return Attempt(note=entry.note, refused=refused)
