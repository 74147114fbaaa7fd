"""Every way a message can claim a ticket, from everyone who might send it: only the agent on
her own signed address, and the customer's side with proof (their signed address or the
ticket's References), change the ticket. Everyone else's mail, with commands in it, leaves
the ticket's status, assignee, priority and Cc as they were, reaches no customer, and is
told to no agent whose address it claims."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mailflow.app import App
from mailflow.db.models import OutboxMessage, Participant, Ticket
from mailflow.ingest.accept import accept
from mailflow.ingest.envelope import Channel, Envelope, Fate
from mailflow.tokens import ReplyToken, Role
from tests.conftest import MakeConfig
from tests.support import add_agent, build_message

OURS = "support@example.com"
BOB, MIA = "bob@customer.test", "mia@customer.test"  # the customer, and Mia in Cc
ALICE, CAROL, EVE = "alice@staff.test", "carol@staff.test", "eve@evil.test"
SENDERS = (BOB, MIA, ALICE, CAROL, EVE)
WAYS_IN = ("plain", "plus-address", "customer's signed address", "alice's signed address")
AGENTS = (ALICE, CAROL)


@dataclass(frozen=True)
class Snapshot:
    status: str
    priority: str
    assignee_id: int | None
    participants: frozenset[str]
    outbox: int


@dataclass
class Desk:
    app: App
    runner: asyncio.Runner
    serial: itertools.count[int]

    def accept(self, message: EmailMessage, mail_from: str, to: str) -> None:
        raw = message.as_bytes()
        envelope = Envelope(Channel.INJECT, mail_from, (to,), self.app.clock.now())
        outcome = self.runner.run(accept(self.app, raw, envelope))
        assert outcome.fate is Fate.ACCEPTED, outcome

    def signed(self, ticket: int, role: Role, person: int) -> str:
        return f"support+{self.app.signer.reply_tag(ReplyToken(ticket, role, person))}@example.com"

    def answered_ticket(self) -> tuple[int, int, str]:
        """A new ticket from Bob (Mia in Cc), answered by Alice: its number, Bob's id, and
        the Message-ID of Bob's mail."""
        n = next(self.serial)
        first = build_message(
            subject=f"Question {n}", message_id=f"<t{n}@customer.test>", headers={"Cc": MIA}
        )
        self.accept(first, BOB, OURS)
        number, bob = self.runner.run(self._newest())
        answer = build_message(
            sender=ALICE,
            to=self.signed(number, Role.AGENT, 1),
            subject=f"Re: [#{number}] Question {n}",
            body="Unplug it.",
            message_id=f"<a{n}@staff.test>",
            in_reply_to=f"<t{n}@customer.test>",
        )
        self.accept(answer, ALICE, str(answer["To"]))
        return number, bob, str(first["Message-ID"])

    async def _newest(self) -> tuple[int, int]:
        async with self.app.db.transaction() as session:
            ticket = await session.scalar(select(Ticket).order_by(Ticket.id.desc()).limit(1))
            assert ticket is not None
            return ticket.id, ticket.customer_id

    def snapshot(self, number: int) -> Snapshot:
        async def load() -> Snapshot:
            async with self.app.db.transaction() as session:
                ticket = await session.get(Ticket, number)
                assert ticket is not None
                people = await session.scalars(
                    select(Participant.address).where(Participant.ticket_id == number)
                )
                return Snapshot(
                    ticket.status,
                    ticket.priority,
                    ticket.assignee_id,
                    frozenset(people),
                    len(await self._sent(session, number)),
                )

        return self.runner.run(load())

    def told_since(self, number: int, count: int) -> set[str]:
        """Everyone mail about the ticket was queued for, after its first `count` mails."""

        async def load() -> set[str]:
            async with self.app.db.transaction() as session:
                rows = (await self._sent(session, number))[count:]
                return {address for row in rows for address in row.rcpt_tos}

        return self.runner.run(load())

    @staticmethod
    async def _sent(session: AsyncSession, number: int) -> list[OutboxMessage]:
        rows = await session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.ticket_id == number)
            .order_by(OutboxMessage.id)
        )
        return list(rows.all())


@pytest.fixture
def desk(make_config: MakeConfig) -> Iterator[Desk]:
    app = App(make_config())
    with asyncio.Runner() as runner:
        runner.run(add_agent(app, ALICE, "Alice"))
        runner.run(add_agent(app, CAROL, "Carol"))
        yield Desk(app, runner, itertools.count(1))
        runner.run(app.close())


def _proven(sender: str, way_in: str, references: bool) -> bool:
    if sender == ALICE and way_in == "alice's signed address":
        return True
    return sender in (BOB, MIA) and (references or way_in == "customer's signed address")


def _cases() -> Iterator[tuple[str, str, bool, bool]]:
    """Sender, way in, References to the ticket's mail, [#N] in the subject (which only
    matters on the plain address and the plus-address)."""
    for sender, way_in, references in itertools.product(SENDERS, WAYS_IN, (False, True)):
        for tagged in (False, True) if way_in in WAYS_IN[:2] else (False,):
            yield sender, way_in, references, tagged


def test_only_proven_senders_change_a_ticket(desk: Desk) -> None:
    ticket = desk.answered_ticket()
    for case in _cases():
        sender, way_in, references, tagged = case
        number, bob, first = ticket
        to = {
            "plain": OURS,
            "plus-address": f"support+{number}@example.com",
            "customer's signed address": desk.signed(number, Role.CUSTOMER, bob),
            "alice's signed address": desk.signed(number, Role.AGENT, 1),
        }[way_in]
        message = build_message(
            sender=sender,
            to=to,
            subject=f"Re: [#{number}] Question" if tagged else "Re: Question",
            body="#status closed\n#assign carol\n#priority urgent\n#cc eve@evil.test\n\nDo it.",
            message_id=f"<x{next(desk.serial)}@sender.test>",
            in_reply_to=first if references else None,
        )
        before = desk.snapshot(number)
        desk.accept(message, sender, to)
        after = desk.snapshot(number)
        if _proven(sender, way_in, references):
            assert after != before, case
            ticket = desk.answered_ticket()  # a fresh one for the cases that follow
            continue
        assert after.status == before.status, case
        assert (after.priority, after.assignee_id) == (before.priority, before.assignee_id), case
        assert after.participants == before.participants, case
        told = desk.told_since(number, before.outbox)
        assert not told & {BOB, MIA}, case
        if sender in AGENTS:
            assert sender not in told, case
