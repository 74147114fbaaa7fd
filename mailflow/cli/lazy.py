"""A click group that imports a subcommand's module only when that command is used, so
that `mailflow --help` and quick commands do not pay for the daemon's imports."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import click


@dataclass(frozen=True, slots=True)
class Lazy:
    """Where a command is registered (a module of mailflow.cli with `register(cli)`) and the
    one line `mailflow --help` shows for it."""

    module: str
    summary: str


class LazyGroup(click.Group):
    """Lists commands from a table; imports a command's module on first use. Maps the
    errors a person can act on to one line and an exit status (see cli.errors)."""

    def __init__(self, *args: Any, lazy: Mapping[str, Lazy], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.lazy)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = self.lazy.get(cmd_name)
        if entry is not None and cmd_name not in self.commands:
            importlib.import_module(f"mailflow.cli.{entry.module}").register(self)
        command = self.commands.get(cmd_name)
        if command is not None and entry is not None and command.short_help is None:
            command.short_help = entry.summary
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The table's lines, without importing every command to read its docstring."""
        with formatter.section("Commands"):
            formatter.write_dl([(name, entry.summary) for name, entry in self.lazy.items()])

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as exc:
            from mailflow.cli.errors import exit_status  # only when something went wrong

            status = exit_status(exc)
            if status is None:
                raise
            click.echo(f"mailflow: {exc}", err=True)
            ctx.exit(status)
