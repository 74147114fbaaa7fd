"""SMTP and LMTP listeners: aiosmtpd in the daemon's own loop, answering only after accept()."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, AnyStr

import structlog
from aiosmtpd.lmtp import LMTP
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

    def __init__(self, app: App, inflight: InFlight, channel: Channel) -> None:
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
            # MAIL FROM:<> arrives as ""; keep the null return path recognisable.
            mail_from=envelope.mail_from or "<>",
            rcpt_tos=tuple(envelope.rcpt_tos),
            received_at=self.app.clock.now(),
        )
        # Shielded: a client that hangs up mid-commit does not cancel the commit.
        reply = reply_for(await self.inflight.run(accept(self.app, raw, inbound)))
        if self.channel is Channel.LMTP:
            # RFC 2033 §4.2: one reply per accepted recipient. The message is kept once, so
            # every recipient shares its fate.
            return "\r\n".join(reply for _ in envelope.rcpt_tos)
        return reply


class MailListener:
    """An SMTP or LMTP server on a TCP port or (LMTP) a Unix socket."""

    def __init__(self, app: App, inflight: InFlight, channel: Channel = Channel.SMTP) -> None:
        self.app = app
        self.channel = channel
        self.handler = Handler(app, inflight, channel)
        self.server: asyncio.Server | None = None
        self.connections: set[SMTP] = set()
        self.where = ""

    def _protocol(self) -> SMTP:
        smtp = self.app.config.smtp
        kind = _TrackedLMTP if self.channel is Channel.LMTP else _TrackedSMTP
        protocol = kind(
            self.handler,
            line_length_limit=smtp.max_message_size + LINE_SLACK,
            data_size_limit=smtp.max_message_size,
            enable_SMTPUTF8=True,
            hostname=smtp.hostname,
            timeout=smtp.timeout.total_seconds(),
            loop=asyncio.get_running_loop(),
        )
        protocol.registry = self.connections
        return protocol

    async def start(self) -> str:
        """Listen; return where, for the log and for tests."""
        loop = asyncio.get_running_loop()
        lmtp = self.app.config.lmtp
        socket_path = lmtp.socket if self.channel is Channel.LMTP else None
        if socket_path is not None:
            path = self.app.config.path(socket_path)
            path.unlink(missing_ok=True)
            self.server = await loop.create_unix_server(self._protocol, str(path))
            where = str(path)
        else:
            settings = lmtp if self.channel is Channel.LMTP else self.app.config.smtp
            self.server = await loop.create_server(self._protocol, settings.host, settings.port)
            host, port = self.server.sockets[0].getsockname()[:2]
            where = f"{host}:{port}"
        log.info(f"{self.channel.value}.listening", at=where)
        self.where = where
        return where

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    def stop_listening(self) -> None:
        if self.server is not None:
            self.server.close()
            socket_path = self.app.config.lmtp.socket
            if self.channel is Channel.LMTP and socket_path is not None:
                Path(self.app.config.path(socket_path)).unlink(missing_ok=True)

    def close_connections(self) -> None:
        for protocol in list(self.connections):
            if protocol.transport is not None:
                protocol.transport.close()


# A line may be as long as the message may be large, plus its CRLF and a stuffed dot.
LINE_SLACK = 3


class _Tracked:
    """Keeps a registry of open connections, to close them at shutdown."""

    registry: set[SMTP]

    def __init__(self, *args: Any, line_length_limit: int, **kwargs: Any) -> None:
        # RFC 5321 §4.5.3.1.6 allows a server to refuse lines past 1,000 octets, but real
        # mail breaks that rule and Postfix accepts it; refusing bounces a person's mail.
        # aiosmtpd reads this before it sizes its stream reader.
        self.line_length_limit = line_length_limit
        super().__init__(*args, **kwargs)

    def connection_made(self, transport: Any) -> None:
        self.registry.add(self)  # type: ignore[arg-type]
        super().connection_made(transport)  # type: ignore[misc]

    def connection_lost(self, error: Exception | None) -> None:
        self.registry.discard(self)
        super().connection_lost(error)  # type: ignore[misc]


class _TrackedSMTP(_Tracked, SMTP):
    pass


# What aiosmtpd answers, once, when it refuses the data itself before our handler sees it.
_DATA_REFUSALS = ("552 Error: Too much mail data", "500 Line too long (see RFC5321 4.5.3.1.6)")


class _TrackedLMTP(_Tracked, LMTP):
    async def push(self, status: AnyStr) -> None:
        """RFC 2033 §4.2: after DATA, a reply for every accepted recipient, also when the
        message is refused as too large (an MTA waits for them all, then gives up)."""
        text = status if isinstance(status, str) else status.decode("utf-8", "replace")
        if text in _DATA_REFUSALS and self.envelope is not None:
            for _ in self.envelope.rcpt_tos[1:]:
                await super().push(status)
        await super().push(status)
