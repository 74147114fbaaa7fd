"""The one way in: store, process and commit a message, or quarantine it, before answering."""

from __future__ import annotations

import asyncio
import traceback

import structlog
from sqlalchemy.exc import DBAPIError

from mailflow.app import App
from mailflow.db.models import InboundMessage, InboundState
from mailflow.db.session import DatabaseUnavailable
from mailflow.ingest.envelope import Envelope, Fate, Outcome
from mailflow.mail.parse import ParsedMessage, parse
from mailflow.pipeline import process
from mailflow.pipeline.intake import Intake, Quarantine

log = structlog.get_logger(__name__)

# Parsing a large message takes milliseconds; above this size it runs off the event loop.
PARSE_IN_THREAD_ABOVE = 256 * 1024
# PostgreSQL serialization failure and deadlock: the transaction may simply be run again.
RETRYABLE_SQLSTATES = {"40001", "40P01"}
ATTEMPTS = 3


async def accept(app: App, raw: bytes, envelope: Envelope) -> Outcome:
    """Answer only after the message, and all it caused, is committed (or quarantined)."""
    parsed = await _parse(raw)
    failure: BaseException
    for _attempt in range(ATTEMPTS):
        try:
            return await _commit(app, raw, envelope, parsed)
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
    return await _quarantine(app, raw, envelope, parsed, failure)


async def _parse(raw: bytes) -> ParsedMessage:
    if len(raw) > PARSE_IN_THREAD_ABOVE:
        return await asyncio.to_thread(parse, raw)
    return parse(raw)


def _inbound(
    raw: bytes, envelope: Envelope, parsed: ParsedMessage, state: InboundState
) -> InboundMessage:
    return InboundMessage(
        received_at=envelope.received_at,
        channel=envelope.channel.value,
        mail_from=envelope.mail_from,
        rcpt_tos=list(envelope.rcpt_tos),
        message_id=parsed.message_id,
        size=len(raw),
        raw=raw,
        state=state,
        decisions=[],
    )


async def _commit(app: App, raw: bytes, envelope: Envelope, parsed: ParsedMessage) -> Outcome:
    now = app.clock.now()
    async with app.db.transaction() as session:
        inbound = _inbound(raw, envelope, parsed, InboundState.PROCESSED)
        session.add(inbound)
        await session.flush()
        intake = Intake(inbound=inbound, parsed=parsed, envelope=envelope, now=now)
        await process(app.services(session), intake)
        await app.engine.run(session, intake.events, now)
        inbound.ticket_id = intake.ticket.id if intake.ticket else None
        inbound.decisions = intake.decisions
        ticket_id, inbound_id = inbound.ticket_id, inbound.id
    app.wake_sender()
    log.info(
        "inbound.accepted",
        inbound=inbound_id,
        ticket=ticket_id,
        message_id=parsed.message_id,
        channel=envelope.channel.value,
    )
    return Outcome(Fate.ACCEPTED, inbound_id=inbound_id, ticket_id=ticket_id)


async def _quarantine(
    app: App, raw: bytes, envelope: Envelope, parsed: ParsedMessage, failure: BaseException
) -> Outcome:
    """Keep a message we could not process, with why; if even that fails, ask for a retry."""
    expected = isinstance(failure, Quarantine)
    reason = str(failure) if expected else f"{type(failure).__name__}: {failure}"
    try:
        async with app.db.transaction() as session:
            inbound = _inbound(raw, envelope, parsed, InboundState.QUARANTINED)
            inbound.reason = reason
            inbound.error = "" if expected else "".join(traceback.format_exception(failure))
            session.add(inbound)
            await session.flush()
            inbound_id = inbound.id
    except Exception as exc:
        log.error(
            "inbound.deferred", reason=f"quarantine failed: {exc}", message_id=parsed.message_id
        )
        return Outcome(Fate.DEFERRED, reason=str(exc))
    log_method = log.warning if expected else log.error
    log_method(
        "inbound.quarantined",
        inbound=inbound_id,
        reason=reason,
        message_id=parsed.message_id,
        exc_info=None if expected else failure,
    )
    return Outcome(Fate.QUARANTINED, inbound_id=inbound_id, reason=reason)
