"""`mailflow tickets` (lists) and `mailflow ticket show` (one ticket's whole record)."""

from __future__ import annotations

import click
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mailflow.cli.common import Config, config_of, database, run
from mailflow.cli.lists import list_options, print_page
from mailflow.clock import SystemClock
from mailflow.db.models import History, InboundMessage, Message, OutboxMessage, Ticket
from mailflow.db.record import Activity, Approval, Resolution, TimeEntry
from mailflow.tickets import views

COLUMNS = (
    "number",
    "type",
    "status",
    "priority",
    "subject",
    "customer",
    "usergroup",
    "group",
    "project",
    "assignee",
    "due",
    "updated",
)


def register(cli: click.Group) -> None:
    @cli.command("tickets")
    @click.option(
        "--view",
        "view",
        default="open",
        show_default=True,
        help="unassigned, customer-waiting, agent-waiting, overdue, mine, open, all, "
        "or one from [[views]] in the configuration.",
    )
    @click.option("--agent", help="Whose tickets --view mine lists (an agent's address).")
    @click.option("--type", "ticket_type", help="Only tickets of this type.")
    @click.option("--status", help="Only tickets in this status.")
    @click.option("--group", help="Only tickets assigned to this group.")
    @click.option("--usergroup", help="Only tickets of this usergroup.")
    @click.option("--project", help="Only tickets of this project.")
    @list_options
    @click.pass_context
    def tickets(
        ctx: click.Context,
        view: str,
        agent: str | None,
        ticket_type: str | None,
        status: str | None,
        group: str | None,
        usergroup: str | None,
        project: str | None,
        fmt: str,
        limit: int,
        after: str | None,
    ) -> None:
        """List the tickets of a view, the latest change first, a page at a time."""
        config = config_of(ctx)
        views.check_views(config)  # a view that cannot be a query: the file and key, no traceback
        filters = views.Filters(ticket_type, status, group, usergroup, project)
        try:
            query = views.listing(config, view, SystemClock().now(), filters, agent)
        except views.ViewProblem as exc:
            raise click.UsageError(str(exc)) from None
        print_page(
            config,
            query,
            views.ORDER,
            views.TicketRow.of,
            COLUMNS,
            fmt=fmt,
            limit=limit,
            after=after,
        )

    @cli.group("ticket")
    def ticket_group() -> None:
        """One ticket: its conversation, the mail sent and its history."""

    @ticket_group.command("show")
    @click.argument("number", type=int)
    @click.pass_context
    def show(ctx: click.Context, number: int) -> None:
        """The ticket's conversation, the mail sent about it, and its history."""
        config = config_of(ctx)
        text = run(_show(config, number))
        if text is None:
            raise click.ClickException(f"no ticket {number}")
        click.echo(text)


async def _show(config: Config, number: int) -> str | None:
    async with database(config) as db, db.reading() as session:
        ticket = await session.get(Ticket, number)
        if ticket is None:
            return None
        messages = (
            await session.scalars(
                select(Message).where(Message.ticket_id == number).order_by(Message.id)
            )
        ).all()
        sent = (
            await session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.ticket_id == number)
                .order_by(OutboxMessage.id)
            )
        ).all()
        history = (
            await session.scalars(
                select(History).where(History.ticket_id == number).order_by(History.id)
            )
        ).all()
        inbound = {
            row.id: row
            for row in (
                await session.scalars(
                    select(InboundMessage).where(InboundMessage.ticket_id == number)
                )
            ).all()
        }
        lines = _header(ticket, config)
        lines += ["", "Conversation"]
        for message in messages:
            lines += _message(message, inbound.get(message.inbound_id or -1))
        lines += ["", "Mail sent"]
        for row in sent:
            error = f" ({row.last_error})" if row.last_error and row.state != "sent" else ""
            lines.append(
                f"  {_time(row.created_at)}  #{row.id} {row.purpose} → "
                f"{', '.join(row.rcpt_tos)}: {row.state.value}{error}"
            )
        lines += await _record(session, number)
        lines += ["", "History"]
        for entry in history:
            details = ", ".join(f"{k}={v}" for k, v in entry.details.items())
            lines.append(
                f"  {_time(entry.at)}  {entry.actor_kind.value:<13} {entry.actor:<30} "
                f"{entry.action}  {details}".rstrip()
            )
        return "\n".join(lines)


async def _record(session: AsyncSession, number: int) -> list[str]:
    """Resolution, approvals, activities and time spent, when the ticket has any."""
    lines: list[str] = []
    resolution = await session.get(Resolution, number)
    if resolution is not None:
        where = f", published at /kb/{resolution.slug}" if resolution.published else ""
        lines += ["", f"Resolution (by {resolution.author}, {_time(resolution.updated_at)}{where})"]
        lines += [f"  {line}" for line in resolution.text.splitlines()]
    approvals = (
        await session.scalars(
            select(Approval).where(Approval.ticket_id == number).order_by(Approval.id)
        )
    ).all()
    if approvals:
        lines += ["", "Approvals"]
        for approval in approvals:
            decided = (
                f" on {_time(approval.decided_at)} by {approval.decided_via}"
                if (approval.decided_at)
                else ""
            )
            lines.append(
                f"  #{approval.id} {approval.approver}: {approval.state.value}{decided}"
                f" · asked by {approval.requested_by}: {approval.reason}"
            )
    activities = (
        await session.scalars(
            select(Activity).where(Activity.ticket_id == number).order_by(Activity.at)
        )
    ).all()
    if activities:
        lines += ["", "Activities"]
        lines += [
            f"  #{a.id} {a.kind.value} {_time(a.at)} {a.title}" + (" (done)" if a.done_at else "")
            for a in activities
        ]
    spent = (
        await session.execute(
            select(
                func.sum(TimeEntry.minutes), func.sum(TimeEntry.minutes).filter(TimeEntry.billable)
            ).where(TimeEntry.ticket_id == number)
        )
    ).one()
    if spent[0]:
        lines += ["", f"Time spent: {spent[0]} minutes, {spent[1] or 0} of them billable"]
    return lines


def _time(value: object) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if hasattr(value, "strftime") else str(value)


def _header(ticket: Ticket, config: Config) -> list[str]:
    assignee = f"{ticket.assignee.name} <{ticket.assignee.email}>" if ticket.assignee else "nobody"
    group = f" · group {ticket.group.name}" if ticket.group else ""
    private = " · private" if ticket.private else ""
    lines = [
        f"Ticket #{ticket.id}: {ticket.subject}",
        f"  type {ticket.type} · status {ticket.status} · priority {ticket.priority}{private}",
        f"  customer {ticket.customer.name} <{ticket.customer.email}> · assigned to {assignee}"
        f"{group}",
        f"  opened {_time(ticket.created_at)} · updated {_time(ticket.updated_at)}",
    ]
    usergroup = ticket.usergroup
    if usergroup is not None:
        lines.append(
            f"  usergroup {usergroup.name}" + (f" ({usergroup.title})" if usergroup.title else "")
        )
        for field in config.people.usergroup_fields:
            if usergroup.fields.get(field.name):
                lines.append(f"    {field.label or field.name}: {usergroup.fields[field.name]}")
    return lines


def _message(message: Message, inbound: InboundMessage | None) -> list[str]:
    visibility = "" if message.public else " (internal)"
    lines = [
        f"  --- {_time(message.created_at)}  {message.author_kind.value} "
        f"{message.from_name} <{message.from_address}>{visibility}",
    ]
    lines += [f"  {line}" for line in message.text.splitlines() or [""]]
    for attachment in message.attachments:
        lines.append(
            f"  [attachment] {attachment.filename} ({attachment.content_type}, "
            f"{attachment.size} bytes)"
        )
    if inbound is not None:
        lines += [f"  [decided] {decision}" for decision in inbound.decisions]
    return lines
