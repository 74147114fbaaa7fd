"""`mailflow agent`: the people who answer tickets."""

from __future__ import annotations

from dataclasses import dataclass

import click
from sqlalchemy import select

from mailflow.cli.common import Config, config_of, database, run
from mailflow.cli.output import FORMATS, render
from mailflow.clock import SystemClock
from mailflow.db.models import Agent
from mailflow.mail.addresses import is_valid_address, normalise


@dataclass(frozen=True, slots=True)
class AgentRow:
    email: str
    name: str
    active: bool
    notify: bool
    types: str


def register(cli: click.Group) -> None:
    @cli.group("agent")
    def agent_group() -> None:
        """Agents: who may answer tickets by email."""

    @agent_group.command("add")
    @click.argument("email")
    @click.option("--name", required=True, help="Shown to customers as the sender of replies.")
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
        ctx: click.Context, email: str, name: str, types: tuple[str, ...], notify: bool
    ) -> None:
        """Add an agent, or update the one with this address."""
        config = config_of(ctx)
        if not is_valid_address(email):
            raise click.BadParameter(f"{email!r} is not an email address", param_hint="EMAIL")
        known = {t.name for t in config.types}
        unknown = sorted(set(types) - known)
        if unknown:
            raise click.BadParameter(
                f"unknown types {unknown}; known: {sorted(known)}", param_hint="--type"
            )
        created = run(_add(config, normalise(email), name, list(types), notify))
        click.echo(f"{'added' if created else 'updated'} agent {normalise(email)}")

    @agent_group.command("list")
    @click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
    @click.pass_context
    def list_agents(ctx: click.Context, fmt: str) -> None:
        """List agents."""
        rows = run(_list(config_of(ctx)))
        click.echo(render(rows, fmt, ("email", "name", "active", "notify", "types")))


async def _add(config: Config, email: str, name: str, types: list[str], notify: bool) -> bool:
    async with database(config) as db, db.transaction() as session:
        agent = await session.scalar(select(Agent).where(Agent.email == email))
        if agent is None:
            session.add(
                Agent(
                    email=email,
                    name=name,
                    types=types,
                    notify=notify,
                    active=True,
                    created_at=SystemClock().now(),
                )
            )
            return True
        agent.name, agent.types, agent.notify, agent.active = name, types, notify, True
        return False


async def _list(config: Config) -> list[AgentRow]:
    async with database(config) as db, db.transaction() as session:
        agents = (await session.scalars(select(Agent).order_by(Agent.email))).all()
        return [
            AgentRow(a.email, a.name, a.active, a.notify, ",".join(a.types) or "all")
            for a in agents
        ]
