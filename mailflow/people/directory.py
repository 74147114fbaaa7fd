"""The support side: teams, their groups, and the agents in them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from sqlalchemy import delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from mailflow.config import Config
from mailflow.db.models import Agent, Ticket
from mailflow.db.people import Group, GroupMember, Team
from mailflow.tickets import ops
from mailflow.tickets.purge import purge_tickets

DEFAULT_TEAM = "support"


class NotFound(LookupError):
    """No such team, group or agent; the message names what was looked for."""


async def team_named(session: AsyncSession, name: str | None, now: datetime) -> Team:
    """The named team, or, when none is named, the installation's one team (made on first use)."""
    if name is not None:
        team = await session.scalar(select(Team).where(func.lower(Team.name) == name.lower()))
        if team is None:
            raise NotFound(f"no team {name!r}")
        return team
    team = await session.scalar(select(Team).order_by(Team.id).limit(1))
    if team is None:
        team = Team(name=DEFAULT_TEAM, created_at=now)
        session.add(team)
        await session.flush()
    return team


async def find_agent(session: AsyncSession, reference: str) -> Agent | None:
    """An active agent by address, by the part before the @, or by name, ignoring case;
    NotFound when the reference fits several and nothing tells them apart."""
    wanted = reference.strip().lower()
    agents = (await session.scalars(select(Agent).where(Agent.active))).all()
    keys: tuple[Callable[[Agent], str], ...] = (
        lambda a: a.email,
        lambda a: a.email.partition("@")[0],
        lambda a: a.name.lower(),
    )
    several: list[Agent] = []
    for key in keys:
        found = [a for a in agents if key(a) == wanted]
        if len(found) == 1:
            return found[0]
        several = several or found
    if several:
        addresses = ", ".join(sorted(a.email for a in several))
        raise NotFound(f"{reference!r} names several agents ({addresses}); write the address")
    return None


async def find_group(session: AsyncSession, name: str) -> Group | None:
    return await session.scalar(select(Group).where(func.lower(Group.name) == name.lower()))


async def group_agents(session: AsyncSession, group_id: int) -> list[Agent]:
    return list(
        (
            await session.scalars(
                select(Agent)
                .join(GroupMember, GroupMember.agent_id == Agent.id)
                .where(GroupMember.group_id == group_id, Agent.active)
                .order_by(Agent.email)
            )
        ).all()
    )


async def delete_group(
    session: AsyncSession,
    config: Config,
    group: Group,
    *,
    purge_closed: bool,
    now: datetime,
    by: ops.Actor | None = None,
) -> tuple[int, int]:
    """Open tickets go back to unassigned; closed ones stay, detached from the group, unless
    `purge_closed` removes them; the history of every ticket kept says why (and who, when
    `by` says). Returns (reopened, closed)."""
    why = f"group {group.name} deleted"
    actor = replace(by, label=f"{by.label}: {why}") if by else ops.Actor.system(why)
    tickets = (await session.scalars(select(Ticket).where(Ticket.group_id == group.id))).unique()
    open_count, closed_ids = 0, []
    for ticket in tickets:
        closed = ops.is_closed(config, ticket)
        if closed:
            closed_ids.append(ticket.id)
        if closed and purge_closed:
            continue  # deleted below, history and all
        ops.assign_group(ticket, None, actor=actor, now=now, session=session)
        if not closed:
            open_count += 1
            ops.assign(ticket, None, actor=actor, now=now, session=session)
    if purge_closed:
        await purge_tickets(session, closed_ids)
    await session.execute(delete(GroupMember).where(GroupMember.group_id == group.id))
    await session.delete(group)
    return open_count, len(closed_ids)


async def next_in_rotation(session: AsyncSession, group: Group) -> Agent | None:
    """Round robin: the member after the one the group last gave a ticket to."""
    members = await group_agents(session, group.id)
    if not members:
        return None
    ids = [agent.id for agent in members]
    after = (
        ids.index(group.last_assigned_agent_id) + 1 if group.last_assigned_agent_id in ids else 0
    )
    chosen = members[after % len(members)]
    group.last_assigned_agent_id = chosen.id
    return chosen


async def least_loaded(session: AsyncSession, config: Config, group: Group) -> Agent | None:
    """The member with the fewest open tickets (the first by address on a tie)."""
    members = await group_agents(session, group.id)
    if not members:
        return None
    closed = [
        (Ticket.type == t.name) & Ticket.status.in_(t.closed) for t in config.types if t.closed
    ]
    load = (
        select(Ticket.assignee_id, func.count())
        .where(Ticket.assignee_id.in_([a.id for a in members]))
        .group_by(Ticket.assignee_id)
    )
    if closed:
        load = load.where(~or_(*closed))
    counts = {agent_id: n for agent_id, n in await session.execute(load)}
    return min(members, key=lambda agent: (counts.get(agent.id, 0), agent.email))
