"""Mail loops over real sockets. Two helpdesks that write to each other, and a vacation
responder that answers everything and marks nothing, meet only mailflow's own defences:
RFC 3834 classification, threading, and the per-address cap on automatic mail.

The network: daemons A (support@a.test) and B (support@b.test) both relay through one
aiosmtpd "router", which counts every message and forwards it by the recipient's domain:
@a.test to A, @b.test to B, @vacation.test to the vacation responder."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any, Literal

import aiosmtplib
import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from mailflow.app import App
from mailflow.config import from_mapping
from mailflow.daemon import Daemon
from mailflow.db.models import (
    AutomaticMail,
    History,
    InboundMessage,
    InboundState,
    OutboxMessage,
    OutboxState,
    Ticket,
)
from tests.conftest import MakeConfig, Received
from tests.support import all_rows, build_message, smtp_send

QUIET = 1.5  # seconds without a new message before the network counts as settled
SETTLE_WITHIN = 10.0
BOSS = "boss@vacation.test"

# ---------------------------------------------------------------------------- the network


async def _serve(handler: object, hostname: str) -> tuple[asyncio.Server, int]:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, hostname=hostname, loop=loop), "127.0.0.1", 0
    )
    return server, int(server.sockets[0].getsockname()[1])


async def _send(port: int, raw: bytes, mail_from: str, rcpt_tos: list[str]) -> None:
    await aiosmtplib.send(
        raw,
        sender=mail_from,
        recipients=rcpt_tos,
        hostname="127.0.0.1",
        port=port,
        start_tls=False,
        timeout=10,
    )


def _domain(address: str) -> str:
    return address.rpartition("@")[2].lower()


def _without_headers(raw: bytes, names: tuple[bytes, ...]) -> bytes:
    """The message without the named header fields (and their continuation lines)."""
    head, separator, body = raw.partition(b"\r\n\r\n")
    kept: list[bytes] = []
    dropping = False
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t"):
            if not dropping:
                kept.append(line)
            continue
        dropping = line.split(b":", 1)[0].strip().lower() in names
        if not dropping:
            kept.append(line)
    return b"\r\n".join(kept) + separator + body


@dataclass
class Router:
    """The relay both daemons send through. It answers 250 at once and forwards from a task,
    with the envelope it received, so that no sender waits on a chain of deliveries."""

    routes: dict[str, int] = field(default_factory=dict)  # recipient domain → SMTP port
    # A relay that "cleans" RFC 3834 markers off the mail it carries, as some gateways do.
    strip: tuple[bytes, ...] = ()
    carried: list[Received] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    queue: asyncio.Queue[Received] = field(default_factory=asyncio.Queue)
    busy: bool = False

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content
        assert isinstance(raw, bytes)
        mail = Received(envelope.mail_from or "", list(envelope.rcpt_tos), raw)
        self.carried.append(mail)
        self.queue.put_nowait(mail)
        return "250 OK"

    @property
    def idle(self) -> bool:
        return self.queue.empty() and not self.busy

    async def forward_forever(self) -> None:
        while True:
            mail = await self.queue.get()
            self.busy = True
            try:
                await self._forward(mail)
            finally:
                self.busy = False

    async def _forward(self, mail: Received) -> None:
        raw = _without_headers(mail.raw, self.strip) if self.strip else mail.raw
        by_domain: dict[str, list[str]] = {}
        for rcpt in mail.rcpt_tos:
            by_domain.setdefault(_domain(rcpt), []).append(rcpt)
        for domain, rcpts in by_domain.items():
            port = self.routes.get(domain)
            if port is None:
                self.failures.append(f"no route to {domain}")
                continue
            try:
                await _send(port, raw, mail.mail_from, rcpts)
            except (aiosmtplib.SMTPException, OSError) as exc:
                self.failures.append(f"{rcpts}: {exc}")

    def to(self, address: str) -> list[Received]:
        return [m for m in self.carried if address in m.rcpt_tos]


@dataclass
class Vacation:
    """The worst kind of out-of-office responder: it answers every message, sets no
    Auto-Submitted, Precedence or X-Autoreply header, no In-Reply-To or References, and
    writes to the From address (or, as RFC 3834 §4 would have it, to the return path)."""

    subject: Callable[[str], str]
    answer: Literal["from", "return-path"] = "from"
    text: str = "I am out of the office until Monday and will read your mail then."
    router_port: int = 0
    received: list[Received] = field(default_factory=list)
    replies: list[EmailMessage] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    queue: asyncio.Queue[Received] = field(default_factory=asyncio.Queue)
    busy: bool = False

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content
        assert isinstance(raw, bytes)
        mail = Received(envelope.mail_from or "", list(envelope.rcpt_tos), raw)
        self.received.append(mail)
        self.queue.put_nowait(mail)
        return "250 OK"

    @property
    def idle(self) -> bool:
        return self.queue.empty() and not self.busy

    def reply_to(self, mail: Received) -> EmailMessage:
        original = message_from_bytes(mail.raw, _class=EmailMessage, policy=policy.default)
        assert isinstance(original, EmailMessage)
        author = original["From"].addresses[0].addr_spec
        to = author if self.answer == "from" else mail.mail_from
        reply = EmailMessage()
        reply["From"] = f"The Boss <{BOSS}>"
        reply["To"] = to
        reply["Subject"] = self.subject(str(original["Subject"] or ""))
        reply["Date"] = formatdate(localtime=False)
        reply["Message-ID"] = make_msgid(domain="vacation.test")
        reply.set_content(self.text)
        return reply

    async def answer_forever(self) -> None:
        while True:
            mail = await self.queue.get()
            self.busy = True
            try:
                reply = self.reply_to(mail)
                self.replies.append(reply)
                raw = reply.as_bytes(policy=policy.SMTP)
                await _send(self.router_port, raw, BOSS, [str(reply["To"])])
            except (aiosmtplib.SMTPException, OSError) as exc:
                self.failures.append(f"{mail.rcpt_tos}: {exc}")
            finally:
                self.busy = False


@dataclass
class Network:
    router: Router
    a: Daemon
    b: Daemon
    vacation: Vacation | None

    @property
    def a_port(self) -> int:
        assert self.a.smtp_address is not None
        return self.a.smtp_address[1]

    async def settle(self) -> None:
        """Wait until the router has carried nothing new for QUIET seconds while nothing is
        under way anywhere: no forwarding, no reply being written, no mail left to send."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SETTLE_WITHIN
        seen, since = -1, loop.time()
        while True:
            busy = not self.router.idle or (self.vacation is not None and not self.vacation.idle)
            busy = busy or await _unsent(self.a.app) or await _unsent(self.b.app)
            if busy or len(self.router.carried) != seen:
                seen, since = len(self.router.carried), loop.time()
            elif loop.time() - since >= QUIET:
                return
            if loop.time() > deadline:
                raise AssertionError(
                    f"still busy after {SETTLE_WITHIN} s: {len(self.router.carried)} carried"
                )
            await asyncio.sleep(0.05)


async def _unsent(app: App) -> bool:
    rows = await all_rows(app, OutboxMessage)
    return any(r.state in (OutboxState.PENDING, OutboxState.SENDING) for r in rows)


def _types(domain: str) -> list[dict[str, Any]]:
    """The two shipped types (the default rules name both) on this helpdesk's domain."""
    return [
        {
            "name": "ticket",
            "addresses": [f"support@{domain}"],
            "statuses": ["open", "agent waiting", "customer waiting", "resolved", "closed"],
            "closed": ["resolved", "closed"],
            "default_status": "open",
        },
        {
            "name": "suggestion",
            "addresses": [f"suggestion@{domain}"],
            "statuses": ["new", "under review", "accepted", "rejected", "done"],
            "closed": ["rejected", "done"],
            "default_status": "new",
        },
    ]


StartNetwork = Callable[..., Awaitable[Network]]


@pytest.fixture
async def start_network(make_config: MakeConfig, tmp_path: Path) -> AsyncIterator[StartNetwork]:
    """Start the router, A, B and (optionally) the vacation responder in this test's loop."""
    async with contextlib.AsyncExitStack() as stack:

        async def serve(handler: object, hostname: str) -> int:
            server, port = await _serve(handler, hostname)

            async def close() -> None:
                server.close()
                await server.wait_closed()

            stack.push_async_callback(close)
            return port

        def run_forever(coroutine: Awaitable[None]) -> None:
            task: asyncio.Task[None] = asyncio.ensure_future(coroutine)

            async def cancel() -> None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

            stack.push_async_callback(cancel)

        async def start_daemon(app: App) -> Daemon:
            daemon = Daemon(app)
            await daemon.start()
            stack.push_async_callback(daemon.stop)
            assert daemon.smtp_address is not None
            return daemon

        async def start(
            *,
            hygiene: dict[str, Any] | None = None,
            vacation: Vacation | None = None,
            strip: tuple[bytes, ...] = (),
        ) -> Network:
            router = Router(strip=strip)
            router_port = await serve(router, "router.test")
            run_forever(router.forward_forever())
            relay = {"host": "127.0.0.1", "port": router_port, "security": "none"}
            config_a = make_config(
                {
                    "smtp": {"hostname": "a.test"},
                    "instance": {"name": "A Support"},
                    "outbox": {"relay": relay},
                    "hygiene": hygiene or {},
                    "types": _types("a.test"),
                }
            )
            # B always has its own SQLite file: two daemons cannot share one schema.
            config_b = from_mapping(
                {
                    "database": {"url": f"sqlite+aiosqlite:///{tmp_path / 'b.db'}"},
                    "smtp": {"port": 0, "hostname": "b.test"},
                    "instance": {"name": "B Support"},
                    "outbox": {"relay": relay, "poll_interval": "1s"},
                    "types": _types("b.test"),
                },
                "b.toml",
                tmp_path / "b",
            )
            a = await start_daemon(App(config_a))
            b = await start_daemon(App(config_b))
            assert a.smtp_address is not None
            assert b.smtp_address is not None
            router.routes.update({"a.test": a.smtp_address[1], "b.test": b.smtp_address[1]})
            if vacation is not None:
                vacation.router_port = router_port
                router.routes["vacation.test"] = await serve(vacation, "vacation.test")
                run_forever(vacation.answer_forever())
            return Network(router, a, b, vacation)

        yield start


async def _inbound(app: App) -> list[tuple[InboundState, str | None]]:
    return [(i.state, i.automatic) for i in await all_rows(app, InboundMessage)]


async def _suppressed(app: App) -> list[tuple[int, str, str]]:
    return [
        (h.ticket_id, h.details["to"], h.details["reason"])
        for h in await all_rows(app, History)
        if h.action == "automatic_mail_suppressed"
    ]


# ---------------------------------------------------------------------------- two helpdesks


async def test_two_helpdesks_writing_to_each_other_exchange_one_message(
    start_network: StartNetwork,
) -> None:
    net = await start_network()
    first = build_message(
        sender="B Support <support@b.test>",
        to="support@a.test",
        subject="Your invoice",
        message_id="<first@b.test>",
    )
    code, _ = await smtp_send(net.a_port, first, mail_from="support@b.test")
    assert code == 250
    await net.settle()

    # A: support@b.test is not one of A's addresses (its loop check discards only mail From
    # its own), so the message opens ticket 1 and the rule "auto-reply to a new ticket"
    # queues one auto-reply, marked Auto-Submitted: auto-replied. B: that header makes it an
    # auto-reply (mail/automatic.py _auto_reply), which names no ticket of B's, so B stores
    # it only (pipeline/apply.py _store_only) and answers nothing. One message in all.
    (auto_reply,) = net.router.carried
    assert auto_reply.rcpt_tos == ["support@b.test"]
    assert auto_reply.mail_from.startswith("support+bounce-1-")
    assert auto_reply.message["Auto-Submitted"] == "auto-replied"
    assert net.router.failures == []
    assert len(await all_rows(net.a.app, Ticket)) == 1
    assert await _inbound(net.a.app) == [(InboundState.PROCESSED, None)]
    assert await all_rows(net.b.app, Ticket) == []
    assert await _inbound(net.b.app) == [(InboundState.STORED_ONLY, "auto_reply")]
    (stored,) = await all_rows(net.b.app, InboundMessage)
    assert stored.reason == "automatic reply, no ticket"


async def test_two_helpdesks_behind_a_relay_that_strips_auto_submitted_stop_by_threading(
    start_network: StartNetwork,
) -> None:
    net = await start_network(strip=(b"auto-submitted", b"x-auto-response-suppress"))
    first = build_message(sender="support@b.test", to="support@a.test", message_id="<first@b.test>")
    assert (await smtp_send(net.a_port, first, mail_from="support@b.test"))[0] == 250
    await net.settle()

    # Without its marker A's auto-reply looks like a person's mail to B: B opens ticket 1
    # for "customer" support@a.test and auto-replies (2 messages). That answer carries
    # In-Reply-To: <A's auto-reply>, a Message-ID A keeps for its ticket 1 (outbox/queue.py
    # enqueue → add_ref), so A threads it as a customer reply on ticket 1. A customer reply
    # triggers no mail to the customer in the default rules, and there are no agents to
    # notify: the exchange ends after 2 messages, one each way.
    assert [m.rcpt_tos for m in net.router.carried] == [["support@b.test"], ["support@a.test"]]
    assert net.router.failures == []
    arrived = [i.raw.split(b"\r\n\r\n")[0] for i in await all_rows(net.a.app, InboundMessage)]
    assert b"Auto-Submitted" not in arrived[1], "the relay took the marker off"
    assert [t.id for t in await all_rows(net.a.app, Ticket)] == [1]
    assert await _inbound(net.a.app) == [(InboundState.PROCESSED, None)] * 2
    assert (await all_rows(net.a.app, InboundMessage))[1].ticket_id == 1
    assert len(await all_rows(net.b.app, Ticket)) == 1
    assert await _inbound(net.b.app) == [(InboundState.PROCESSED, None)]


# ---------------------------------------------------------------------------- vacation


async def _write_to_a(net: Network) -> None:
    question = build_message(
        sender=f"The Boss <{BOSS}>",
        to="support@a.test",
        subject="Printer is on fire",
        message_id="<question@vacation.test>",
    )
    assert (await smtp_send(net.a_port, question, mail_from=BOSS))[0] == 250
    await net.settle()


def _out_of_office(subject: str) -> str:
    return f"Out of Office: {subject}"


def _re(subject: str) -> str:
    return f"Re: {subject}"


def _fixed(subject: str) -> str:
    return "Away until Monday"


# Words no signal of mail/signals.py knows: the cap, not recognition, must stop this one.
UNMARKED = "Thanks for your mail; I will read it on Monday."


@pytest.mark.parametrize("answer", ["from", "return-path"])
async def test_out_of_office_subject_ends_the_loop_after_one_round(
    start_network: StartNetwork, answer: Literal["from", "return-path"]
) -> None:
    vacation = Vacation(subject=_out_of_office, answer=answer)
    net = await start_network(hygiene={"automatic_mail_limit": 3}, vacation=vacation)
    await _write_to_a(net)

    # A opens ticket 1 and auto-replies; the responder answers "Out of Office: [#1] Re: …",
    # which the subject check in mail/automatic.py takes for an auto-reply; the [#1] tag
    # and boss being ticket 1's customer put it on ticket 1, stored only. 2 messages.
    auto_reply, out_of_office = net.router.carried
    assert auto_reply.rcpt_tos == [BOSS]
    verp = auto_reply.mail_from
    assert verp.startswith("support+bounce-1-"), "A's return path names outbox row 1"
    assert out_of_office.rcpt_tos == ["support@a.test" if answer == "from" else verp]
    assert net.router.failures == vacation.failures == []
    assert vacation.replies[0]["Subject"] == "Out of Office: [#1] Re: Printer is on fire"
    assert await _inbound(net.a.app) == [
        (InboundState.PROCESSED, None),
        (InboundState.STORED_ONLY, "auto_reply"),
    ]
    assert (await all_rows(net.a.app, InboundMessage))[1].ticket_id == 1
    assert len(await all_rows(net.a.app, Ticket)) == 1
    assert len(await all_rows(net.a.app, AutomaticMail)) == 1
    assert await _suppressed(net.a.app) == []


async def test_unmarked_reply_keeping_the_tag_is_a_note_on_its_ticket_and_ends_the_loop(
    start_network: StartNetwork,
) -> None:
    vacation = Vacation(subject=_re, text=UNMARKED)
    net = await start_network(hygiene={"automatic_mail_limit": 3}, vacation=vacation)
    await _write_to_a(net)

    # "Re: [#1] Re: …" from a human-looking sender: nothing marks it automatic, but the tag
    # threads it onto ticket 1. A tag proves nothing of its sender, so it is a note from an
    # unverified sender, which moves nothing and is told to no customer. 2 messages; the
    # cap is never approached.
    assert len(net.router.carried) == 2
    assert net.router.failures == vacation.failures == []
    assert await _inbound(net.a.app) == [(InboundState.PROCESSED, None)] * 2
    assert (await all_rows(net.a.app, InboundMessage))[1].ticket_id == 1
    assert len(await all_rows(net.a.app, Ticket)) == 1
    assert (await all_rows(net.a.app, Ticket))[0].status == "open"
    assert len(await all_rows(net.a.app, AutomaticMail)) == 1
    assert await _suppressed(net.a.app) == []


async def test_responder_dropping_subject_and_markers_is_bounded_by_the_cap(
    start_network: StartNetwork,
) -> None:
    limit = 3
    vacation = Vacation(subject=_fixed, answer="from", text=UNMARKED)
    net = await start_network(
        hygiene={"automatic_mail_limit": limit, "automatic_mail_window": "1h"}, vacation=vacation
    )
    await _write_to_a(net)

    # "Away until Monday", written to the From address, carries no marker, no tag and no
    # threading header, so each one opens a new ticket whose auto-reply the responder
    # answers again. Only the per-address cap (outbox/mailer.py over_automatic_limit) stops it: A
    # auto-replies to boss `limit` times (tickets 1..3), the responder answers each, and
    # the third answer opens ticket 4, whose auto-reply is suppressed. 2 × limit messages.
    assert len(net.router.carried) == 2 * limit
    assert net.router.failures == vacation.failures == []
    auto_replies = net.router.to(BOSS)
    assert len(auto_replies) == limit
    assert [m.message["Subject"] for m in auto_replies] == [
        f"[#{n}] Re: {subject}"
        for n, subject in enumerate(["Printer is on fire", *["Away until Monday"] * 2], 1)
    ]
    assert all(m.message["Auto-Submitted"] == "auto-replied" for m in auto_replies)
    assert len(vacation.replies) == limit
    inbound = await all_rows(net.a.app, InboundMessage)
    assert [(i.state, i.automatic, i.ticket_id) for i in inbound] == [
        (InboundState.PROCESSED, None, n) for n in range(1, limit + 2)
    ]
    assert len(await all_rows(net.a.app, Ticket)) == limit + 1
    assert len(await all_rows(net.a.app, AutomaticMail)) == limit
    assert [r.rcpt_tos for r in await all_rows(net.a.app, OutboxMessage)] == [[BOSS]] * limit
    assert await _suppressed(net.a.app) == [
        (limit + 1, BOSS, "per-address limit on automatic mail")
    ]


async def test_responder_writing_to_the_return_path_ends_the_loop_after_one_round(
    start_network: StartNetwork,
) -> None:
    vacation = Vacation(subject=_fixed, answer="return-path")
    net = await start_network(hygiene={"automatic_mail_limit": 3}, vacation=vacation)
    await _write_to_a(net)

    # The same unmarked responder, answering the return path as RFC 3834 §4 asks: only
    # machines write to support+bounce-N-…@a.test, so it is an auto-reply, stored on the
    # ticket of outbox row N and answered by nothing. 2 messages.
    auto_reply, answer = net.router.carried
    assert answer.rcpt_tos == [auto_reply.mail_from]
    assert await _inbound(net.a.app) == [
        (InboundState.PROCESSED, None),
        (InboundState.STORED_ONLY, "auto_reply"),
    ]
    assert (await all_rows(net.a.app, InboundMessage))[1].ticket_id == 1
    assert len(await all_rows(net.a.app, Ticket)) == 1
    assert await _suppressed(net.a.app) == []
