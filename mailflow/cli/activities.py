"""`mailflow activity`, `time` and `report time`: what agents plan and what they spent."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import click
from sqlalchemy import Label, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mailflow.cli.common import (
    Config,
    acting,
    agent_option,
    as_option,
    config_of,
    find_agent,
    in_transaction,
)
from mailflow.cli.lists import list_options, print_page
from mailflow.cli.record import find_ticket
from mailflow.db.models import Agent, Customer, Ticket
from mailflow.db.paging import AnyRow, Keyset
from mailflow.db.people import Usergroup
from mailflow.db.record import Activity, ActivityKind, TimeEntry
from mailflow.people.directory import NotFound
from mailflow.pipeline.commands import spent_minutes
from mailflow.tickets import activities, ops


@dataclass(frozen=True, slots=True)
class ActivityRow:
    id: int
    ticket: int
    kind: str
    title: str
    at: str
    owner: str
    remind_at: str
    done: bool


@dataclass(frozen=True, slots=True)
class TimeRow:
    by: str
    minutes: int
    billable_minutes: int
    hours: str


def _moment(value: str) -> datetime:
    """2026-12-01 14:30 (UTC), or an ISO time with its offset."""
    try:
        parsed = datetime.fromisoformat(value.replace(" ", "T", 1))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a time such as 2026-12-01 14:30") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def register(cli: click.Group) -> None:
    _activities(cli)
    _time(cli)


def _activities(cli: click.Group) -> None:
    @cli.group("activity")
    def activity_group() -> None:
        """Tasks, calls and events on tickets, with reminders."""

    @activity_group.command("add")
    @click.argument("number", type=int)
    @click.option(
        "--kind",
        type=click.Choice([k.value for k in ActivityKind]),
        default="task",
        show_default=True,
    )
    @click.option("--title", required=True)
    @click.option("--at", "at", required=True, help="When: 2026-12-01 14:30 (UTC).")
    @click.option("--details", default="")
    @agent_option("--by", "Who creates it, and so owns it")
    @click.option("--remind-at", help="When to mail the owner a reminder (in the future).")
    @click.pass_context
    def add(
        ctx: click.Context,
        number: int,
        kind: str,
        title: str,
        at: str,
        details: str,
        email: str,
        remind_at: str | None,
    ) -> None:
        """Plan a task, call or event on ticket NUMBER."""

        async def work(session: AsyncSession, config: Config, now: datetime) -> int:
            ticket = await find_ticket(session, number)
            owner = await find_agent(session, email)
            try:
                activity = activities.plan(
                    ticket,
                    kind=ActivityKind(kind),
                    title=title,
                    at=_moment(at),
                    owner=owner,
                    now=now,
                    details=details,
                    remind_at=_moment(remind_at) if remind_at else None,
                )
            except activities.ActivityProblem as exc:
                raise click.UsageError(str(exc)) from None
            session.add(activity)
            await session.flush()
            ops.record(
                session,
                ticket,
                ops.Actor.agent(owner),
                "activity_added",
                now,
                activity=activity.id,
                kind=kind,
                title=title,
            )
            return activity.id

        click.echo(f"activity {in_transaction(ctx, work)} added to ticket {number}")

    @activity_group.command("done")
    @click.argument("activity_id", type=int)
    @as_option
    @click.pass_context
    def done(ctx: click.Context, activity_id: int, as_agent: str | None) -> None:
        """Mark an activity done."""

        async def work(session: AsyncSession, config: Config, now: datetime) -> str:
            activity = await session.get(Activity, activity_id)
            if activity is None:
                raise NotFound(f"no activity {activity_id}")
            if activity.done_at is not None:  # the first time stands
                when = f"{activity.done_at:%Y-%m-%d %H:%M} UTC"
                return f"activity {activity_id} was done already, at {when}"
            activity.done_at = now
            ops.record(
                session,
                await find_ticket(session, activity.ticket_id),
                await acting(session, as_agent),
                "activity_done",
                now,
                activity=activity_id,
            )
            return f"activity {activity_id} done"

        click.echo(in_transaction(ctx, work))

    @activity_group.command("owner")
    @click.argument("activity_id", type=int)
    @click.argument("email")
    @as_option
    @click.pass_context
    def owner(ctx: click.Context, activity_id: int, email: str, as_agent: str | None) -> None:
        """Hand an activity on to another agent."""

        async def work(session: AsyncSession, config: Config, now: datetime) -> None:
            activity = await session.get(Activity, activity_id)
            if activity is None:
                raise NotFound(f"no activity {activity_id}")
            agent = await find_agent(session, email)
            activity.owner_id = agent.id
            ops.record(
                session,
                await find_ticket(session, activity.ticket_id),
                await acting(session, as_agent),
                "activity_owner_changed",
                now,
                activity=activity_id,
                owner=agent.email,
            )

        in_transaction(ctx, work)
        click.echo(f"activity {activity_id} now belongs to {email.lower()}")

    @activity_group.command("list")
    @click.option("--ticket", "number", type=int, help="Only this ticket's.")
    @click.option("--open", "only_open", is_flag=True, help="Only those not done.")
    @list_options
    @click.pass_context
    def list_activities(
        ctx: click.Context,
        number: int | None,
        only_open: bool,
        fmt: str,
        limit: int,
        after: str | None,
    ) -> None:
        """List activities, the soonest first."""
        query = select(
            Activity.id,
            Activity.ticket_id,
            Activity.kind,
            Activity.title,
            Activity.at,
            Agent.email,
            Activity.remind_at,
            Activity.done_at,
        ).join(Agent, Agent.id == Activity.owner_id)
        if number is not None:
            query = query.where(Activity.ticket_id == number)
        if only_open:
            query = query.where(Activity.done_at.is_(None))

        def row(found: AnyRow) -> ActivityRow:
            return ActivityRow(
                found.id,
                found.ticket_id,
                found.kind.value,
                found.title,
                found.at.isoformat(timespec="minutes"),
                found.email,
                found.remind_at.isoformat(timespec="minutes") if found.remind_at else "",
                found.done_at is not None,
            )

        columns = ("id", "ticket", "kind", "title", "at", "owner", "remind_at", "done")
        order = Keyset((Activity.at, Activity.id))
        print_page(config_of(ctx), query, order, row, columns, fmt=fmt, limit=limit, after=after)


def _time(cli: click.Group) -> None:
    @cli.command("time")
    @click.argument("number", type=int)
    @click.argument("spent")
    @agent_option("--agent", "Whose time it was")
    @click.option("--billable", is_flag=True)
    @click.option("--note", default="")
    @click.pass_context
    def add_time(
        ctx: click.Context, number: int, spent: str, email: str, billable: bool, note: str
    ) -> None:
        """Record time spent on ticket NUMBER (45m, 1h30m, 2h)."""
        minutes = spent_minutes(spent)
        if minutes is None:
            raise click.BadParameter(f"{spent!r} is not a time such as 45m or 1h30m, up to 24h")

        async def work(session: AsyncSession, config: Config, now: datetime) -> None:
            ticket = await find_ticket(session, number)
            agent = await find_agent(session, email)
            session.add(
                TimeEntry(
                    ticket_id=ticket.id,
                    agent_id=agent.id,
                    minutes=minutes,
                    billable=billable,
                    note=note,
                    spent_at=now,
                )
            )
            ops.record(
                session,
                ticket,
                ops.Actor.agent(agent),
                "time_spent",
                now,
                minutes=minutes,
                billable=billable,
                note=note,
            )

        in_transaction(ctx, work)
        click.echo(f"{minutes} minutes on ticket {number}")

    @cli.group("report")
    def report_group() -> None:
        """Reports: time spent, for billing."""

    @report_group.command("time")
    @click.option("--from", "start", required=True, help="First day, e.g. 2026-11-01.")
    @click.option("--to", "end", required=True, help="Last day, included.")
    @click.option("--by", type=click.Choice(["customer", "agent", "usergroup"]), required=True)
    @click.option("--csv", "as_csv", is_flag=True, help="The same as --format csv.")
    @list_options
    @click.pass_context
    def report_time(
        ctx: click.Context,
        start: str,
        end: str,
        by: str,
        as_csv: bool,
        fmt: str,
        limit: int,
        after: str | None,
    ) -> None:
        """Time spent per customer, agent or usergroup, to measure effort and bill it."""
        try:
            first, last = date.fromisoformat(start), date.fromisoformat(end)
        except ValueError:
            raise click.BadParameter("dates look like 2026-11-01") from None
        since = datetime.combine(first, time(), UTC)
        until = datetime.combine(last, time(), UTC) + timedelta(days=1)
        key: Label[str] = {
            "customer": Customer.email,
            "agent": Agent.email,
            "usergroup": func.coalesce(Usergroup.name, "(none)"),
        }[by].label("by")
        billable = func.sum(TimeEntry.minutes).filter(TimeEntry.billable)
        query = (
            select(key, func.sum(TimeEntry.minutes).label("minutes"), billable.label("billable"))
            .join(Ticket, Ticket.id == TimeEntry.ticket_id)
            .join(Customer, Customer.id == Ticket.customer_id)
            .join(Agent, Agent.id == TimeEntry.agent_id)
            .outerjoin(Usergroup, Usergroup.id == Ticket.usergroup_id)
            .where(TimeEntry.spent_at >= since, TimeEntry.spent_at < until)
            .group_by(key)
        )

        def row(found: AnyRow) -> TimeRow:
            total = int(found.minutes)
            return TimeRow(str(found.by), total, int(found.billable or 0), f"{total / 60:.2f}")

        columns = ("by", "minutes", "billable_minutes", "hours")
        order = Keyset((key,))
        print_page(
            config_of(ctx),
            query,
            order,
            row,
            columns,
            fmt="csv" if as_csv else fmt,
            limit=limit,
            after=after,
        )
