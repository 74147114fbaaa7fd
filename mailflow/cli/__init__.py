"""The `mailflow` command."""

from __future__ import annotations

from pathlib import Path

import click

from mailflow import log
from mailflow.cli import (
    activities,
    agents,
    check,
    customers,
    db,
    deliver,
    inbound,
    inject,
    record,
    rules,
    run,
    setup,
    tickets,
    usergroups,
)
from mailflow.cli.common import Cli
from mailflow.config import CONFIG_ENV


@click.group(cls=Cli, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "-c",
    type=click.Path(path_type=Path),
    envvar=CONFIG_ENV,
    help=f"The configuration file (default: ${CONFIG_ENV}, else built-in defaults).",
)
def cli(config: Path | None) -> None:
    """mailflow: an email-driven helpdesk."""
    # Commands print their results; only problems go to the log (`run` sets its own level).
    log.configure("warning")


for module in (
    setup,
    run,
    check,
    db,
    tickets,
    record,
    activities,
    agents,
    usergroups,
    customers,
    rules,
    inject,
    inbound,
    deliver,
):
    module.register(cli)


def main() -> None:
    cli(prog_name="mailflow")
