"""`mailflow run`: the daemon."""

from __future__ import annotations

import os

import click

from mailflow import log
from mailflow.app import App
from mailflow.cli.common import config_of, run
from mailflow.daemon import Daemon, run_until_signalled


def register(cli: click.Group) -> None:
    @cli.command("run")
    @click.pass_context
    def run_command(ctx: click.Context) -> None:
        """Run the daemon until SIGTERM or SIGINT; then finish what is under way and exit 0."""
        config = config_of(ctx)
        log.configure(config.log.level, config.log.format)
        app = App(config)
        app.check_secret(create=True)
        try:
            run(run_until_signalled(Daemon(app)))
        except OSError as exc:
            click.echo(f"mailflow: cannot start: {exc}", err=True)
            ctx.exit(os.EX_OSERR)
