"""An agent's place: their team and role. A team has as many administrators as configured
(one by default); an agent who changes team leaves the old team's groups, and the tickets
they still hold in those groups say so."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from mailflow.config import Config
from mailflow.db.models import Agent, Ticket
from mailflow.db.people import AgentRole, Group, GroupMember, Team
from mailflow.people.directory import NotFound
from mailflow.tickets import ops


class NotAllowed(NotFound):
    """A placement the team's rules refuse; the message says what to do instead."""


@dataclass(frozen=True, slots=True)
class Placement:
    """What placing an agent changed besides their team and role."""

    old_team: str = ""
    left: list[str] = field(default_factory=list)  # the old team's groups, by name
    still_assigned: list[int] = field(default_factory=list)  # open tickets of those groups


async def place(
    session: AsyncSession,
    config: Config,
    agent: Agent,
    team: Team,
    role: AgentRole,
    *,
    now: datetime,
) -> Placement:
    """Put an agent (new, or already known) in a team with a role."""
    if role is AgentRole.ADMIN:
        await _check_room_for_admin(session, config, agent, team)
    placement = Placement()
    if agent.id is not None and agent.team_id != team.id:
        placement = await _leave_groups(session, config, agent, team, now)
    agent.team_id, agent.role = team.id, role
    return placement


async def _check_room_for_admin(
    session: AsyncSession, config: Config, agent: Agent, team: Team
) -> None:
    limit = config.people.admins_per_team
    others = (
        await session.scalars(
            select(Agent.email)
            .where(Agent.team_id == team.id, Agent.role == AgentRole.ADMIN, Agent.active)
            .where(Agent.email != agent.email)
            .order_by(Agent.email)
        )
    ).all()
    if limit and len(others) >= limit:
        present = ", ".join(others)
        raise NotAllowed(
            f"team {team.name} has its administrator{'s' if limit > 1 else ''} already: "
            f"{present}; make {'one' if limit > 1 else 'them'} an operator first "
            f"(mailflow agent add ADDRESS --name NAME --role operator), or allow more "
            f"with [people] admins_per_team"
        )


async def _leave_groups(
    session: AsyncSession, config: Config, agent: Agent, team: Team, now: datetime
) -> Placement:
    """Out of every group of the old team; each open ticket of those groups still assigned
    to the agent records it, so that its history explains an assignee outside its group."""
    groups = (
        await session.scalars(
            select(Group)
            .join(GroupMember, GroupMember.group_id == Group.id)
            .where(GroupMember.agent_id == agent.id, Group.team_id == agent.team_id)
            .order_by(Group.name)
        )
    ).all()
    if not groups:
        return Placement()
    ids = [group.id for group in groups]
    await session.execute(
        delete(GroupMember).where(GroupMember.agent_id == agent.id, GroupMember.group_id.in_(ids))
    )
    tickets = (
        await session.scalars(
            select(Ticket)
            .where(Ticket.assignee_id == agent.id, Ticket.group_id.in_(ids))
            .order_by(Ticket.id)
        )
    ).unique()
    names = {group.id: group.name for group in groups}
    held = []
    actor = ops.Actor.system("team change")
    for ticket in tickets:
        if ops.is_closed(config, ticket) or ticket.group_id is None:
            continue
        held.append(ticket.id)
        details = {"agent": agent.email, "group": names[ticket.group_id], "team": team.name}
        ops.record(session, ticket, actor, "agent_left_group", now, **details)
    old_team = await session.get(Team, agent.team_id)
    return Placement(old_team.name if old_team else "", [group.name for group in groups], held)
