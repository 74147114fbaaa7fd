"""The rest of a ticket's record from the shell: approvals, resolution, activities, time
spent, attachments, and the time report that bills it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import click
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mailflow.cli.common import (
    Config,
    agent_option,
    application,
    config_of,
    find_agent,
    in_transaction,
    run,
)
from mailflow.cli.lists import list_options, print_page
from mailflow.db.models import Attachment, Blob, Message, Ticket
from mailflow.db.paging import AnyRow, Keyset
from mailflow.db.record import Approval, ApprovalState
from mailflow.people.directory import NotFound
from mailflow.tickets import ops, resolutions
from mailflow.tickets.attachment_files import AttachmentFiles
from mailflow.tickets.messages import content


@dataclass(frozen=True, slots=True)
class ApprovalRow:
    id: int
    ticket: int
    approver: str
    state: str
    requested_by: str
    reason: str
    expires: str


@dataclass(frozen=True, slots=True)
class AttachmentRow:
    id: int
    message: int
    filename: str
    content_type: str
    size: int


async def find_ticket(session: AsyncSession, number: int) -> Ticket:
    ticket = await session.get(Ticket, number)
    if ticket is None:
        raise NotFound(f"no ticket {number}")
    return ticket


def register(cli: click.Group) -> None:
    _approvals(cli)
    _resolution(cli)
    _attachments(cli)


def _approvals(cli: click.Group) -> None:
    @cli.command("approvals")
    @click.option("--pending", is_flag=True, help="Only those still waiting for a decision.")
    @click.option("--ticket", "number", type=int, help="Only this ticket's.")
    @list_options
    @click.pass_context
    def approvals(
        ctx: click.Context,
        pending: bool,
        number: int | None,
        fmt: str,
        limit: int,
        after: str | None,
    ) -> None:
        """Approvals asked for, and what became of them."""
        query = select(
            Approval.id,
            Approval.ticket_id,
            Approval.approver,
            Approval.state,
            Approval.requested_by,
            Approval.reason,
            Approval.expires_at,
        )
        if pending:
            query = query.where(Approval.state == ApprovalState.PENDING)
        if number is not None:
            query = query.where(Approval.ticket_id == number)

        def row(found: AnyRow) -> ApprovalRow:
            return ApprovalRow(
                found.id,
                found.ticket_id,
                found.approver,
                found.state.value,
                found.requested_by,
                found.reason,
                found.expires_at.isoformat(timespec="minutes"),
            )

        columns = ("id", "ticket", "approver", "state", "requested_by", "reason", "expires")
        order = Keyset((Approval.id,))
        print_page(config_of(ctx), query, order, row, columns, fmt=fmt, limit=limit, after=after)


def _resolution(cli: click.Group) -> None:
    @cli.command("resolve")
    @click.argument("number", type=int)
    @click.option("--text", required=True, help="How the ticket was solved.")
    @agent_option("--agent", "Who resolved it")
    @click.option("--notify", is_flag=True, help="Mail the resolution to the customer.")
    @click.option("--publish", is_flag=True, help="Publish it in the help centre (/kb/).")
    @click.pass_context
    def resolve(
        ctx: click.Context, number: int, text: str, email: str, notify: bool, publish: bool
    ) -> None:
        """Set (or edit) ticket NUMBER's resolution."""

        async def work() -> str | None:
            async with application(config_of(ctx)) as app, app.db.transaction() as session:
                ticket = await find_ticket(session, number)
                agent = await find_agent(session, email)
                found = await resolutions.resolve(
                    session,
                    app.mailer,
                    ticket,
                    text,
                    notify=notify,
                    publish=publish,
                    actor=ops.Actor.agent(agent),
                    now=app.clock.now(),
                )
                return found.slug

        try:
            slug = run(work())
        except NotFound as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"ticket {number} resolved" + (f"; published at /kb/{slug}" if slug else ""))


def _attachments(cli: click.Group) -> None:
    @cli.group("attachment")
    def attachment_group() -> None:
        """Files that came with tickets' messages."""

    @attachment_group.command("list")
    @click.argument("number", type=int)
    @list_options
    @click.pass_context
    def list_attachments(
        ctx: click.Context, number: int, fmt: str, limit: int, after: str | None
    ) -> None:
        """Ticket NUMBER's attachments: name, size and type."""
        query = (
            select(
                Attachment.id,
                Attachment.message_id,
                Attachment.filename,
                Attachment.content_type,
                Attachment.size,
            )
            .join(Message, Message.id == Attachment.message_id)
            .where(Message.ticket_id == number)
        )

        def row(found: AnyRow) -> AttachmentRow:
            return AttachmentRow(*found)

        columns = ("id", "message", "filename", "content_type", "size")
        order = Keyset((Attachment.id,))
        print_page(config_of(ctx), query, order, row, columns, fmt=fmt, limit=limit, after=after)

    @attachment_group.command("get")
    @click.argument("attachment_id", type=int)
    @click.option(
        "--output",
        "-o",
        type=click.Path(path_type=Path),
        help="Where to write it (default: its own name, here).",
    )
    @click.pass_context
    def get(ctx: click.Context, attachment_id: int, output: Path | None) -> None:
        """Write attachment ATTACHMENT_ID to a file."""

        async def work(session: AsyncSession, config: Config, now: datetime) -> tuple[str, bytes]:
            found = await session.execute(
                select(Attachment.filename, Attachment.sha256, Attachment.size, Blob.data)
                .join(Blob, Blob.sha256 == Attachment.sha256)
                .where(Attachment.id == attachment_id)
            )
            row = found.first()
            if row is None:
                raise NotFound(f"no attachment {attachment_id}")
            name, sha256, size, data = row
            return str(name), content(AttachmentFiles.from_config(config), sha256, size, data)

        filename, data = in_transaction(ctx, work)
        target = output or Path(filename)
        if target.exists():
            raise click.ClickException(f"{target} exists; choose another with --output")
        target.write_bytes(data)
        click.echo(f"wrote {target} ({len(data)} bytes)")
