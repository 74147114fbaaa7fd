"""`mailflow suppression`: addresses that get no automatic mail (complaints, an administrator)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import click
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mailflow.cli.common import Config, config_of, in_transaction
from mailflow.cli.lists import list_options, print_page
from mailflow.db.models import Suppression
from mailflow.db.paging import AnyRow, Keyset
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
    @list_options
    @click.pass_context
    def list_suppressions(ctx: click.Context, fmt: str, limit: int, after: str | None) -> None:
        """Every suppressed address, oldest first, with why."""
        query = select(
            Suppression.id, Suppression.address, Suppression.created_at, Suppression.reason
        )
        order = Keyset((Suppression.id,))
        columns = ("address", "since", "reason")
        print_page(config_of(ctx), query, order, _row, columns, fmt=fmt, limit=limit, after=after)

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


def _row(found: AnyRow) -> SuppressionRow:
    return SuppressionRow(
        found.address, found.created_at.isoformat(timespec="seconds"), found.reason
    )
