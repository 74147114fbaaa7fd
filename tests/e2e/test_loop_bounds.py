"""Mail loops through a naive responder, over real sockets, each bounded by a figure.

The daemon relays through an aiosmtpd server standing in for the world. For mail to the
mailboxes it is told of, that server also plays the worst kind of vacation responder: it
answers every message back into the daemon's SMTP port, with no Auto-Submitted, no
Precedence, no In-Reply-To or References, to the Reply-To or to the From (real responders
do either), keeping the subject ("Re: …") or putting a fixed one. Nothing marks its
answers as automatic, so only mailflow's own bounds can stop the loop: the per-address caps
(agents have a higher one), the per-ticket ceiling, and the rule that mail from an agent's
address that is not an authenticated agent act never notifies its author.

Each test runs the loop until the network has been quiet for a moment, or for SPAN seconds
at most, and then asserts how much mail went out."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Literal

import aiosmtplib
import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from mailflow.db.models import (
    ActorKind,
    History,
    InboundMessage,
    Message,
    OutboxMessage,
    OutboxState,
    Ticket,
)
from tests.conftest import Received, RelaySink, Running, StartDaemon
from tests.support import add_agent, all_rows, build_message, smtp_send

SPAN = 20.0  # seconds: an unbounded loop carries far more than any bound below by then
QUIET = 1.5  # seconds without new mail, nothing under way: the loop has ended
CUSTOMER = "bob@customer.test"
AGENT = "alice@staff.test"
CUSTOMER_LIMIT, AGENT_LIMIT, TICKET_LIMIT = 3, 10, 6
LIMITS = {
    "hygiene": {
        "automatic_mail_limit": CUSTOMER_LIMIT,
        "agent_automatic_mail_limit": AGENT_LIMIT,
        "ticket_automatic_mail_limit": TICKET_LIMIT,
        "automatic_mail_window": "1h",
    }
}


@dataclass(frozen=True)
class Naive:
    """How one mailbox's responder answers."""

    to: Literal["reply-to", "from"]
    subject: Literal["re", "fixed"] = "re"


@dataclass
class Responders(RelaySink):
    """The relay the daemon sends through; for mail to one of `naive`'s mailboxes it
    answers into the daemon's SMTP port, after accepting the mail, as a responder would."""

    naive: dict[str, Naive] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    daemon_port: int = 0
    answers: list[EmailMessage] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    queue: asyncio.Queue[tuple[str, Received]] = field(default_factory=asyncio.Queue)
    busy: bool = False

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        reply = await super().handle_DATA(server, session, envelope)
        for rcpt in envelope.rcpt_tos:
            if rcpt in self.naive:
                self.queue.put_nowait((rcpt, self.received[-1]))
        return reply

    @property
    def idle(self) -> bool:
        return self.queue.empty() and not self.busy

    def answer(self, mailbox: str, mail: Received) -> EmailMessage:
        how = self.naive[mailbox]
        original = mail.message
        target = original["Reply-To"] if how.to == "reply-to" else original["From"]
        answer = EmailMessage()
        answer["From"] = f"{self.names.get(mailbox, '')} <{mailbox}>"
        answer["To"] = target.addresses[0].addr_spec
        subject = str(original["Subject"] or "")
        answer["Subject"] = f"Re: {subject}" if how.subject == "re" else "Away until Monday"
        answer["Date"] = formatdate(localtime=False)
        answer["Message-ID"] = make_msgid(domain=mailbox.rpartition("@")[2])
        # Words no sign of an automatic reply knows: only the bounds can end the loop.
        answer.set_content("Thanks for your mail; I will read it on Monday.")
        return answer

    async def answer_forever(self) -> None:
        while True:
            mailbox, mail = await self.queue.get()
            self.busy = True
            try:
                answer = self.answer(mailbox, mail)
                self.answers.append(answer)
                await aiosmtplib.send(
                    answer,
                    sender=mailbox,
                    recipients=[str(answer["To"])],
                    hostname="127.0.0.1",
                    port=self.daemon_port,
                    start_tls=False,
                    timeout=10,
                )
            except (aiosmtplib.SMTPException, OSError) as exc:
                self.failures.append(f"{mailbox}: {exc}")
            finally:
                self.busy = False


StartLoop = Callable[..., Awaitable[tuple[Running, Responders]]]


@pytest.fixture
async def start_loop(start_daemon: StartDaemon) -> AsyncIterator[StartLoop]:
    """The daemon (with LIMITS, and agents: Alice) relaying through responders for `naive`."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(
            naive: dict[str, Naive], agents: dict[str, str] | None = None
        ) -> tuple[Running, Responders]:
            agents = agents or {AGENT: "Alice Agent"}
            responders = Responders(naive=naive, names=agents)
            loop = asyncio.get_running_loop()
            server = await loop.create_server(
                lambda: SMTP(responders, hostname="world.test", loop=loop), "127.0.0.1", 0
            )
            stack.callback(server.close)
            responders.port = server.sockets[0].getsockname()[1]
            running = await start_daemon({**responders.relay_settings, **LIMITS})
            responders.daemon_port = running.port
            task = asyncio.ensure_future(responders.answer_forever())

            async def cancel() -> None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

            stack.push_async_callback(cancel)
            for address, name in agents.items():
                await add_agent(running.app, address, name)
            return running, responders

        yield start


async def _run_loop(running: Running, responders: Responders) -> None:
    """The customer writes once; wait until the loop has ended, or SPAN has passed."""
    first = build_message(sender=f"Bob Customer <{CUSTOMER}>", message_id="<q1@customer.test>")
    assert (await smtp_send(running.port, first, mail_from=CUSTOMER))[0] == 250
    loop = asyncio.get_running_loop()
    start = since = loop.time()
    seen = -1
    while loop.time() - start < SPAN:
        busy = not responders.idle or await _unsent(running)
        if busy or len(responders.received) != seen:
            seen, since = len(responders.received), loop.time()
        elif loop.time() - since >= QUIET:
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError(f"still looping after {SPAN} s: {len(responders.received)} sent")


async def _unsent(running: Running) -> bool:
    rows = await all_rows(running.app, OutboxMessage)
    return any(r.state in (OutboxState.PENDING, OutboxState.SENDING) for r in rows)


async def _suppressed(running: Running) -> list[str]:
    return [
        h.details["reason"]
        for h in await all_rows(running.app, History)
        if h.action == "automatic_mail_suppressed"
    ]


def _to(responders: Responders, address: str) -> list[str]:
    return [str(m.message["Subject"]) for m in responders.to(address)]


# ---------------------------------------------------------------------------- customer side


@pytest.mark.parametrize("how", [Naive("reply-to"), Naive("from", "fixed")])
async def test_a_naive_responder_on_the_customers_side_is_bounded(
    start_loop: StartLoop, how: Naive
) -> None:
    running, responders = await start_loop({CUSTOMER: how})
    await _run_loop(running, responders)

    assert responders.failures == []
    if how.subject == "re":
        # Its answer on the customer's signed address is the customer's reply to ticket 1:
        # Alice hears of it, the customer hears nothing more. Auto-reply, two notices.
        assert len(responders.received) == 3
        assert len(await all_rows(running.app, Ticket)) == 1
    else:
        # "Away until Monday" to the plain address opens a ticket each time; the customer's
        # cap ends it: CUSTOMER_LIMIT auto-replies, one notice to Alice per ticket.
        assert len(_to(responders, CUSTOMER)) == CUSTOMER_LIMIT
        assert len(_to(responders, AGENT)) == CUSTOMER_LIMIT + 1
        assert len(await all_rows(running.app, Ticket)) == CUSTOMER_LIMIT + 1
        assert await _suppressed(running) == ["per-address limit on automatic mail"]


# ---------------------------------------------------------------------------- agent's mailbox


async def test_an_agents_responder_answering_the_from_writes_one_unverified_note(
    start_loop: StartLoop,
) -> None:
    """Its answer goes to support@ from Alice's address, unauthenticated: a note on ticket 1
    flagged as from an unverified sender, told to nobody (Alice wrote it, as far as
    anyone can tell), sent to nobody. Today's main opens a ticket for it, tells Alice, and
    her responder answers that, forever."""
    running, responders = await start_loop({AGENT: Naive("from")})
    await _run_loop(running, responders)

    assert responders.failures == []
    assert len(responders.received) == 2, "the auto-reply and Alice's one notice"
    assert len(responders.answers) == 1
    assert len(await all_rows(running.app, Ticket)) == 1
    note = (await all_rows(running.app, Message))[-1]
    assert (note.from_address, note.author_kind, note.public) == (
        AGENT,
        ActorKind.UNVERIFIED,
        False,
    )
    assert (await all_rows(running.app, Ticket))[0].status == "open"


async def test_an_agents_responder_answering_the_from_with_its_own_subject_is_told_nothing(
    start_loop: StartLoop,
) -> None:
    """ "Away until Monday" to support@ from Alice's address names no ticket: it opens one,
    but mail from an agent's address that is not an authenticated agent act notifies its
    author of nothing, the auto-reply included."""
    running, responders = await start_loop({AGENT: Naive("from", "fixed")})
    await _run_loop(running, responders)

    assert responders.failures == []
    assert len(responders.answers) == 1
    assert len(await all_rows(running.app, Ticket)) == 2
    assert _to(responders, AGENT) == ["[#1] Re: Printer is on fire"]
    assert len(responders.received) == 2


async def test_an_agents_responder_answering_the_reply_to_is_answered_once(
    start_loop: StartLoop,
) -> None:
    """On her signed address, from her own address, nothing tells the answer from Alice's:
    it is relayed to the customer once, and the customer, no machine, stops there."""
    running, responders = await start_loop({AGENT: Naive("reply-to")})
    await _run_loop(running, responders)

    assert responders.failures == []
    assert len(responders.answers) == 1
    assert len(_to(responders, CUSTOMER)) == 2
    assert len(responders.received) == 3


# ---------------------------------------------------------------------------- both


async def test_responders_on_both_sides_of_one_ticket_stop_at_the_tickets_ceiling(
    start_loop: StartLoop,
) -> None:
    """Both answer the Reply-To: the customer's answer is a customer reply, which notifies
    Alice; her answer is relayed to the customer as hers, which answers again. Each round
    is one automatic mail on ticket 1 (the notice), so the per-ticket ceiling ends it:
    TICKET_LIMIT automatic mails in all, and one relayed answer per notice."""
    running, responders = await start_loop({CUSTOMER: Naive("reply-to"), AGENT: Naive("reply-to")})
    await _run_loop(running, responders)

    assert responders.failures == []
    notices = _to(responders, AGENT)
    relayed = len(_to(responders, CUSTOMER)) - 1  # besides the auto-reply
    assert len(notices) == TICKET_LIMIT - 1
    assert relayed == len(notices)
    assert len(responders.received) == 2 * TICKET_LIMIT - 1
    assert len(await all_rows(running.app, Ticket)) == 1
    assert set(await _suppressed(running)) == {"per-ticket limit on automatic mail"}


async def test_responders_on_both_sides_across_new_tickets_stop_at_the_agents_cap(
    start_loop: StartLoop,
) -> None:
    """The customer's responder writes "Away until Monday" to support@, so each of its
    answers is a new ticket; Alice's answers each notice on her signed address, and is
    relayed to the customer. Only the agent's cap ends it: AGENT_LIMIT notices."""
    running, responders = await start_loop(
        {CUSTOMER: Naive("from", "fixed"), AGENT: Naive("reply-to")}
    )
    await _run_loop(running, responders)

    assert responders.failures == []
    assert len(_to(responders, AGENT)) == AGENT_LIMIT
    tickets = len(await all_rows(running.app, Ticket))
    assert tickets <= AGENT_LIMIT + CUSTOMER_LIMIT + 1
    # Per ticket at most an auto-reply, a notice and a relayed answer.
    assert len(responders.received) <= 3 * tickets
    assert "per-address limit on automatic mail" in await _suppressed(running)
    assert len(await all_rows(running.app, InboundMessage)) == len(responders.answers) + 1


async def test_responders_in_two_agents_mailboxes_stop_at_the_tickets_ceiling(
    start_loop: StartLoop,
) -> None:
    """Alice's and Carol's responders answer the From, support@, keeping the tag: each
    answer is a note on ticket 1 from an address that only claims to be the agent's, told
    to the other agent (never to the one it claims), whose responder answers again. The
    per-ticket ceiling ends it."""
    carol = "carol@staff.test"
    running, responders = await start_loop(
        {AGENT: Naive("from"), carol: Naive("from")},
        agents={AGENT: "Alice Agent", carol: "Carol Agent"},
    )
    await _run_loop(running, responders)

    assert responders.failures == []
    assert len(responders.received) == TICKET_LIMIT
    assert len(await all_rows(running.app, Ticket)) == 1
    notes = [m for m in await all_rows(running.app, Message) if not m.public]
    assert {m.author_kind for m in notes} == {ActorKind.UNVERIFIED}
    assert set(await _suppressed(running)) == {"per-ticket limit on automatic mail"}
