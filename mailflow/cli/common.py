"""What every command shares: the config option, the database, and errors without tracebacks."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import click
from sqlalchemy.ext.asyncio import AsyncSession

from mailflow.app import App
from mailflow.automation.schema import RuleError
from mailflow.clock import SystemClock
from mailflow.config import Config as Config
from mailflow.config import ConfigError, load_config
from mailflow.db import migrate
from mailflow.db.session import Database, DatabaseUnavailable
from mailflow.people.directory import NotFound
from mailflow.render import TemplateProblem

T = TypeVar("T")

# (exception, exit status) in lookup order; the message is the exception's own text.
EXIT_STATUSES: tuple[tuple[type[Exception], int], ...] = (
    (ConfigError, os.EX_CONFIG),
    (RuleError, os.EX_CONFIG),
    (TemplateProblem, os.EX_CONFIG),
    (DatabaseUnavailable, os.EX_TEMPFAIL),
)


class Cli(click.Group):
    """Maps the errors a person can act on to one line and an exit status."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except tuple(cls for cls, _ in EXIT_STATUSES) as exc:
            status = next(code for cls, code in EXIT_STATUSES if isinstance(exc, cls))
            click.echo(f"mailflow: {exc}", err=True)
            ctx.exit(status)


def config_of(ctx: click.Context) -> Config:
    path: Path | None = ctx.find_root().params.get("config")
    return load_config(path)


def run(work: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(work)


@contextlib.asynccontextmanager
async def database(config: Config) -> AsyncIterator[Database]:
    """The database, brought up to date first when auto_migrate allows it."""
    db = Database.from_config(config)
    try:
        await migrate.ensure_current(db, config)
        yield db
    finally:
        await db.dispose()


@contextlib.asynccontextmanager
async def application(config: Config) -> AsyncIterator[App]:
    """The whole App (rules, templates, pipeline), for commands that process mail."""
    app = App(config)
    try:
        await migrate.ensure_current(app.db, config)
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
