"""The sweep that fires time-based rules; the scheduler runs it every rules.sweep_interval."""

from __future__ import annotations

import structlog
from sqlalchemy import select

from mailflow.app import App
from mailflow.automation.schema import Rule
from mailflow.automation.timers import SWEEP_BATCH
from mailflow.db.models import RuleFiring, Ticket
from mailflow.db.upsert import insert_if_new
from mailflow.tickets import activities, approvals

log = structlog.get_logger(__name__)


async def sweep(app: App) -> int:
    """Everything whose time has come: time-based rules, approvals that expire, reminders.
    Returns how many things happened."""
    fired = 0
    for rule in app.engine.rules.timed:
        fired += await _sweep_rule(app, rule)
    for due in (approvals.expire_due, activities.remind_due):
        now = app.clock.now()
        async with app.db.transaction() as session:
            events = await due(session, app.mailer, now)
            await app.engine.run(session, events, now)
        fired += len(events)
    if fired:
        app.wake_sender()
    return fired


async def _sweep_rule(app: App, rule: Rule) -> int:
    timer = rule.timer
    assert timer is not None
    now = app.clock.now()
    fired = 0
    async with app.db.transaction() as session:
        query = (
            select(Ticket)
            .where(timer.due(app.config, now), timer.not_fired(rule.name))
            .order_by(Ticket.id)
            .limit(SWEEP_BATCH)
        )
        if rule.types is not None:
            query = query.where(Ticket.type.in_(rule.types))
        tickets = (await session.scalars(query)).unique().all()
        for ticket in tickets:
            # Claimed first: another daemon sweeping at the same moment skips it.
            claimed = await insert_if_new(
                session,
                RuleFiring,
                ["rule", "ticket_id", "episode_at"],
                rule=rule.name,
                ticket_id=ticket.id,
                episode_at=timer.episode(ticket),
                fired_at=now,
            )
            if claimed and await app.engine.fire_timed(session, rule, ticket, now):
                fired += 1
    if fired:
        log.info("rules.swept", rule=rule.name, fired=fired)
    return fired
