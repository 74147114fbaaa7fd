"""SMTP and LMTP listeners: aiosmtpd in the daemon's own loop, answering only after accept()."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, AnyStr

import structlog
from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import MISSING, SMTP, Session
from aiosmtpd.smtp import Envelope as SmtpEnvelope

from mailflow.app import App
from mailflow.ingest import replies
from mailflow.ingest.accept import accept
from mailflow.ingest.data import read_data
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
        self.connections: set[_Tracked] = set()
        # One future per session in DATA, done when its reply is sent.
        self.transactions: set[asyncio.Future[None]] = set()
        self.stopping = False
        self.where = ""

    def _protocol(self) -> _Tracked:
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
        protocol.transactions = self.transactions
        if self.stopping:
            protocol.refuse_commands()
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
        """No new session, and no new transaction in the open ones: each gets 421 on its next
        command. A message already in DATA goes on to its answer."""
        self.stopping = True
        for protocol in list(self.connections):
            protocol.refuse_commands()
        if self.server is not None:
            self.server.close()
            socket_path = self.app.config.lmtp.socket
            if self.channel is Channel.LMTP and socket_path is not None:
                Path(self.app.config.path(socket_path)).unlink(missing_ok=True)

    def close_connections(self) -> None:
        """The sessions left: told 421 unsolicited (RFC 5321 §3.8), then closed."""
        for protocol in list(self.connections):
            if isinstance(protocol.transport, asyncio.WriteTransport):
                protocol.transport.write(replies.R421_SHUTTING_DOWN.encode() + b"\r\n")
                protocol.transport.close()


# A line may be as long as the message may be large, plus its CRLF and a stuffed dot.
LINE_SLACK = 3


class _Tracked(SMTP):
    """Keeps a registry of open connections and of transactions in DATA, for the stop."""

    registry: set[_Tracked]
    transactions: set[asyncio.Future[None]]

    def __init__(self, *args: Any, line_length_limit: int, **kwargs: Any) -> None:
        # RFC 5321 §4.5.3.1.6 allows a server to refuse lines past 1,000 octets, but real
        # mail breaks that rule and Postfix accepts it; refusing bounces a person's mail.
        # aiosmtpd reads this before it sizes its stream reader.
        self.line_length_limit = line_length_limit
        super().__init__(*args, **kwargs)

    def connection_made(self, transport: Any) -> None:
        self.registry.add(self)
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        self.registry.discard(self)
        super().connection_lost(error)

    async def smtp_DATA(self, arg: str) -> None:
        """aiosmtpd's DATA, reading the message with read_data, and registered as a
        transaction under way until its reply is sent."""
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos or arg:
            refusal = replies.R501_DATA_SYNTAX if self.envelope.rcpt_tos else replies.R503_NEED_RCPT
            await self.push(refusal)
            return
        done: asyncio.Future[None] = self.loop.create_future()
        self.transactions.add(done)
        try:
            await self.push(replies.R354_START_DATA)
            content = await read_data(self._reader, self.data_size_limit, self.line_length_limit)
            if isinstance(content, str):  # refused: the reply still sees the envelope (LMTP)
                await self.push(content)
                self._set_post_data_state()  # type: ignore[no-untyped-call]
                return
            self.envelope.content = self.envelope.original_content = content
            status = await self._call_handler_hook("DATA")
            self._set_post_data_state()  # type: ignore[no-untyped-call]
            await self.push(replies.R250_OK if status is MISSING else status)
        finally:
            self.transactions.discard(done)
            done.set_result(None)

    def refuse_commands(self) -> None:
        """Every command from now on is answered 421 and the connection closed. aiosmtpd
        looks each command up in this table (built at connection time) before running it."""
        self._smtp_methods = {command: self._shutting_down for command in self._smtp_methods}

    async def _shutting_down(self, arg: str | None) -> None:
        await self.push(replies.R421_SHUTTING_DOWN)
        if self.transport is not None:
            self.transport.close()


class _TrackedSMTP(_Tracked):
    pass


# What DATA answers, once, when it refuses the data itself before our handler sees it.
_DATA_REFUSALS = (replies.R552_TOO_MUCH_DATA, replies.R500_LINE_TOO_LONG)


class _TrackedLMTP(_Tracked, LMTP):
    async def push(self, status: AnyStr) -> None:
        """RFC 2033 §4.2: after DATA, a reply for every accepted recipient, also when the
        message is refused as too large (an MTA waits for them all, then gives up)."""
        text = status if isinstance(status, str) else status.decode("utf-8", "replace")
        if text in _DATA_REFUSALS and self.envelope is not None:
            for _ in self.envelope.rcpt_tos[1:]:
                await super().push(status)
        await super().push(status)
