"""Tasks, calls and events on a ticket, with an optional reminder by email."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mailflow.db.models import Agent, Ticket
from mailflow.db.record import Activity, ActivityKind
from mailflow.outbox.mailer import Mailer, Recipient, TemplateMail
from mailflow.tickets import ops
from mailflow.tickets.events import ActivityDue, Event
from mailflow.tokens import Role


class ActivityProblem(ValueError):
    """A request that cannot be kept, e.g. a reminder for what is already past."""


def plan(
    ticket: Ticket,
    *,
    kind: ActivityKind,
    title: str,
    at: datetime,
    owner: Agent,
    now: datetime,
    details: str = "",
    remind_at: datetime | None = None,
) -> Activity:
    if remind_at is not None:
        if at <= now:
            raise ActivityProblem(
                f"a reminder is for what is still to come; this {kind.value} was at "
                f"{at:%Y-%m-%d %H:%M} UTC"
            )
        if remind_at <= now:
            raise ActivityProblem(f"the reminder time {remind_at:%Y-%m-%d %H:%M} UTC has passed")
        if remind_at > at:
            raise ActivityProblem(
                f"the reminder ({remind_at:%Y-%m-%d %H:%M} UTC) would come after the "
                f"{kind.value} itself ({at:%Y-%m-%d %H:%M} UTC)"
            )
    return Activity(
        ticket_id=ticket.id,
        kind=kind,
        title=title,
        details=details,
        at=at,
        owner_id=owner.id,
        remind_at=remind_at,
        created_at=now,
    )


async def remind_due(session: AsyncSession, mailer: Mailer, now: datetime) -> list[Event]:
    """Every reminder whose time has come, sent once: marked in the same transaction."""
    due = (
        await session.scalars(
            select(Activity)
            .where(
                Activity.remind_at <= now,
                Activity.reminded_at.is_(None),
                Activity.done_at.is_(None),
            )
            .order_by(Activity.remind_at)
            .limit(500)
        )
    ).all()
    events: list[Event] = []
    for activity in due:
        activity.reminded_at = now
        ticket = await session.get(Ticket, activity.ticket_id)
        owner = await session.get(Agent, activity.owner_id)
        assert ticket is not None
        if owner is not None and owner.active:
            mail = TemplateMail(
                template="agent/activity_reminder",
                to=Recipient(ops.mailbox_of(owner), Role.AGENT, owner.id),
                purpose="activity_reminder",
                actor=ops.Actor.system("reminders"),
                context={"activity": activity},
            )
            await mailer.send(session, ticket, mail, now)
        ops.record(
            session,
            ticket,
            ops.Actor.system("reminders"),
            "activity_reminded",
            now,
            activity=activity.id,
            owner=owner.email if owner else None,
        )
        events.append(ActivityDue(ticket.id, activity.id))
    return events
