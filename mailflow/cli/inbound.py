"""`mailflow inbound`: every message as it arrived, and the quarantine of those that failed."""

from __future__ import annotations

from dataclasses import dataclass

import click
from sqlalchemy import func, select

from mailflow.cli.common import Config, application, config_of, database, run
from mailflow.cli.lists import list_options, print_page
from mailflow.db.models import InboundMessage, InboundState
from mailflow.db.paging import AnyRow, Keyset
from mailflow.ingest import accept
from mailflow.ingest.envelope import Outcome
from mailflow.mail.parse import parse

STATES = [s.value for s in InboundState]
HEAD_BYTES = 65536


@dataclass(frozen=True, slots=True)
class InboundRow:
    id: int
    received: str
    state: str
    sender: str
    subject: str
    ticket: int | None
    reason: str


def register(cli: click.Group) -> None:
    @cli.group("inbound")
    def inbound_group() -> None:
        """Messages as received; quarantined ones can be retried or discarded."""

    @inbound_group.command("list")
    @click.option("--state", type=click.Choice(STATES), help="Only messages in this state.")
    @list_options
    @click.pass_context
    def list_inbound(
        ctx: click.Context, state: str | None, fmt: str, limit: int, after: str | None
    ) -> None:
        """List messages as received, the newest first."""
        query = select(
            InboundMessage.id,
            InboundMessage.received_at,
            InboundMessage.state,
            InboundMessage.mail_from,
            # The headers are enough to name sender and subject: never the whole message.
            func.substr(InboundMessage.raw, 1, HEAD_BYTES).label("head"),
            InboundMessage.ticket_id,
            InboundMessage.reason,
        )
        if state:
            query = query.where(InboundMessage.state == InboundState(state))
        columns = ("id", "received", "state", "sender", "subject", "ticket", "reason")
        order = Keyset((InboundMessage.id,), descending=True)
        print_page(config_of(ctx), query, order, _row, columns, fmt=fmt, limit=limit, after=after)

    @inbound_group.command("show")
    @click.argument("inbound_id", type=int)
    @click.option("--raw", is_flag=True, help="Print the message exactly as received.")
    @click.pass_context
    def show(ctx: click.Context, inbound_id: int, raw: bool) -> None:
        """How a message was decided, and why it failed if it did."""
        found = run(_get(config_of(ctx), inbound_id))
        if found is None:
            raise click.ClickException(f"no inbound message {inbound_id}")
        if raw:
            click.echo(found.raw.decode("utf-8", "replace"), nl=False)
            return
        click.echo(_describe(found))

    @inbound_group.command("retry")
    @click.argument("inbound_ids", type=int, nargs=-1)
    @click.option("--all", "every", is_flag=True, help="Every quarantined message.")
    @click.pass_context
    def retry(ctx: click.Context, inbound_ids: tuple[int, ...], every: bool) -> None:
        """Run quarantined messages through the pipeline again (after a fix)."""
        if not inbound_ids and not every:
            raise click.UsageError("name inbound ids, or --all")
        outcomes = run(_retry(config_of(ctx), inbound_ids, every))
        for inbound_id, outcome in outcomes:
            ticket = f", ticket {outcome.ticket_id}" if outcome.ticket_id else ""
            reason = f": {outcome.reason}" if outcome.reason else ""
            click.echo(f"inbound {inbound_id}: {outcome.fate.value}{ticket}{reason}")

    @inbound_group.command("discard")
    @click.argument("inbound_ids", type=int, nargs=-1, required=True)
    @click.option("--reason", default="discarded by an administrator", show_default=True)
    @click.pass_context
    def discard(ctx: click.Context, inbound_ids: tuple[int, ...], reason: str) -> None:
        """Give up on quarantined messages; they stay on record, as discarded."""
        done = run(_discard(config_of(ctx), inbound_ids, reason))
        for inbound_id in inbound_ids:
            state = "discarded" if inbound_id in done else "not quarantined; left alone"
            click.echo(f"inbound {inbound_id}: {state}")


def _row(found: AnyRow) -> InboundRow:
    parsed = parse(bytes(found.head))
    return InboundRow(
        id=found.id,
        received=found.received_at.isoformat(timespec="seconds"),
        state=found.state.value,
        sender=parsed.sender.address if parsed.sender else found.mail_from,
        subject=parsed.subject,
        ticket=found.ticket_id,
        reason=found.reason,
    )


async def _get(config: Config, inbound_id: int) -> InboundMessage | None:
    async with database(config) as db, db.transaction() as session:
        return await session.get(InboundMessage, inbound_id)


def _describe(item: InboundMessage) -> str:
    parsed = parse(item.raw)
    lines = [
        f"Inbound #{item.id}: {item.state.value}" + (f" ({item.reason})" if item.reason else ""),
        f"  received {item.received_at.isoformat(timespec='seconds')} by {item.channel}, "
        f"{item.size} bytes",
        f"  envelope from <{item.mail_from}> to {', '.join(item.rcpt_tos) or '(none)'}",
        f"  From: {parsed.sender.formatted() if parsed.sender else '(none)'}",
        f"  Subject: {parsed.subject}",
        f"  Message-ID: {item.message_id or '(none)'}",
        f"  ticket: {item.ticket_id or '(none)'}",
    ]
    if item.automatic:
        lines.append(f"  automatic: {item.automatic}")
    if parsed.defects:
        lines.append(f"  defects: {', '.join(parsed.defects)}")
    lines += ["", "Decisions"] + [f"  {d}" for d in item.decisions or ["(none recorded)"]]
    if item.error:
        lines += ["", "Error", *(f"  {line}" for line in item.error.rstrip().splitlines())]
    return "\n".join(lines)


async def _retry(
    config: Config, inbound_ids: tuple[int, ...], every: bool
) -> list[tuple[int, Outcome]]:
    async with application(config) as app:
        ids = list(inbound_ids)
        if every:
            async with app.db.transaction() as session:
                ids += (
                    await session.scalars(
                        select(InboundMessage.id)
                        .where(InboundMessage.state == InboundState.QUARANTINED)
                        .order_by(InboundMessage.id)
                    )
                ).all()
        results = []
        for inbound_id in dict.fromkeys(ids):
            try:
                results.append((inbound_id, await accept.retry(app, inbound_id)))
            except LookupError as exc:
                raise click.ClickException(str(exc)) from None
        return results


async def _discard(config: Config, inbound_ids: tuple[int, ...], reason: str) -> set[int]:
    async with database(config) as db, db.transaction() as session:
        done = set()
        for inbound_id in inbound_ids:
            item = await session.get(InboundMessage, inbound_id)
            if item is not None and item.state is InboundState.QUARANTINED:
                item.state, item.reason = InboundState.DISCARDED, reason
                done.add(inbound_id)
        return done
