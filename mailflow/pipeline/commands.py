"""Commands on the first lines of an agent's or supervisor's mail: `#status resolved`,
`#assign me`, `#note`… All are checked before any is applied: one bad command, and the
message applies nothing and its sender is told exactly what was wrong."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from mailflow.config import Config, TicketTypeConfig
from mailflow.db.models import Agent, Customer, Ticket
from mailflow.db.record import TimeEntry
from mailflow.mail.addresses import is_valid_address, normalise
from mailflow.people import directory, usergroups
from mailflow.people.permissions import Role, may
from mailflow.pipeline.intake import Apply, Intake, Services
from mailflow.tickets import approvals, ops, resolutions
from mailflow.tickets.events import Event

T = TypeVar("T")
_COMMAND = re.compile(r"^#([a-z]+)\b[ \t]*(.*?)\s*$", re.IGNORECASE)
NAMES = (
    "status",
    "assign",
    "group",
    "usergroup",
    "type",
    "priority",
    "note",
    "private",
    "cc",
    "approval",
    "resolution",
    "time",
)
_SPENT = re.compile(r"^(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+)m)?$")
MAX_ENTRY_MINUTES = 24 * 60
_AMOUNT = re.compile(r"(\d+(?:\.\d+)?h\s+\d+m|\S+)\s*(.*)$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    argument: str
    line: str


def split_commands(text: str) -> tuple[list[Command], str]:
    """The commands at the top of the text, and the text after them."""
    lines = text.splitlines()
    commands: list[Command] = []
    index = 0
    while index < len(lines):
        stripped = lines[index].strip()
        match = _COMMAND.match(stripped)
        if match:
            commands.append(Command(match.group(1).lower(), match.group(2), stripped))
        elif stripped:
            break
        index += 1
    return commands, "\n".join(lines[index:]).strip()


@dataclass(frozen=True, slots=True)
class Actor:
    """Who gives the commands, and in which role."""

    role: Role
    agent: Agent | None = None
    supervisor: Customer | None = None

    @property
    def history(self) -> ops.Actor:
        if self.agent is not None:
            return ops.Actor.agent(self.agent)
        assert self.supervisor is not None
        return ops.Actor.supervisor(self.supervisor)


Check = Callable[["Context", str], Awaitable[Apply]]


class Refused(Exception):
    """One command's problem, in words for the person who wrote it."""


@dataclass(slots=True)
class Context:
    services: Services
    intake: Intake
    ticket: Ticket
    actor: Actor
    # What the sender wrote below the commands, without the mail they quote or their
    # signature: the text of #resolution and #approval.
    written: str = ""
    # The type this message's own #type moves the ticket to, once that command is checked
    # (it is checked first): a #status beside it names a status of the new type.
    new_type: TicketTypeConfig | None = None

    def type_after(self) -> TicketTypeConfig:
        return self.new_type or self.config.ticket_type(self.ticket.type)

    @property
    def config(self) -> Config:
        return self.services.config

    @property
    def who(self) -> ops.Actor:
        return self.actor.history


async def _status(ctx: Context, argument: str) -> Apply:
    ticket_type = ctx.type_after()
    status = next((s for s in ticket_type.statuses if s.lower() == argument.lower()), None)
    if status is None:
        raise Refused(
            f"{argument!r} is not a status of {ticket_type.name} tickets; "
            f"use one of: {', '.join(ticket_type.statuses)}"
        )
    reopening = status == ticket_type.default_status
    if ctx.actor.role is Role.SUPERVISOR and status not in ticket_type.closed and not reopening:
        closing = ", ".join(ticket_type.closed)
        raise Refused(
            f"a supervisor may close a ticket ({closing}) "
            f"or reopen it ({ticket_type.default_status})"
        )

    async def apply() -> list[Event]:
        return ops.set_status(
            ctx.ticket,
            status,
            ticket_type=ticket_type,
            actor=ctx.who,
            now=ctx.intake.now,
            session=ctx.services.session,
        )

    return apply


async def _assign(ctx: Context, argument: str) -> Apply:
    session = ctx.services.session
    if argument.lower() == "me":
        if ctx.actor.agent is None:
            raise Refused("#assign me is for agents; name the agent instead")
        agent: Agent | None = ctx.actor.agent
    else:
        agent = await _found_or_nobody(
            argument, lambda: directory.find_agent(session, argument), "active agent"
        )

    async def apply() -> list[Event]:
        return ops.assign(
            ctx.ticket, agent, actor=ctx.who, now=ctx.intake.now, session=ctx.services.session
        )

    return apply


async def _found_or_nobody(
    argument: str, find: Callable[[], Awaitable[T | None]], what: str
) -> T | None:
    """`nobody` (or `none`) clears; any other name must exist."""
    if argument.lower() in ("nobody", "none"):
        return None
    try:
        found = await find()
    except directory.NotFound as exc:  # a name that fits several
        raise Refused(str(exc)) from None
    if found is None:
        raise Refused(f"there is no {what} {argument!r}")
    return found


async def _group(ctx: Context, argument: str) -> Apply:
    session = ctx.services.session
    group = await _found_or_nobody(
        argument, lambda: directory.find_group(session, argument), "group"
    )

    async def apply() -> list[Event]:
        return ops.assign_group(
            ctx.ticket, group, actor=ctx.who, now=ctx.intake.now, session=ctx.services.session
        )

    return apply


async def _usergroup(ctx: Context, argument: str) -> Apply:
    session = ctx.services.session
    usergroup = await _found_or_nobody(
        argument, lambda: usergroups.usergroup_named(session, argument), "usergroup"
    )

    async def apply() -> list[Event]:
        return ops.set_usergroup(
            ctx.ticket, usergroup, actor=ctx.who, now=ctx.intake.now, session=ctx.services.session
        )

    return apply


async def _type(ctx: Context, argument: str) -> Apply:
    names = [t.name for t in ctx.config.types]
    if argument.lower() not in names:
        raise Refused(f"{argument!r} is not a ticket type; use one of: {', '.join(names)}")
    new_type = ctx.new_type = ctx.config.ticket_type(argument.lower())

    async def apply() -> list[Event]:
        return ops.change_type(
            ctx.ticket,
            new_type,
            status=None,
            actor=ctx.who,
            now=ctx.intake.now,
            session=ctx.services.session,
        )

    return apply


async def _priority(ctx: Context, argument: str) -> Apply:
    priority = argument.lower()
    if priority not in ops.PRIORITIES:
        raise Refused(f"{argument!r} is not a priority; use one of: {', '.join(ops.PRIORITIES)}")

    async def apply() -> list[Event]:
        return ops.set_priority(
            ctx.ticket, priority, actor=ctx.who, now=ctx.intake.now, session=ctx.services.session
        )

    return apply


async def _flag(ctx: Context, argument: str) -> Apply:
    """#note and #private take no argument; what they do happens where the message is kept."""
    if argument:
        raise Refused("takes no argument")

    async def apply() -> list[Event]:
        return []

    return apply


async def _cc(ctx: Context, argument: str) -> Apply:
    if not is_valid_address(argument):
        raise Refused(f"{argument!r} is not an email address")
    if ctx.services.addresses.resolve(argument) is not None:
        raise Refused(f"{argument} is one of our own addresses")
    ctx.intake.cc.append(normalise(argument))

    async def apply() -> list[Event]:
        return []

    return apply


async def _approval(ctx: Context, argument: str) -> Apply:
    """#approval approver@example.com the reason, on one line; the text below the commands
    explains it to the approver, and reaches nobody else."""
    address, _, reason = argument.partition(" ")
    if not is_valid_address(address):
        raise Refused("name the approver's address first: #approval someone@example.com REASON")
    agent = ctx.actor.agent
    assert agent is not None

    async def apply() -> list[Event]:
        await approvals.request(
            ctx.services.session,
            ctx.services.mailer,
            ctx.ticket,
            approver=normalise(address),
            reason=reason.strip(),
            requester=approvals.Requester(agent.name, agent),
            actor=ctx.who,
            now=ctx.intake.now,
            details=ctx.written,
        )
        return []

    return apply


async def _resolution(ctx: Context, argument: str) -> Apply:
    """#resolution [notify] [publish], with the resolution as the text below the commands."""
    options = set(argument.lower().split())
    if options - {"notify", "publish"}:
        raise Refused(f"#resolution takes notify and publish, not {' '.join(sorted(options))}")
    text = ctx.written
    if not text:
        raise Refused("write the resolution below the commands")

    async def apply() -> list[Event]:
        await resolutions.resolve(
            ctx.services.session,
            ctx.services.mailer,
            ctx.ticket,
            text,
            notify="notify" in options,
            publish="publish" in options,
            actor=ctx.who,
            now=ctx.intake.now,
        )
        return []

    return apply


def spent_minutes(text: str) -> int | None:
    """45m, 1h, 1h30m, 1.5h; a bare number is minutes. None for anything else, and for
    nothing or more than a day in one entry (by mail and on the command line alike)."""
    text = text.strip().lower()
    if re.fullmatch(r"[0-9]+", text):  # not isdigit(): "²" is a digit that int() refuses
        minutes = int(text)
    elif (match := _SPENT.match(text)) and any(match.groups()):
        hours, rest = match.groups()
        minutes = round(float(hours or 0) * 60) + int(rest or 0)
    else:
        return None
    return minutes if 0 < minutes <= MAX_ENTRY_MINUTES else None


async def _time(ctx: Context, argument: str) -> Apply:
    """#time 45m [billable] [a note]; "1h 30m" is one amount, as people write it."""
    split = _AMOUNT.match(argument)
    amount, rest = (split.group(1), split.group(2)) if split else (argument, "")
    minutes = spent_minutes(amount)
    if minutes is None:
        raise Refused(f"{amount!r} is not a time spent such as 45m, 1h30m or 2h")
    billable = rest.split(" ", 1)[0].lower() == "billable"
    note = rest.split(" ", 1)[1] if billable and " " in rest else ("" if billable else rest)
    agent = ctx.actor.agent
    assert agent is not None

    async def apply() -> list[Event]:
        ctx.services.session.add(
            TimeEntry(
                ticket_id=ctx.ticket.id,
                agent_id=agent.id,
                minutes=minutes,
                billable=billable,
                note=note.strip(),
                spent_at=ctx.intake.now,
            )
        )
        ops.record(
            ctx.services.session,
            ctx.ticket,
            ctx.who,
            "time_spent",
            ctx.intake.now,
            minutes=minutes,
            billable=billable,
            note=note.strip(),
        )
        return []

    return apply


CHECKS: dict[str, Check] = {
    "approval": _approval,
    "resolution": _resolution,
    "time": _time,
    "status": _status,
    "assign": _assign,
    "group": _group,
    "usergroup": _usergroup,
    "type": _type,
    "priority": _priority,
    "note": _flag,
    "private": _flag,
    "cc": _cc,
}


async def check_all(ctx: Context, commands: list[Command]) -> tuple[list[Apply], list[str]]:
    """Every command checked; the appliers when all are good, else every problem found."""
    appliers: list[Apply] = []
    problems: list[str] = []
    # #type goes first, so that a #status beside it is set in the new type's statuses.
    for command in sorted(commands, key=lambda c: c.name != "type"):
        if command.name not in CHECKS:
            problems.append(
                f"{command.line}: unknown command; known: " + ", ".join(f"#{n}" for n in NAMES)
            )
            continue
        if not may(ctx.actor.role, command.name, ctx.config):
            role = ctx.actor.role.value
            article = "an" if role[0] in "aeiou" else "a"
            problems.append(f"{command.line}: not allowed for {article} {role}")
            continue
        try:
            appliers.append(await CHECKS[command.name](ctx, command.argument))
        except Refused as refusal:
            problems.append(f"{command.line}: {refusal}")
    return (appliers if not problems else []), problems
