"""Applies the matching rules to each event, in rule order, within the caller's transaction."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mailflow.automation.actions import RunScope, send_outgoing
from mailflow.automation.conditions import Facts
from mailflow.automation.schema import Rule, RuleSet
from mailflow.config import Config
from mailflow.db.models import ActorKind, Agent, Message, Ticket
from mailflow.outbox.mailer import Mailer, TemplateMail
from mailflow.tickets import ops
from mailflow.tickets.events import Event, TimeReached

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Engine:
    rules: RuleSet
    config: Config
    mailer: Mailer

    async def run(
        self, session: AsyncSession, events: list[Event], now: datetime, agent: Agent | None = None
    ) -> None:
        """Events caused by actions are handled in turn, up to `rules.max_depth` links deep.
        `agent` is who acted, if an agent did: nobody is mailed about what they did, also
        through the events their act causes down the chain. The same holds for the author
        of mail that only claims an agent's address, or comes from an unverified sender:
        a notice to them could be answered by their responder, and again."""
        queue: deque[tuple[Event, int, Agent | None, str | None]] = deque()
        for event in events:
            spared = agent.email if agent else await _spared(session, event)
            queue.append((event, 0, agent, spared))
        while queue:
            event, depth, acting, spared = queue.popleft()
            ticket = await session.get(Ticket, event.ticket_id)
            if ticket is None:
                continue
            if depth >= self.config.rules.max_depth:
                ops.record(
                    session,
                    ticket,
                    ops.Actor.system("rules"),
                    "rule_chain_stopped",
                    now,
                    trigger=event.trigger,
                    depth=depth,
                )
                log.warning("rules.chain_stopped", ticket=ticket.id, trigger=event.trigger)
                continue
            facts = await self._facts(session, ticket, event, acting, now, spared)
            caused = await self._apply(session, ticket, facts, now)
            queue.extend((e, depth + 1, facts.agent, facts.spared) for e in caused)

    async def _apply(
        self, session: AsyncSession, ticket: Ticket, facts: Facts, now: datetime
    ) -> list[Event]:
        caused: list[Event] = []
        outgoing: list[TemplateMail] = []
        for rule in self.rules.rules:
            # Tested against the type as it is now: an earlier rule's set_type may have moved
            # the ticket out of this rule's types.
            if not rule.applies(facts.event.trigger, ticket.type):
                continue
            if rule.condition is not None and not rule.condition.holds(facts):
                continue
            events, stop = await self._fire(session, rule, ticket, facts, now, outgoing)
            caused += events
            if stop:
                break
        await send_outgoing(self.mailer, session, ticket, outgoing, now)
        return caused

    async def _fire(
        self,
        session: AsyncSession,
        rule: Rule,
        ticket: Ticket,
        facts: Facts,
        now: datetime,
        outgoing: list[TemplateMail],
    ) -> tuple[list[Event], bool]:
        """Apply one rule's actions; return what they caused and whether they said stop.
        The mail they send joins `outgoing`."""
        actor = ops.Actor.rule(rule.name)
        ops.record(session, ticket, actor, "rule_fired", now, trigger=rule.trigger)
        log.info("rules.fired", ticket=ticket.id, rule=rule.name, trigger=rule.trigger)
        scope = RunScope(session, self.config, self.mailer, now, ticket, facts, actor, outgoing)
        caused: list[Event] = []
        stop = False
        for _name, action in rule.actions:
            result = await action(scope)
            caused += result.events
            stop = stop or result.stop
        return caused, stop

    async def timed_facts(
        self, session: AsyncSession, rule: Rule, ticket: Ticket, now: datetime
    ) -> Facts | None:
        """What a time-based rule sees of a ticket whose time has come, or None while the
        rule's condition does not hold."""
        event = TimeReached(ticket_id=ticket.id, rule=rule.name)
        facts = await self._facts(session, ticket, event, None, now)
        if rule.condition is not None and not rule.condition.holds(facts):
            return None
        return facts

    async def fire_timed(
        self, session: AsyncSession, rule: Rule, ticket: Ticket, facts: Facts, now: datetime
    ) -> None:
        """Fire a time-based rule whose condition holds, then handle what it caused."""
        outgoing: list[TemplateMail] = []
        caused, _stop = await self._fire(session, rule, ticket, facts, now, outgoing)
        await send_outgoing(self.mailer, session, ticket, outgoing, now)
        await self.run(session, caused, now)

    async def _facts(
        self,
        session: AsyncSession,
        ticket: Ticket,
        event: Event,
        acting: Agent | None,
        now: datetime,
        spared: str | None = None,
    ) -> Facts:
        message = await _message_of(session, event)
        agent_id = getattr(event, "agent_id", None)
        agent = await session.get(Agent, agent_id) if agent_id else acting
        return Facts(
            ticket=ticket,
            event=event,
            message=message,
            agent=agent,
            spared=agent.email if agent else spared,
            now=now,
            hours=self.config.business_hours,
        )


async def _message_of(session: AsyncSession, event: Event) -> Message | None:
    message_id = getattr(event, "message_id", None)
    return await session.get(Message, message_id) if message_id else None


async def _spared(session: AsyncSession, event: Event) -> str | None:
    """The author of the mail behind the event, when no rule mail may reach them: a sender
    we could not verify, or an agent's address that did not prove itself (an agent's own
    responder, or someone borrowing the address), whose notice could start a loop."""
    message = await _message_of(session, event)
    if message is None or message.author_kind is ActorKind.AGENT:
        return None
    if message.author_kind is ActorKind.UNVERIFIED:
        return message.from_address
    agent = await session.scalar(select(Agent.id).where(Agent.email == message.from_address))
    return message.from_address if agent is not None else None
