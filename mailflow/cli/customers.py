"""`mailflow customer`: a customer's own settings."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import click
from sqlalchemy.ext.asyncio import AsyncSession

from mailflow.cli.common import Config, administrator, config_of, in_transaction
from mailflow.mail.addresses import Mailbox, is_valid_address, normalise
from mailflow.people import languages
from mailflow.render import Renderer
from mailflow.tickets import ops


def register(cli: click.Group) -> None:
    @cli.group("customer")
    def customer_group() -> None:
        """Customers: their language and time zone."""

    @customer_group.command("set")
    @click.argument("email")
    @click.argument("assignments", nargs=-1, required=True, metavar="language=CODE|timezone=ZONE")
    @click.pass_context
    def set_settings(ctx: click.Context, email: str, assignments: tuple[str, ...]) -> None:
        """Set the customer's language (fr, pl…) or time zone (Europe/Warsaw); nothing after
        = clears it. The customer is created if new."""
        if not is_valid_address(email):
            raise click.BadParameter(f"{email!r} is not an email address", param_hint="EMAIL")
        settings = checked(config_of(ctx), assignments)

        async def work(session: AsyncSession, config: Config, now: datetime) -> dict[str, str]:
            customer = await ops.customer_for(session, Mailbox("", normalise(email)), now)
            changed = await languages.set_language(
                session, customer, administrator(), now, **settings
            )
            return {key: value or "(none)" for key, value in changed.items()}

        changed = in_transaction(ctx, work)
        said = ", ".join(f"{key} {value}" for key, value in changed.items()) or "nothing changed"
        click.echo(f"customer {normalise(email)}: {said}")


def checked(config: Config, assignments: Iterable[str]) -> dict[str, str | None]:
    """language=…, timezone=… checked before anything is opened; a language needs a catalog."""
    try:
        return languages.checked_settings(assignments, Renderer.from_config(config).languages)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="language=CODE|timezone=ZONE") from None
