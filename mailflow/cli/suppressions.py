"""`mailflow suppression`: addresses that get no automatic mail (complaints, an administrator)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import click
from sqlalchemy.ext.asyncio import AsyncSession

from mailflow.cli.common import Config, in_transaction
from mailflow.cli.output import FORMATS, render
from mailflow.mail.addresses import is_valid_address, normalise
from mailflow.outbox import suppressions


@dataclass(frozen=True, slots=True)
class SuppressionRow:
    address: str
    since: str
    reason: str


def register(cli: click.Group) -> None:
    @cli.group("suppression")
    def suppression_group() -> None:
        """Addresses no automatic mail goes to; a complaint (feedback report) adds one."""

    @suppression_group.command("list")
    @click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
    @click.pass_context
    def list_suppressions(ctx: click.Context, fmt: str) -> None:
        """Every suppressed address, oldest first, with why."""

        async def work(
            session: AsyncSession, config: Config, now: datetime
        ) -> list[SuppressionRow]:
            return [
                SuppressionRow(s.address, s.created_at.isoformat(timespec="seconds"), s.reason)
                for s in await suppressions.listed(session)
            ]

        click.echo(render(in_transaction(ctx, work), fmt, ("address", "since", "reason")))

    @suppression_group.command("add")
    @click.argument("address")
    @click.option("--reason", default="added by an administrator", show_default=True)
    @click.pass_context
    def add(ctx: click.Context, address: str, reason: str) -> None:
        """Send this address no more automatic mail."""
        if not is_valid_address(address):
            raise click.BadParameter(f"{address!r} is not an email address")

        async def work(session: AsyncSession, config: Config, now: datetime) -> bool:
            return await suppressions.suppress(session, address, reason, now)

        added = in_transaction(ctx, work)
        click.echo(f"{normalise(address)}: {'suppressed' if added else 'already suppressed'}")

    @suppression_group.command("clear")
    @click.argument("addresses", nargs=-1, required=True)
    @click.pass_context
    def clear(ctx: click.Context, addresses: tuple[str, ...]) -> None:
        """Let automatic mail go to these addresses again."""

        async def work(session: AsyncSession, config: Config, now: datetime) -> list[bool]:
            return [await suppressions.lift(session, a) for a in addresses]

        for address, lifted in zip(addresses, in_transaction(ctx, work), strict=True):
            click.echo(f"{normalise(address)}: {'cleared' if lifted else 'was not suppressed'}")
