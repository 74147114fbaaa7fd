"""`mailflow init`: a configuration file to start from, and the database."""

from __future__ import annotations

from pathlib import Path

import click

from mailflow.cli.common import config_of, database, run
from mailflow.locations import CONFIG_FILE
from mailflow.resources import example_config


def register(cli: click.Group) -> None:
    @cli.command()
    @click.option("--force", is_flag=True, help="Overwrite an existing configuration file.")
    @click.pass_context
    def init(ctx: click.Context, force: bool) -> None:
        """Write mailflow.toml (every setting, commented) and create the database."""
        target: Path = ctx.find_root().params.get("config") or Path(CONFIG_FILE)
        if target.exists() and not force:
            click.echo(f"{target} exists; keeping it (use --force to overwrite)")
        else:
            target.write_text(example_config().read_text(encoding="utf-8"), encoding="utf-8")
            click.echo(f"wrote {target}")
        ctx.find_root().params["config"] = target
        config = config_of(ctx)

        async def create() -> None:
            async with database(config):
                pass

        run(create())
        click.echo(f"database ready: {config.database_url}")
        found_here = target == Path(CONFIG_FILE)  # what mailflow reads when told nothing
        click.echo("next: mailflow run" if found_here else f"next: mailflow --config {target} run")
