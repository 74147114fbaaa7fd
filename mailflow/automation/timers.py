"""Time-based rules: N in a status, N without the customer's or the agent's answer, before or
after a due date. A sweep (APScheduler, every rules.sweep_interval) finds the tickets whose
time has come; each fires once per episode (one stay in a status, one silence, one due
date), recorded in rule_firings so that a restart or a second daemon does not fire it again."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import ColumnElement, and_, exists, or_
from sqlalchemy.orm import InstrumentedAttribute

from mailflow.config import Config, duration_or_none
from mailflow.db.models import RuleFiring, Ticket

log = structlog.get_logger(__name__)

SWEEP_BATCH = 500  # tickets per rule per transaction of a sweep


class TimerProblem(Exception):
    """A `when:` the rule loader cannot use; it adds file and rule."""


@dataclass(frozen=True, slots=True)
class Timer:
    """When a time-based rule is due, for one ticket: its episode began at `clock`."""

    trigger: str
    delay: timedelta  # after the clock; negative: before it (a due date)
    status: str | None = None

    @property
    def clock(self) -> InstrumentedAttribute[Any]:
        return {
            "status_for": Ticket.status_since,
            "no_customer_reply": Ticket.last_agent_at,
            "no_agent_reply": Ticket.last_customer_at,
            "due": Ticket.due_at,
        }[self.trigger]

    def due(self, config: Config, now: datetime) -> ColumnElement[bool]:
        """Tickets whose time has come and that have not had this rule in this episode."""
        clock = self.clock
        conditions = [clock.is_not(None), clock <= now - self.delay]
        if self.delay < timedelta(0):  # before the due date: not once it has passed unseen
            conditions.append(clock > now)
        if self.trigger == "status_for":
            conditions.append(Ticket.status == self.status)
        else:
            conditions.append(Ticket.closed_at.is_(None))
        if self.trigger == "no_customer_reply":  # the agent spoke last
            conditions.append(
                or_(
                    Ticket.last_customer_at.is_(None),
                    Ticket.last_customer_at < Ticket.last_agent_at,
                )
            )
        if self.trigger == "no_agent_reply":  # the customer spoke last
            conditions.append(
                or_(Ticket.last_agent_at.is_(None), Ticket.last_agent_at < Ticket.last_customer_at)
            )
        return and_(*conditions)

    def not_fired(self, rule: str) -> ColumnElement[bool]:
        return ~exists().where(
            RuleFiring.rule == rule,
            RuleFiring.ticket_id == Ticket.id,
            RuleFiring.episode_at == self.clock,
        )

    def episode(self, ticket: Ticket) -> datetime:
        moment = getattr(ticket, self.clock.key)
        assert isinstance(moment, datetime)
        return moment


TIME_TRIGGERS = ("status_for", "no_customer_reply", "no_agent_reply", "due")


def _duration(value: Any, key: str) -> timedelta:
    parsed = duration_or_none(value)
    if parsed is None:
        raise TimerProblem(f"when.{key}: {value!r} is not a duration such as 30m, 4h or 2d")
    return parsed


def parse_timer(trigger: str, when: Any, statuses: set[str]) -> Timer:
    """`when:` of a time-based rule: {after: D} (status_for also names {status: S}); a due
    date takes {before: D} or {after: D}."""
    if not isinstance(when, dict):
        raise TimerProblem(f"trigger {trigger} needs `when:`, e.g. {{after: 2d}}")
    allowed = {"status_for": {"status", "after"}, "due": {"before", "after"}}.get(
        trigger, {"after"}
    )
    unknown = set(when) - allowed
    if unknown:
        raise TimerProblem(
            f"when: unknown keys {sorted(unknown)}; {trigger} takes {sorted(allowed)}"
        )
    if trigger == "due" and len(when) != 1:
        raise TimerProblem("when: give either before or after the due date")
    if trigger != "due" and "after" not in when:
        raise TimerProblem(f"when: {trigger} needs after, e.g. {{after: 2d}}")
    status = when.get("status")
    if trigger == "status_for" and status not in statuses:
        raise TimerProblem(f"when.status: {status!r} is not a status of the rule's types")
    if "before" in when:
        return Timer(trigger, -_duration(when["before"], "before"))
    return Timer(trigger, _duration(when["after"], "after"), status)
