"""A ticket's conversation: storing messages, their attachments and their Message-IDs."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from mailflow.db.models import (
    NAME_LENGTH,
    ActorKind,
    Attachment,
    Blob,
    Direction,
    Message,
    MessageRef,
    Participant,
    ParticipantRole,
    Ticket,
)
from mailflow.db.upsert import insert_or_ignore, insert_rows_or_ignore
from mailflow.mail.addresses import Mailbox
from mailflow.mail.attachments import prepared
from mailflow.mail.parse import ParsedAttachment, ParsedMessage
from mailflow.mail.quotes import split_reply
from mailflow.tickets.attachment_files import AttachmentFiles
from mailflow.tickets.ops import Actor, record


async def add_ref(session: AsyncSession, ticket_id: int, message_id: str, now: datetime) -> None:
    """Remember that `message_id` belongs to the ticket, so that replies to it thread."""
    await insert_or_ignore(
        session,
        MessageRef,
        ["message_id", "ticket_id"],
        message_id=message_id,
        ticket_id=ticket_id,
        created_at=now,
    )


async def tickets_referenced(session: AsyncSession, message_ids: tuple[str, ...]) -> list[int]:
    """Tickets owning any of these Message-IDs, in the order the IDs were given."""
    if not message_ids:
        return []
    rows = await session.execute(
        select(MessageRef.message_id, MessageRef.ticket_id).where(
            MessageRef.message_id.in_(message_ids)
        )
    )
    owner = {mid: ticket_id for mid, ticket_id in rows}
    return [owner[mid] for mid in message_ids if mid in owner]


async def root_ref(session: AsyncSession, ticket_id: int) -> str | None:
    """The first Message-ID of a ticket, which every later mail names in References."""
    return await session.scalar(
        select(MessageRef.message_id)
        .where(MessageRef.ticket_id == ticket_id)
        .order_by(MessageRef.id)
        .limit(1)
    )


async def store_attachments(
    session: AsyncSession, message: Message, attachments: Sequence[ParsedAttachment]
) -> None:
    """Each content once (by SHA-256) and a row per attachment, in a statement for each table
    however many there are: one statement per attachment, each flushing the message's whole
    list, made a message with ten thousand take minutes."""
    if not attachments:
        return
    # A large one is in its file already (AttachmentFiles): its row holds no data.
    digests = [a.stored[0] if a.stored else hashlib.sha256(a.data).hexdigest() for a in attachments]
    blobs = {
        digest: {"sha256": digest, "size": a.size, "data": a.data}
        for digest, a in zip(digests, attachments, strict=True)
    }
    await insert_rows_or_ignore(session, Blob, ["sha256"], list(blobs.values()))
    await session.execute(
        insert(Attachment),
        [
            {
                "message_id": message.id,
                "filename": a.filename,
                "content_type": a.content_type,
                "size": a.size,
                "sha256": digest,
                "inline": a.inline,
                "content_id": a.content_id,
            }
            for digest, a in zip(digests, attachments, strict=True)
        ],
    )
    await session.refresh(message, ["attachments"])  # the rules see them


async def add_incoming(
    session: AsyncSession,
    ticket: Ticket,
    parsed: ParsedMessage,
    *,
    sender: Mailbox,
    inbound_id: int,
    actor: Actor,
    customer_id: int | None,
    now: datetime,
    public: bool = True,
    automatic: str | None = None,
    max_attachment_size: int = 20 * 1024 * 1024,
    text: str | None = None,
) -> Message:
    """Store a received message on a ticket: new text, full text, HTML and attachments.
    `text` replaces the received text where commands were taken off its top."""
    reply = split_reply(parsed.text if text is None else text)
    message = Message(
        ticket_id=ticket.id,
        inbound_id=inbound_id,
        direction=Direction.IN,
        author_kind=actor.kind,
        customer_id=customer_id,
        agent_id=actor.agent_id,
        public=public,
        automatic=automatic,
        from_address=sender.address,
        from_name=sender.name[:NAME_LENGTH],
        subject=parsed.subject,
        message_id=parsed.message_id,
        text=reply.with_signature if actor.kind is ActorKind.AGENT else reply.new,
        full_text=parsed.text,
        html=parsed.html,
        created_at=now,
        attachments=[],
    )
    session.add(message)
    await session.flush()
    kept, too_large = [], []
    for attachment in prepared(parsed.attachments):
        if attachment.body is not None or attachment.size > max_attachment_size:
            too_large.append(f"{attachment.filename} ({attachment.size} bytes)")
        else:
            kept.append(attachment)
    await store_attachments(session, message, kept)
    if parsed.message_id:
        await add_ref(session, ticket.id, parsed.message_id, now)
    ticket.updated_at = now
    names = [a.filename for a in kept]
    details: dict[str, object] = {"message": message.id, "public": public, "attachments": names}
    if too_large:
        details["not_extracted"] = too_large  # still in the raw message, over the size limit
    record(session, ticket, actor, "message_added", now, **details)
    return message


async def add_participants(
    session: AsyncSession, ticket: Ticket, people: dict[str, ParticipantRole], now: datetime
) -> None:
    """Address → role; someone already taking part keeps their role."""
    rows = [
        {"ticket_id": ticket.id, "address": address, "role": role, "created_at": now}
        for address, role in people.items()
    ]
    await insert_rows_or_ignore(session, Participant, ["ticket_id", "address"], rows)


async def attachments_of(
    session: AsyncSession, message: Message, files: AttachmentFiles
) -> list[ParsedAttachment]:
    """A stored message's attachments with their content, to pass them on."""
    rows = await session.execute(
        select(Attachment, Blob.data)
        .join(Blob, Blob.sha256 == Attachment.sha256)
        .where(Attachment.message_id == message.id)
        .order_by(Attachment.id)
    )
    return [
        ParsedAttachment(
            filename=attachment.filename,
            content_type=attachment.content_type,
            data=content(files, attachment.sha256, attachment.size, data),
            inline=attachment.inline,
            content_id=attachment.content_id,
        )
        for attachment, data in rows
    ]


def content(files: AttachmentFiles, sha256: str, size: int, data: bytes) -> bytes:
    """An attachment's content: its row's data, or its file when the row holds none."""
    return data if data or not size else files.read(sha256)
