"""Rule actions, registered by name. Each is checked when rules load and run per event."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mailflow.automation.conditions import Facts
from mailflow.config import Config, TicketTypeConfig
from mailflow.db.models import Agent, Participant, Ticket
from mailflow.mail.addresses import Mailbox, is_valid_address, normalise
from mailflow.mail.compose import AutoSubmitted
from mailflow.outbox.mailer import Mailer, Recipient, TemplateMail
from mailflow.people import directory, usergroups
from mailflow.render import Renderer
from mailflow.tickets import ops
from mailflow.tickets.events import CustomerReplied, Event, TicketCreated
from mailflow.tokens import Role


class ActionProblem(Exception):
    """An action that cannot be loaded; the rule loader adds file and rule."""


@dataclass(frozen=True, slots=True)
class LoadScope:
    rule: str
    trigger: str
    types: tuple[TicketTypeConfig, ...]
    renderer: Renderer
    config: Config


@dataclass(slots=True)
class RunScope:
    session: AsyncSession
    config: Config
    mailer: Mailer
    now: datetime
    ticket: Ticket
    facts: Facts
    actor: ops.Actor
    # The mail this event's rules send, shared by them all: sent by send_outgoing() once
    # every rule has run.
    outgoing: list[TemplateMail]

    @property
    def ticket_type(self) -> TicketTypeConfig:
        return self.config.ticket_type(self.ticket.type)

    def note(self, action: str, **details: Any) -> None:
        ops.record(self.session, self.ticket, self.actor, action, self.now, **details)


@dataclass(frozen=True, slots=True)
class Result:
    events: list[Event] = field(default_factory=list)
    stop: bool = False


class Action(Protocol):
    def __call__(self, scope: RunScope) -> Awaitable[Result]: ...


Loader = Callable[[Any, LoadScope], Action]
ACTIONS: dict[str, Loader] = {}


def action(name: str) -> Callable[[Loader], Loader]:
    def register(loader: Loader) -> Loader:
        if name in ACTIONS:
            raise ValueError(f"action {name!r} registered twice")
        ACTIONS[name] = loader
        return loader

    return register


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ActionProblem(f"{what} must be a non-empty string, got {value!r}")
    return value.strip()


@action("set_status")
def _set_status(value: Any, load: LoadScope) -> Action:
    status = _text(value, "set_status")
    for ticket_type in load.types:
        if status not in ticket_type.statuses:
            raise ActionProblem(
                f"set_status: {status!r} is not a status of type {ticket_type.name!r} "
                f"({', '.join(ticket_type.statuses)}); limit the rule with `types:`"
            )

    async def run(scope: RunScope) -> Result:
        events = ops.set_status(
            scope.ticket,
            status,
            ticket_type=scope.ticket_type,
            actor=scope.actor,
            now=scope.now,
            session=scope.session,
        )
        return Result(events)

    return run


@action("set_priority")
def _set_priority(value: Any, load: LoadScope) -> Action:
    priority = _text(value, "set_priority")
    if priority not in ops.PRIORITIES:
        raise ActionProblem(f"set_priority: {priority!r} is not one of {', '.join(ops.PRIORITIES)}")

    async def run(scope: RunScope) -> Result:
        return Result(
            ops.set_priority(
                scope.ticket, priority, actor=scope.actor, now=scope.now, session=scope.session
            )
        )

    return run


@action("assign")
def _assign(value: Any, load: LoadScope) -> Action:
    target = _text(value, "assign")
    if target not in ("replying_agent", "nobody") and not is_valid_address(target):
        raise ActionProblem(
            f"assign: {target!r} is not replying_agent, nobody or an agent's address"
        )

    async def run(scope: RunScope) -> Result:
        agent: Agent | None
        if target == "nobody":
            agent = None
        elif target == "replying_agent":
            agent = scope.facts.agent
            if agent is None:
                return Result()
        else:
            agent = await scope.session.scalar(
                select(Agent).where(Agent.email == normalise(target))
            )
            if agent is None or not agent.active:
                scope.note("rule_action_skipped", reason=f"no active agent {target}")
                return Result()
        events = ops.assign(
            scope.ticket, agent, actor=scope.actor, now=scope.now, session=scope.session
        )
        return Result(events)

    return run


@action("stop")
def _stop(value: Any, load: LoadScope) -> Action:
    if value is not True:
        raise ActionProblem("stop takes the value true")

    async def run(scope: RunScope) -> Result:
        return Result(stop=True)

    return run


async def _type_agents(scope: RunScope) -> list[Agent]:
    agents = (await scope.session.scalars(select(Agent).where(Agent.active, Agent.notify))).all()
    return [a for a in agents if a.serves(scope.ticket.type)]


async def _assignee(scope: RunScope) -> list[Agent]:
    assignee = scope.ticket.assignee
    return [assignee] if assignee and assignee.active and assignee.notify else []


async def _group(scope: RunScope) -> list[Agent]:
    group_id = scope.ticket.group_id
    if group_id is None:
        return []
    return [a for a in await directory.group_agents(scope.session, group_id) if a.notify]


async def _responsible(scope: RunScope) -> list[Agent]:
    """The assignee; while there is none, the ticket's group; without one, the type's agents.
    Mail that only claims the assignee's address is told to the group, or the type's agents,
    instead (the assignee's own act, authenticated, is told to nobody)."""
    claimed = scope.facts.spared if scope.facts.agent is None else None
    for find in (_assignee, _group, _type_agents):
        found = [agent for agent in await find(scope) if agent.email != claimed]
        if found:
            return found
    return []


async def _ticket_agents(scope: RunScope) -> list[Agent]:
    """Everyone on the agents' side of this ticket: assignee, group, agents who took part."""
    took_part = await scope.session.scalars(
        select(Agent)
        .join(Participant, Participant.address == Agent.email)
        .where(Participant.ticket_id == scope.ticket.id, Agent.active, Agent.notify)
    )
    found = [*await _assignee(scope), *await _group(scope), *took_part.all()]
    return list({agent.id: agent for agent in found}.values())


async def _replying_agent(scope: RunScope) -> list[Agent]:
    return [scope.facts.agent] if scope.facts.agent else []


AGENT_RECIPIENTS: dict[str, Callable[[RunScope], Awaitable[list[Agent]]]] = {
    "assignee": _assignee,
    "group": _group,
    "assignee_or_type_agents": _responsible,
    "type_agents": _type_agents,
    "ticket_agents": _ticket_agents,
    "replying_agent": _replying_agent,
}
# Who `send` can address, besides a literal address.
RECIPIENTS = ("customer", "supervisors", *AGENT_RECIPIENTS)


async def _supervisors(scope: RunScope) -> list[Recipient]:
    """The usergroup's supervisors, unless the ticket is private or they asked for quiet."""
    ticket = scope.ticket
    if ticket.private or ticket.usergroup is None or not ticket.usergroup.notify_supervisors:
        return []
    people = await usergroups.supervisors(scope.session, ticket.usergroup.id)
    return [
        Recipient(ops.mailbox_of(person), Role.SUPERVISOR, person.id)
        for person in people
        if person.id != ticket.customer_id
    ]


async def _recipients(scope: RunScope, who: str) -> list[Recipient]:
    if who == "customer":
        customer = scope.ticket.customer
        return [Recipient(ops.mailbox_of(customer), Role.CUSTOMER, customer.id)]
    if who == "supervisors":
        return await _supervisors(scope)
    if who in AGENT_RECIPIENTS:
        agents = await AGENT_RECIPIENTS[who](scope)
        return [Recipient(ops.mailbox_of(a), Role.AGENT, a.id) for a in agents]
    return [Recipient(Mailbox("", normalise(who)), Role.CUSTOMER)]


def _answers_customer(event: Event, who: str) -> bool:
    return who == "customer" and isinstance(event, TicketCreated | CustomerReplied)


@action("send")
def _send(value: Any, load: LoadScope) -> Action:
    if not isinstance(value, dict) or set(value) - {"template", "to"} or "template" not in value:
        raise ActionProblem("send takes {template: NAME, to: RECIPIENT or [RECIPIENTS]}")
    template = _text(value["template"], "send.template")
    targets = value.get("to", "customer")
    targets = targets if isinstance(targets, list) else [targets]
    for who in targets:
        if who not in RECIPIENTS and not (isinstance(who, str) and is_valid_address(who)):
            raise ActionProblem(
                f"send.to: {who!r} is not an address or one of {', '.join(RECIPIENTS)}"
            )
    for ticket_type in load.types or (None,):
        name = ticket_type.name if ticket_type else None
        if not load.renderer.exists(template, name):
            raise ActionProblem(f"send.template: no template {template}.txt.j2")

    async def run(scope: RunScope) -> Result:
        message = scope.facts.message
        for who in targets:
            for recipient in await _recipients(scope, who):
                if recipient.mailbox.address == scope.facts.spared and who != "replying_agent":
                    continue  # nobody is told about what they did themselves
                mail = TemplateMail(
                    template=template,
                    to=recipient,
                    purpose=template,
                    actor=scope.actor,
                    message=message,
                    answering_id=message.message_id if message else None,
                    context={"event": scope.facts.event},
                    auto_submitted=AutoSubmitted.AUTO_REPLIED
                    if _answers_customer(scope.facts.event, who)
                    else AutoSubmitted.AUTO_GENERATED,
                )
                scope.outgoing.append(mail)
        return Result()

    return run


async def send_outgoing(
    mailer: Mailer, session: AsyncSession, ticket: Ticket, mails: list[TemplateMail], now: datetime
) -> None:
    """The mail of one event's rules, rendered after they have all run, so that it tells the
    ticket as they left it (a notice says whom a later rule assigned), and each template to
    each person once (an assignee who is in the assigned group too hears it once)."""
    sent: set[tuple[str, str]] = set()
    for mail in mails:
        key = (mail.template, mail.to.mailbox.address)
        if key not in sent:
            sent.add(key)
            await mailer.send(session, ticket, mail, now)
