"""The one way in: store, process and commit a message, or quarantine it, before answering."""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import Awaitable, Callable

import structlog
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from mailflow.app import App
from mailflow.db.large_values import is_large, write_large
from mailflow.db.models import InboundMessage, InboundState
from mailflow.db.session import DatabaseUnavailable
from mailflow.ingest.envelope import Channel, Envelope, Fate, Outcome
from mailflow.mail.parse import ParsedMessage, parse
from mailflow.pipeline import process
from mailflow.pipeline.intake import Intake, Quarantine
from mailflow.tickets.attachment_files import AttachmentFiles

log = structlog.get_logger(__name__)

# Parsing a large message takes milliseconds; above this size it runs off the event loop.
PARSE_IN_THREAD_ABOVE = 256 * 1024
# PostgreSQL serialization failure, deadlock, and a unique violation from a concurrent copy
# of the same message: running the transaction again settles each of them.
RETRYABLE_SQLSTATES = {"40001", "40P01", "23505"}
ATTEMPTS = 3

# Gives the transaction its inbound row: a new one, or a quarantined one being retried.
RowFactory = Callable[[AsyncSession], Awaitable[InboundMessage]]
# Bookkeeping of the channel (an IMAP folder's last UID) to commit with the message.
Also = Callable[[AsyncSession], Awaitable[None]]


async def _nothing(session: AsyncSession) -> None:
    return None


async def accept(app: App, raw: bytes, envelope: Envelope, *, also: Also = _nothing) -> Outcome:
    """Answer only after the message, and all it caused, is committed (or quarantined).
    `also` runs inside whichever transaction keeps the message."""
    parsed = await _parse(app, raw)

    async def new_row(session: AsyncSession) -> InboundMessage:
        inbound = await _add_row(session, raw, envelope, parsed)
        await also(session)
        return inbound

    result = await _attempts(app, parsed, envelope, new_row)
    if isinstance(result, Outcome):
        return result
    return await _quarantine(app, raw, envelope, parsed, result, also)


async def retry(app: App, inbound_id: int) -> Outcome:
    """Run a quarantined message through the pipeline again, after a fix."""
    async with app.db.transaction() as session:
        stored = await session.get(InboundMessage, inbound_id)
        if stored is None or stored.state is not InboundState.QUARANTINED:
            raise LookupError(f"no quarantined inbound message {inbound_id}")
        raw = stored.raw
        envelope = Envelope(
            Channel(stored.channel), stored.mail_from, tuple(stored.rcpt_tos), stored.received_at
        )
    parsed = await _parse(app, raw)

    async def same_row(session: AsyncSession) -> InboundMessage:
        inbound = await session.get(InboundMessage, inbound_id)
        assert inbound is not None
        inbound.state, inbound.reason, inbound.error = InboundState.PROCESSED, "", ""
        inbound.decisions = []
        return inbound

    result = await _attempts(app, parsed, envelope, same_row)
    if isinstance(result, Outcome):
        return result
    reason, error = _describe(result)
    async with app.db.transaction() as session:
        inbound = await session.get(InboundMessage, inbound_id)
        assert inbound is not None
        inbound.reason, inbound.error = reason, error
    return Outcome(Fate.QUARANTINED, inbound_id=inbound_id, reason=reason)


async def _attempts(
    app: App, parsed: ParsedMessage, envelope: Envelope, row: RowFactory
) -> Outcome | Exception:
    """The committed outcome, or the exception that should quarantine the message."""
    cap = app.config.hygiene.max_attachments
    if len(parsed.attachments) > cap:  # kept as received: storing them is not worth it
        return Quarantine(
            f"{len(parsed.attachments)} attachments, more than [hygiene] max_attachments "
            f"({cap}); kept as received"
        )
    failure: Exception = RuntimeError("no attempt made")
    for _attempt in range(ATTEMPTS):
        try:
            return await _commit(app, parsed, envelope, row)
        except DatabaseUnavailable as exc:
            log.error("inbound.deferred", reason=str(exc), message_id=parsed.message_id)
            return Outcome(Fate.DEFERRED, reason=str(exc))
        except DBAPIError as exc:
            failure = exc
            if getattr(exc.orig, "sqlstate", None) not in RETRYABLE_SQLSTATES:
                break
        except Exception as exc:  # the edge: whatever went wrong, the message is kept
            failure = exc
            break
    return failure


async def _parse(app: App, raw: bytes) -> ParsedMessage:
    """A large message off the loop, its large attachments decoded straight into files
    rather than held in memory several times over."""
    if len(raw) > PARSE_IN_THREAD_ABOVE:
        files = AttachmentFiles.from_config(app.config)
        return await asyncio.to_thread(files.parse, raw, app.config.hygiene.max_attachment_size)
    return parse(raw)


def _storable(text: str) -> str:
    """aiosmtpd hands 8-bit envelope bytes on as lone surrogates, which no driver stores."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace").replace("\x00", "")


def inbound_row(raw: bytes, envelope: Envelope, parsed: ParsedMessage) -> InboundMessage:
    return InboundMessage(
        received_at=envelope.received_at,
        channel=envelope.channel.value,
        mail_from=_storable(envelope.mail_from)[:320],
        rcpt_tos=[_storable(rcpt) for rcpt in envelope.rcpt_tos],
        message_id=parsed.message_id,
        size=len(raw),
        raw=raw,
        state=InboundState.PROCESSED,
        decisions=[],
    )


async def _add_row(
    session: AsyncSession, raw: bytes, envelope: Envelope, parsed: ParsedMessage
) -> InboundMessage:
    """The inbound row. A large raw message is left out of the INSERT (see _write_raw), but
    is there for whoever reads the row meanwhile."""
    inbound = inbound_row(raw, envelope, parsed)
    if is_large(raw):
        inbound.raw = b""
    session.add(inbound)
    await session.flush()
    set_committed_value(inbound, "raw", raw)
    return inbound


async def _write_raw(session: AsyncSession, inbound: InboundMessage) -> None:
    """A large raw message, written last, once the row's other columns are final: on SQLite
    every UPDATE of the row copies all of it in memory twice."""
    if is_large(inbound.raw):
        await session.flush()
        await write_large(session, InboundMessage, "raw", inbound.id, inbound.raw)


async def handle(app: App, session: AsyncSession, intake: Intake) -> None:
    """The pipeline, the rules its events trigger, then the sender's own commands: these
    come last, so that no rule undoes them."""
    now = intake.now
    await process(app.services(session), intake)
    await app.engine.run(session, intake.events, now, intake.agent)
    commanded = [event for apply in intake.commands for event in await apply()]
    await app.engine.run(session, commanded + intake.after_commands, now, intake.agent)


async def _commit(app: App, parsed: ParsedMessage, envelope: Envelope, row: RowFactory) -> Outcome:
    now = app.clock.now()
    async with app.db.transaction() as session:
        inbound = await row(session)
        intake = Intake(inbound=inbound, parsed=parsed, envelope=envelope, now=now)
        try:
            await handle(app, session, intake)
        except Exception as exc:
            for decision in intake.decisions:  # what was decided before it failed
                exc.add_note(f"decided {decision}")
            raise
        inbound.decisions = intake.decisions
        if inbound.state in (InboundState.PROCESSED, InboundState.STORED_ONLY):
            inbound.dedupe_key = intake.dedupe_key
        inbound.ticket_id = intake.ticket.id if intake.ticket else None
        ticket_id, inbound_id, state = inbound.ticket_id, inbound.id, inbound.state
        reason = inbound.reason
        await _write_raw(session, inbound)
    app.wake_sender()
    log.info(
        "inbound.accepted",
        inbound=inbound_id,
        ticket=ticket_id,
        state=state.value,
        message_id=parsed.message_id,
        channel=envelope.channel.value,
    )
    return Outcome(Fate.ACCEPTED, inbound_id=inbound_id, ticket_id=ticket_id, reason=reason)


def _describe(failure: Exception) -> tuple[str, str]:
    """The reason a person reads, and the traceback (none for an expected quarantine)."""
    if isinstance(failure, Quarantine):
        return str(failure), ""
    return f"{type(failure).__name__}: {failure}", "".join(traceback.format_exception(failure))


async def _quarantine(
    app: App,
    raw: bytes,
    envelope: Envelope,
    parsed: ParsedMessage,
    failure: Exception,
    also: Also = _nothing,
) -> Outcome:
    """Keep a message we could not process, with why; if even that fails, ask for a retry."""
    reason, error = _describe(failure)
    try:
        async with app.db.transaction() as session:
            inbound = await _add_row(session, raw, envelope, parsed)
            inbound.state, inbound.reason, inbound.error = InboundState.QUARANTINED, reason, error
            await also(session)
            await _write_raw(session, inbound)
            inbound_id = inbound.id
    except Exception as exc:  # the edge: the database is gone too; the sender must retry
        log.error(
            "inbound.deferred", reason=f"quarantine failed: {exc}", message_id=parsed.message_id
        )
        return Outcome(Fate.DEFERRED, reason=str(exc))
    log_method = log.warning if not error else log.error
    log_method(
        "inbound.quarantined",
        inbound=inbound_id,
        reason=reason,
        message_id=parsed.message_id,
        exc_info=failure if error else None,
    )
    return Outcome(Fate.QUARANTINED, inbound_id=inbound_id, reason=reason)
