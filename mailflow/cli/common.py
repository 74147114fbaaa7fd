"""What every command shares: the configuration, the database, one transaction, and the
person acting."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mailflow.clock import SystemClock
from mailflow.config import Config as Config
from mailflow.config import load_config
from mailflow.db import schema_version
from mailflow.db.models import Agent
from mailflow.db.session import Database
from mailflow.mail.addresses import normalise
from mailflow.people.directory import NotFound
from mailflow.tickets.ops import Actor

if TYPE_CHECKING:
    from mailflow.app import App

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

as_option = click.option(
    "--as",
    "as_agent",
    metavar="AGENT",
    help="Act for this agent (an address): the history names them rather than you.",
)


def agent_option(alias: str, what: str) -> Callable[[F], F]:
    """--as AGENT (also --ALIAS) for a command that always acts for an agent: `what` says
    what the agent is to the record."""
    return click.option(
        "--as",
        alias,
        "email",
        required=True,
        metavar="AGENT",
        help=f"{what} (an agent's address); the history names them.",
    )


def config_of(ctx: click.Context) -> Config:
    path: Path | None = ctx.find_root().params.get("config")
    return load_config(path)


def run(work: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(work)


def app_of(config: Config) -> App:
    """The whole App (rules, templates, pipeline), imported only by the commands that need
    it; they print their results, so only problems are logged."""
    from mailflow import log
    from mailflow.app import App

    log.configure("warning")
    return App(config)


async def _up_to_date(db: Database, config: Config) -> None:
    """Migrate when auto_migrate allows it; Alembic is loaded only when there is work."""
    if not await schema_version.is_current(db):
        from mailflow.db import migrate

        await migrate.ensure_current(db, config)


@contextlib.asynccontextmanager
async def database(config: Config) -> AsyncIterator[Database]:
    """The database, brought up to date first when auto_migrate allows it."""
    db = Database.from_config(config)
    try:
        await _up_to_date(db, config)
        yield db
    finally:
        await db.dispose()


@contextlib.asynccontextmanager
async def application(config: Config) -> AsyncIterator[App]:
    """The whole App, for commands that process mail."""
    app = app_of(config)
    try:
        await _up_to_date(app.db, config)
        yield app
    finally:
        await app.close()


def in_transaction(
    ctx: click.Context, work: Callable[[AsyncSession, Config, datetime], Awaitable[T]]
) -> T:
    """Run `work` in one transaction; a lookup that fails becomes a one-line error."""
    config = config_of(ctx)

    async def go() -> T:
        async with database(config) as db, db.transaction() as session:
            return await work(session, config, SystemClock().now())

    try:
        return run(go())
    except NotFound as exc:
        raise click.ClickException(str(exc)) from None


def unix_user() -> str:
    """The person at the command line: whoever ran sudo, else the terminal's login, else
    the user this process runs as."""
    if os.environ.get("SUDO_USER"):
        return os.environ["SUDO_USER"]
    try:
        return os.getlogin()
    except OSError:  # no terminal (cron, a pipe, a service)
        return pwd.getpwuid(os.geteuid()).pw_name


def administrator() -> Actor:
    """The history's name for what a command does by itself: `administrator alice (cli)`."""
    return Actor.administrator(unix_user())


async def find_agent(session: AsyncSession, email: str) -> Agent:
    agent = await session.scalar(select(Agent).where(Agent.email == normalise(email)))
    if agent is None:
        raise NotFound(f"no agent {email}")
    return agent


async def acting(session: AsyncSession, as_agent: str | None) -> Actor:
    """The agent named with --as, else the administrator at the command line."""
    return Actor.agent(await find_agent(session, as_agent)) if as_agent else administrator()
