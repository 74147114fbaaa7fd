"""The `mailflow` command. Each subcommand lives in a module of mailflow.cli with a
`register(cli)` function, imported only when the command runs: add a command by adding its
line to COMMANDS."""

from __future__ import annotations

from pathlib import Path

import click

from mailflow import __version__
from mailflow.cli.lazy import Lazy, LazyGroup
from mailflow.locations import CONFIG_ENV, CONFIG_FILE

# The commands in the order `mailflow --help` lists them: module, and the one-line summary.
COMMANDS: dict[str, Lazy] = {
    "init": Lazy("setup", "Write mailflow.toml (every setting commented) and the database."),
    "check": Lazy("check", "Validate the configuration, every rule and every template."),
    "run": Lazy("run", "Run the daemon until SIGTERM or SIGINT."),
    "db": Lazy("db", "The database schema."),
    "tickets": Lazy("tickets", "List the tickets of a view, a page at a time."),
    "ticket": Lazy("tickets", "One ticket: its conversation, the mail sent and its history."),
    "approvals": Lazy("record", "Approvals asked for, and what became of them."),
    "resolve": Lazy("record", "Set (or edit) a ticket's resolution."),
    "activity": Lazy("activities", "Tasks, calls and events on tickets, with reminders."),
    "time": Lazy("activities", "Record time spent on a ticket."),
    "report": Lazy("activities", "Reports: time spent, for billing."),
    "attachment": Lazy("record", "Files that came with tickets' messages."),
    "agent": Lazy("agents", "Agents: who may answer tickets by email."),
    "team": Lazy("agents", "Support teams."),
    "group": Lazy("agents", "Groups of agents inside a team; tickets can be assigned to one."),
    "usergroup": Lazy("usergroups", "Customers' organisations: members, supervisors, fields."),
    "customer": Lazy("customers", "Customers: their language and time zone."),
    "rules": Lazy("rules", "The workflow rules, and what they would do with a message."),
    "inject": Lazy("inject", "Process .eml files as if they had arrived by SMTP."),
    "inbound": Lazy("inbound", "Messages as received; retry or discard quarantined ones."),
    "deliver": Lazy("deliver", "Take one message on standard input, for an MTA's pipe."),
    "suppression": Lazy("suppressions", "Addresses no automatic mail goes to (complaints)."),
}


@click.group(
    cls=LazyGroup,
    lazy=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(
    __version__, "--version", "-V", prog_name="mailflow", message="%(prog)s %(version)s"
)
@click.option(
    "--config",
    "-c",
    type=click.Path(path_type=Path),
    envvar=CONFIG_ENV,
    help=f"The configuration file (default: ${CONFIG_ENV}, else ./{CONFIG_FILE} if there is "
    "one, else built-in defaults).",
)
def cli(config: Path | None) -> None:
    """mailflow: an email-driven helpdesk."""


def main() -> None:
    cli(prog_name="mailflow")
