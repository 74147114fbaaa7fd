"""`mailflow db`: schema migrations."""

from __future__ import annotations

import click

from mailflow.cli.common import config_of, run
from mailflow.db import migrate
from mailflow.db.session import Database


def register(cli: click.Group) -> None:
    @cli.group("db")
    def db_group() -> None:
        """The database schema."""

    @db_group.command()
    @click.pass_context
    def upgrade(ctx: click.Context) -> None:
        """Apply every migration the database lacks."""
        config = config_of(ctx)

        async def work() -> None:
            db = Database.from_config(config)
            try:
                await migrate.ensure_current(db, config, upgrade_now=True)
            finally:
                await db.dispose()

        run(work())
        click.echo(f"database up to date: {config.database_url}")
