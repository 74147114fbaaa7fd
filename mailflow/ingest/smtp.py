"""The SMTP listener: aiosmtpd in the daemon's own loop, answering only after accept()."""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from aiosmtpd.smtp import SMTP, Session
from aiosmtpd.smtp import Envelope as SmtpEnvelope

from mailflow.app import App
from mailflow.ingest import replies
from mailflow.ingest.accept import accept
from mailflow.ingest.envelope import Channel, Envelope, Outcome
from mailflow.ingest.inflight import InFlight

log = structlog.get_logger(__name__)


def reply_for(outcome: Outcome) -> str:
    if not outcome.owned or outcome.inbound_id is None:
        return replies.R451_TRY_LATER
    return replies.r250_queued(outcome.inbound_id)


class Handler:
    """aiosmtpd hooks: RCPT checks the address, DATA hands the message to accept()."""

    def __init__(self, app: App, inflight: InFlight, channel: Channel = Channel.SMTP) -> None:
        self.app = app
        self.inflight = inflight
        self.channel = channel

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: SmtpEnvelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if self.app.addresses.resolve(address) is None:
            log.info("smtp.unknown_recipient", rcpt=address, peer=str(session.peer))
            return replies.R550_NO_SUCH_USER
        envelope.rcpt_tos.append(address)
        return replies.R250_OK

    async def handle_DATA(self, server: SMTP, session: Session, envelope: SmtpEnvelope) -> str:
        raw = envelope.original_content or envelope.content
        assert isinstance(raw, bytes)
        inbound = Envelope(
            channel=self.channel,
            mail_from=envelope.mail_from or "",
            rcpt_tos=tuple(envelope.rcpt_tos),
            received_at=self.app.clock.now(),
        )
        # Shielded: a client that hangs up mid-commit does not cancel the commit.
        return reply_for(await self.inflight.run(accept(self.app, raw, inbound)))


class SmtpListener:
    def __init__(self, app: App, inflight: InFlight) -> None:
        self.app = app
        self.handler = Handler(app, inflight)
        self.server: asyncio.Server | None = None
        self.connections: set[SMTP] = set()

    def _protocol(self) -> SMTP:
        smtp = self.app.config.smtp
        protocol = _TrackedSMTP(
            self.handler,
            data_size_limit=smtp.max_message_size,
            enable_SMTPUTF8=True,
            hostname=smtp.hostname,
            timeout=smtp.timeout.total_seconds(),
            loop=asyncio.get_running_loop(),
        )
        protocol.registry = self.connections
        return protocol

    async def start(self) -> tuple[str, int]:
        smtp = self.app.config.smtp
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(self._protocol, smtp.host, smtp.port)
        host, port = self.server.sockets[0].getsockname()[:2]
        log.info("smtp.listening", host=host, port=port)
        return host, port

    def stop_listening(self) -> None:
        if self.server is not None:
            self.server.close()

    def close_connections(self) -> None:
        for protocol in list(self.connections):
            if protocol.transport is not None:
                protocol.transport.close()


class _TrackedSMTP(SMTP):
    registry: set[SMTP]

    def connection_made(self, transport: Any) -> None:
        self.registry.add(self)
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        self.registry.discard(self)
        super().connection_lost(error)
