"""`mailflow inject`: push .eml files through the same pipeline as SMTP, without SMTP."""

from __future__ import annotations

import os
from pathlib import Path

import click

from mailflow.cli.common import Config, application, config_of, run
from mailflow.ingest.accept import accept
from mailflow.ingest.envelope import Channel, Envelope, Outcome


def register(cli: click.Group) -> None:
    @cli.command()
    @click.argument(
        "files",
        nargs=-1,
        required=True,
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
    )
    @click.option("--to", "rcpt", help="Envelope recipient (default: the message's To and Cc).")
    @click.option("--from", "mail_from", default="", help="Envelope sender.")
    @click.pass_context
    def inject(
        ctx: click.Context, files: tuple[Path, ...], rcpt: str | None, mail_from: str
    ) -> None:
        """Process messages as if they had arrived by SMTP. A running daemon sends the replies."""
        config = config_of(ctx)
        outcomes = run(_inject(config, files, rcpt, mail_from))
        for path, outcome in zip(files, outcomes, strict=True):
            ticket = f" ticket {outcome.ticket_id}" if outcome.ticket_id else ""
            reason = f": {outcome.reason}" if outcome.reason else ""
            click.echo(
                f"{path}: {outcome.fate.value} (inbound {outcome.inbound_id}){ticket}{reason}"
            )
        if any(not o.owned for o in outcomes):
            ctx.exit(os.EX_TEMPFAIL)


async def _inject(
    config: Config, files: tuple[Path, ...], rcpt: str | None, mail_from: str
) -> list[Outcome]:
    async with application(config) as app:
        outcomes = []
        for path in files:
            envelope = Envelope(Channel.INJECT, mail_from, (rcpt,) if rcpt else (), app.clock.now())
            outcomes.append(await accept(app, path.read_bytes(), envelope))
        return outcomes
