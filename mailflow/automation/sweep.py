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
    """Every ticket whose time has come for this rule, a batch per transaction. A ticket
    whose condition does not hold yet is left unclaimed, so a later sweep fires it once the
    condition comes to hold (an hour that passes on Friday night fires on Monday morning)."""
    fired = 0
    after = 0  # keyset paging: tickets waiting on a condition never starve the ones behind
    while True:
        batch_fired, last = await _sweep_batch(app, rule, after)
        fired += batch_fired
        if last is None:
            break
        after = last
    if fired:
        log.info("rules.swept", rule=rule.name, fired=fired)
    return fired


async def _sweep_batch(app: App, rule: Rule, after: int) -> tuple[int, int | None]:
    """One batch of due tickets with ids above `after`: how many fired, and the last id
    looked at (None when this was the last batch)."""
    timer = rule.timer
    assert timer is not None
    now = app.clock.now()
    fired = 0
    async with app.db.transaction() as session:
        query = (
            select(Ticket)
            .where(timer.due(app.config, now), timer.not_fired(rule.name), Ticket.id > after)
            .order_by(Ticket.id)
            .limit(SWEEP_BATCH)
        )
        if rule.types is not None:
            query = query.where(Ticket.type.in_(rule.types))
        tickets = (await session.scalars(query)).unique().all()
        for ticket in tickets:
            facts = await app.engine.timed_facts(session, rule, ticket, now)
            if facts is None:
                continue
            # Claimed before the actions: another daemon sweeping at the same moment skips it.
            claimed = await insert_if_new(
                session,
                RuleFiring,
                ["rule", "ticket_id", "episode_at"],
                rule=rule.name,
                ticket_id=ticket.id,
                episode_at=timer.episode(ticket),
                fired_at=now,
            )
            if claimed:
                await app.engine.fire_timed(session, rule, ticket, facts, now)
                fired += 1
    last = tickets[-1].id if len(tickets) == SWEEP_BATCH else None
    return fired, last
