"""`mailflow team`, `group` and `agent`: the support side, administered from the command line."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import click
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mailflow.cli.common import Config, administrator, config_of, find_agent, in_transaction
from mailflow.cli.lists import list_options, mapping, print_page
from mailflow.db.models import NAME_LENGTH, Agent
from mailflow.db.paging import AnyRow, Keyset
from mailflow.db.people import AgentRole, Group, GroupMember, Team
from mailflow.mail.addresses import is_valid_address, normalise
from mailflow.people import directory, placement

ROLES = [role.value for role in AgentRole]


@dataclass(frozen=True, slots=True)
class AgentRow:
    email: str
    name: str
    team: str
    role: str
    active: bool
    notify: bool
    types: str
    groups: str


@dataclass(frozen=True, slots=True)
class GroupRow:
    team: str
    group: str
    members: str


async def _group(session: AsyncSession, name: str) -> Group:
    group = await directory.find_group(session, name)
    if group is None:
        raise directory.NotFound(f"no group {name!r}")
    return group


def register(cli: click.Group) -> None:
    _register_teams(cli)
    _register_groups(cli)
    _register_agents(cli)


def _register_teams(cli: click.Group) -> None:
    @cli.group("team")
    def team_group() -> None:
        """Support teams (one is made, named "support", when the first agent is added)."""

    @team_group.command("create")
    @click.argument("name")
    @click.pass_context
    def create(ctx: click.Context, name: str) -> None:
        """Create a team."""

        async def work(session: AsyncSession, config: Config, now: datetime) -> None:
            if await session.scalar(select(Team).where(func.lower(Team.name) == name.lower())):
                raise directory.NotFound(f"team {name!r} exists already")
            session.add(Team(name=name, created_at=now))

        in_transaction(ctx, work)
        click.echo(f"created team {name}")

    @team_group.command("rename")
    @click.argument("old")
    @click.argument("new")
    @click.pass_context
    def rename(ctx: click.Context, old: str, new: str) -> None:
        """Rename team OLD to NEW."""

        async def work(session: AsyncSession, config: Config, now: datetime) -> None:
            (await directory.team_named(session, old, now)).name = new

        in_transaction(ctx, work)
        click.echo(f"renamed team {old} to {new}")

    @team_group.command("list")
    @list_options
    @click.pass_context
    def list_teams(ctx: click.Context, fmt: str, limit: int, after: str | None) -> None:
        """List teams, by name."""
        query = select(Team.name, Team.id)
        order = Keyset((Team.name, Team.id))
        print_page(
            config_of(ctx), query, order, mapping, ("name",), fmt=fmt, limit=limit, after=after
        )


def _register_groups(cli: click.Group) -> None:
    @cli.group("group")
    def group_group() -> None:
        """Groups of agents inside a team; tickets can be assigned to a group."""

    @group_group.command("create")
    @click.argument("name")
    @click.option("--team", help="The team (default: the one team).")
    @click.pass_context
    def create(ctx: click.Context, name: str, team: str | None) -> None:
        """Create a group of agents."""

        async def work(session: AsyncSession, config: Config, now: datetime) -> None:
            if await directory.find_group(session, name):
                raise directory.NotFound(f"group {name!r} exists already")
            owner = await directory.team_named(session, team, now)
            session.add(Group(team_id=owner.id, name=name, created_at=now))

        in_transaction(ctx, work)
        click.echo(f"created group {name}")

    @group_group.command("rename")
    @click.argument("old")
    @click.argument("new")
    @click.pass_context
    def rename(ctx: click.Context, old: str, new: str) -> None:
        """Rename group OLD to NEW."""

        async def work(session: AsyncSession, config: Config, now: datetime) -> None:
            (await _group(session, old)).name = new

        in_transaction(ctx, work)
        click.echo(f"renamed group {old} to {new}")

    @group_group.command("delete")
    @click.argument("name")
    @click.option(
        "--purge-closed", is_flag=True, help="Also delete the group's closed tickets, for good."
    )
    @click.pass_context
    def delete_group(ctx: click.Context, name: str, purge_closed: bool) -> None:
        """Delete a group: its open tickets go back to unassigned, closed ones stay,
        detached, unless purged."""

        async def work(session: AsyncSession, config: Config, now: datetime) -> tuple[int, int]:
            group = await _group(session, name)
            return await directory.delete_group(
                session, config, group, purge_closed=purge_closed, now=now, by=administrator()
            )

        reopened, closed = in_transaction(ctx, work)
        fate = "deleted" if purge_closed else "kept, detached from the group"
        click.echo(
            f"deleted group {name}: {reopened} open tickets back to unassigned, "
            f"{closed} closed tickets {fate}"
        )

    @group_group.command("add-member")
    @click.argument("name")
    @click.argument("emails", nargs=-1, required=True)
    @click.pass_context
    def add_member(ctx: click.Context, name: str, emails: tuple[str, ...]) -> None:
        """Add agents (by address) to group NAME."""

        async def work(session: AsyncSession, config: Config, now: datetime) -> None:
            group = await _group(session, name)
            for email in emails:
                agent = await find_agent(session, email)
                if agent.team_id != group.team_id:
                    raise directory.NotFound(f"{agent.email} is not in the team of {name}")
                if await session.get(GroupMember, (group.id, agent.id)) is None:
                    session.add(GroupMember(group_id=group.id, agent_id=agent.id))

        in_transaction(ctx, work)
        click.echo(f"group {name}: added {', '.join(emails)}")

    @group_group.command("remove-member")
    @click.argument("name")
    @click.argument("emails", nargs=-1, required=True)
    @click.pass_context
    def remove_member(ctx: click.Context, name: str, emails: tuple[str, ...]) -> None:
        """Take agents (by address) out of group NAME."""

        async def work(session: AsyncSession, config: Config, now: datetime) -> None:
            group = await _group(session, name)
            for email in emails:
                agent = await find_agent(session, email)
                await session.execute(
                    delete(GroupMember).where(
                        GroupMember.group_id == group.id, GroupMember.agent_id == agent.id
                    )
                )

        in_transaction(ctx, work)
        click.echo(f"group {name}: removed {', '.join(emails)}")

    @group_group.command("list")
    @list_options
    @click.pass_context
    def list_groups(ctx: click.Context, fmt: str, limit: int, after: str | None) -> None:
        """List groups, by name, with their active members."""
        members = (
            select(func.aggregate_strings(Agent.email, ","))
            .join(GroupMember, GroupMember.agent_id == Agent.id)
            .where(GroupMember.group_id == Group.id, Agent.active)
            .scalar_subquery()
        )
        query = select(
            Team.name.label("team"), Group.name, Group.id, members.label("members")
        ).join(Team, Team.id == Group.team_id)
        order = Keyset((Group.name, Group.id))

        def row(found: AnyRow) -> GroupRow:
            return GroupRow(found.team, found.name, _listed(found.members, ", "))

        print_page(
            config_of(ctx),
            query,
            order,
            row,
            ("team", "group", "members"),
            fmt=fmt,
            limit=limit,
            after=after,
        )


def _register_agents(cli: click.Group) -> None:
    @cli.group("agent")
    def agent_group() -> None:
        """Agents: who may answer tickets by email."""

    @agent_group.command("add")
    @click.argument("email")
    @click.option("--name", required=True, help="Shown to customers as the sender of replies.")
    @click.option("--team", help="The agent's team (default: the one team).")
    @click.option("--role", type=click.Choice(ROLES), default="operator", show_default=True)
    @click.option(
        "--type",
        "types",
        multiple=True,
        help="Ticket types this agent hears about (repeat; default: all).",
    )
    @click.option(
        "--notify/--no-notify",
        default=True,
        show_default=True,
        help="Whether the agent gets notification emails.",
    )
    @click.pass_context
    def add(
        ctx: click.Context,
        email: str,
        name: str,
        team: str | None,
        role: str,
        types: tuple[str, ...],
        notify: bool,
    ) -> None:
        """Add an agent, or update the one with this address."""
        config = config_of(ctx)
        _check_agent(config, email, name, types)

        async def work(
            session: AsyncSession, config: Config, now: datetime
        ) -> tuple[bool, placement.Placement]:
            owner = await directory.team_named(session, team, now)
            agent = await session.scalar(select(Agent).where(Agent.email == normalise(email)))
            created = agent is None
            if agent is None:
                agent = Agent(email=normalise(email), created_at=now, team_id=owner.id)
                session.add(agent)
            agent.name, agent.types, agent.notify, agent.active = name, list(types), notify, True
            placed = await placement.place(session, config, agent, owner, AgentRole(role), now=now)
            return created, placed

        created, placed = in_transaction(ctx, work)
        click.echo(f"{'added' if created else 'updated'} agent {normalise(email)}")
        if placed.left:
            click.echo(f"left the groups of team {placed.old_team}: {', '.join(placed.left)}")
        if placed.still_assigned:
            numbers = ", ".join(str(n) for n in placed.still_assigned)
            click.echo(f"still assigned to ticket {numbers} of those groups: reassign if need be")

    @agent_group.command("deactivate")
    @click.argument("email")
    @click.pass_context
    def deactivate(ctx: click.Context, email: str) -> None:
        """The agent no longer acts on tickets or gets mail; their history stays."""

        async def work(session: AsyncSession, config: Config, now: datetime) -> None:
            (await find_agent(session, email)).active = False

        in_transaction(ctx, work)
        click.echo(f"deactivated agent {normalise(email)}")

    @agent_group.command("list")
    @list_options
    @click.pass_context
    def list_agents(ctx: click.Context, fmt: str, limit: int, after: str | None) -> None:
        """List agents, by address, with their team, role and groups."""
        groups = (
            select(func.aggregate_strings(Group.name, ","))
            .join(GroupMember, GroupMember.group_id == Group.id)
            .where(GroupMember.agent_id == Agent.id)
            .scalar_subquery()
        )
        query = select(
            Agent.email,
            Agent.name,
            Team.name.label("team"),
            Agent.role,
            Agent.active,
            Agent.notify,
            Agent.types,
            groups.label("groups"),
        ).join(Team, Team.id == Agent.team_id)

        def row(found: AnyRow) -> AgentRow:
            return AgentRow(
                found.email,
                found.name,
                found.team,
                found.role.value,
                found.active,
                found.notify,
                ",".join(found.types) or "all",
                _listed(found.groups, ","),
            )

        columns = ("email", "name", "team", "role", "active", "notify", "types", "groups")
        order = Keyset((Agent.email,))
        print_page(config_of(ctx), query, order, row, columns, fmt=fmt, limit=limit, after=after)


def _listed(aggregated: str | None, separator: str) -> str:
    """Names aggregated by the database (in no promised order), sorted."""
    return separator.join(sorted(aggregated.split(","))) if aggregated else ""


def _check_agent(config: Config, email: str, name: str, types: tuple[str, ...]) -> None:
    if not is_valid_address(email):
        raise click.BadParameter(f"{email!r} is not an email address", param_hint="EMAIL")
    if not name.strip() or len(name) > NAME_LENGTH:
        raise click.BadParameter(
            f"give a name of 1 to {NAME_LENGTH} characters", param_hint="--name"
        )
    known = {t.name for t in config.types}
    unknown = sorted(set(types) - known)
    if unknown:
        raise click.BadParameter(
            f"unknown types {unknown}; known: {sorted(known)}", param_hint="--type"
        )
