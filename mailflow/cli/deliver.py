"""`mailflow deliver`: for an MTA's pipe transport. The exit status is the answer
(sysexits.h): 0 once committed, 75 to retry later, 65 and 67 for permanent refusals."""

from __future__ import annotations

import os
import sys

import click
from sqlalchemy.exc import DBAPIError

from mailflow.cli.common import Config, application, config_of, run
from mailflow.db.session import DatabaseUnavailable
from mailflow.ingest.accept import accept
from mailflow.ingest.envelope import Channel, Envelope, Fate, Outcome
from mailflow.pipeline.addressbook import AddressBook


def register(cli: click.Group) -> None:
    @cli.command()
    @click.option(
        "--recipient",
        "-r",
        "recipients",
        multiple=True,
        required=True,
        help="Envelope recipient, e.g. ${recipient} in Postfix (repeatable).",
    )
    @click.option(
        "--sender",
        "-f",
        default=None,
        help="Envelope sender, e.g. ${sender}; given empty, the null return path.",
    )
    @click.pass_context
    def deliver(ctx: click.Context, recipients: tuple[str, ...], sender: str | None) -> None:
        """Take one message on standard input, as an MTA's pipe transport delivers it."""
        config = config_of(ctx)
        raw = sys.stdin.buffer.read()
        refusal = _refusal(config, raw, recipients)
        if refusal is not None:
            message, status = refusal
            click.echo(f"mailflow: {message}", err=True)
            ctx.exit(status)
        try:
            outcome = run(_deliver(config, raw, recipients, sender))
        except (DatabaseUnavailable, DBAPIError, OSError) as exc:
            outcome = Outcome(Fate.DEFERRED, reason=str(exc))
        if not outcome.owned:
            click.echo(
                f"mailflow: database unavailable, try again later: {outcome.reason}", err=True
            )
            ctx.exit(os.EX_TEMPFAIL)
        ctx.exit(os.EX_OK)


def _refusal(config: Config, raw: bytes, recipients: tuple[str, ...]) -> tuple[str, int] | None:
    """Permanent refusals: the MTA bounces the message instead of retrying it."""
    if not raw.strip():
        return "empty message on standard input", os.EX_DATAERR
    limit = config.smtp.max_message_size
    if len(raw) > limit:
        return f"message of {len(raw)} bytes is over the limit of {limit}", os.EX_DATAERR
    addresses = AddressBook(config)
    unknown = [r for r in recipients if addresses.resolve(r) is None]
    if unknown:
        return f"no such mailbox here: {', '.join(unknown)}", os.EX_NOUSER
    return None


async def _deliver(
    config: Config, raw: bytes, recipients: tuple[str, ...], sender: str | None
) -> Outcome:
    # An MTA passes an empty sender for MAIL FROM:<>; no --sender at all means unknown.
    mail_from = "" if sender is None else (sender or "<>")
    async with application(config) as app:
        envelope = Envelope(Channel.PIPE, mail_from, recipients, app.clock.now())
        return await accept(app, raw, envelope)
