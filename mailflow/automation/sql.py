"""Rule conditions as SQL, for views: a view over 100,000 tickets is one indexed query, not
100,000 Python evaluations. Fields without a column (the message, the event) are refused."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, false, func, not_, or_, select, true
from sqlalchemy.orm import InstrumentedAttribute

from mailflow.automation.conditions import AllOf, AnyOf, Compare, Condition, Not
from mailflow.db.models import Agent, Customer, Ticket
from mailflow.db.people import Group, Usergroup


class NotInSql(Exception):
    """A condition that a view cannot use; says which field or operator."""


def _named(model: Any, key: InstrumentedAttribute[Any]) -> Callable[[Any], ColumnElement[bool]]:
    """Compare a name held in another table (an agent's address, a group's name…)."""
    names = {Agent: Agent.email, Group: Group.name, Usergroup: Usergroup.name}

    def where(test: Callable[[Any], ColumnElement[bool]]) -> ColumnElement[bool]:
        return key.in_(select(model.id).where(test(func.lower(names[model]))))

    return where


# Plain columns of the ticket, compared directly.
COLUMNS: dict[str, InstrumentedAttribute[Any]] = {
    "ticket.number": Ticket.id,
    "ticket.type": Ticket.type,
    "ticket.status": Ticket.status,
    "ticket.priority": Ticket.priority,
    "ticket.subject": Ticket.subject,
    "ticket.project": Ticket.project,
    "ticket.private": Ticket.private,
}
# Names in other tables: the ticket's key into them, and the table.
REFERENCES: dict[str, tuple[InstrumentedAttribute[Any], Any]] = {
    "ticket.assignee": (Ticket.assignee_id, Agent),
    "ticket.group": (Ticket.group_id, Group),
    "ticket.usergroup": (Ticket.usergroup_id, Usergroup),
    "customer.usergroup": (Ticket.usergroup_id, Usergroup),
}
# Ages: how long ago the column's moment was.
AGES: dict[str, InstrumentedAttribute[Any]] = {
    "ticket.age": Ticket.created_at,
    "ticket.idle": Ticket.updated_at,
    "ticket.in_status_for": Ticket.status_since,
    "ticket.customer_silent_for": Ticket.last_customer_at,
    "ticket.agent_silent_for": Ticket.last_agent_at,
    "ticket.overdue_by": Ticket.due_at,
}


def to_sql(condition: Condition, now: datetime) -> ColumnElement[bool]:
    if isinstance(condition, AllOf):
        return and_(true(), *(to_sql(part, now) for part in condition.parts))
    if isinstance(condition, AnyOf):
        return or_(false(), *(to_sql(part, now) for part in condition.parts))
    if isinstance(condition, Not):
        # A comparison with an empty column is NULL in SQL and false in a rule: make it
        # false before negating, or `not` would drop the tickets where the column is empty.
        return not_(func.coalesce(to_sql(condition.part, now), false()))
    assert isinstance(condition, Compare)
    return _compare(condition, now)


def _compare(compare: Compare, now: datetime) -> ColumnElement[bool]:
    field, name, operand = compare.field, compare.name, compare.operand
    if field in AGES:
        return _age(AGES[field], name, operand, now)
    if field == "ticket.closed":
        closed = Ticket.closed_at.is_not(None)
        return closed if _truthy(name, operand) else not_(closed)
    if field == "customer.email":
        return Ticket.customer_id.in_(
            select(Customer.id).where(_test(func.lower(Customer.email), name, operand, field))
        )
    if field == "customer.domain":
        return Ticket.customer_id.in_(select(Customer.id).where(_domain(name, operand)))
    if field in REFERENCES:
        key, model = REFERENCES[field]
        if name == "equals" and operand is None:
            return key.is_(None)
        if name == "not_equals" and operand is None:
            return key.is_not(None)
        negated = {"not_equals": "equals", "not_in": "in"}.get(name)
        if negated is not None:  # nobody assigned is "not bob" too, as in a rule
            matching = _named(model, key)(lambda column: _test(column, negated, operand, field))
            return or_(key.is_(None), not_(matching))
        return _named(model, key)(lambda column: _test(column, name, operand, field))
    if field in COLUMNS:
        column = COLUMNS[field]
        if field in ("ticket.number", "ticket.private"):
            return _test(column.expression, name, operand, field, text=False)
        return _test(func.lower(column), name, operand, field)
    raise NotInSql(f"{field} cannot be used in a view (only the ticket's own fields can)")


def _domain(name: str, operand: Any) -> ColumnElement[bool]:
    """Addresses are stored lower-case; a domain is what follows the @ (LIKE works on both
    databases, where cutting the domain out would not)."""
    domains = [operand] if name in ("equals", "not_equals") else operand
    if name not in ("equals", "not_equals", "in", "not_in") or not all(
        isinstance(d, str) and "%" not in d and "_" not in d for d in domains
    ):
        raise NotInSql("customer.domain takes equals, not_equals, in or not_in in a view")
    matches = or_(false(), *(Customer.email.like(f"%@{d.lower()}") for d in domains))
    return matches if name in ("equals", "in") else not_(matches)


def _truthy(name: str, operand: Any) -> bool:
    if name not in ("equals", "not_equals") or not isinstance(operand, bool):
        raise NotInSql("ticket.closed takes equals: true or false")
    return operand if name == "equals" else not operand


def _age(
    column: InstrumentedAttribute[Any], name: str, operand: Any, now: datetime
) -> ColumnElement[bool]:
    if name not in ("older_than", "newer_than") or not isinstance(operand, timedelta):
        raise NotInSql(f"{column.key} is an age: compare it with older_than or newer_than")
    moment = now - operand
    return column < moment if name == "older_than" else column >= moment


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _test(
    column: ColumnElement[Any], name: str, operand: Any, field: str, text: bool = True
) -> ColumnElement[bool]:
    """`column` is already lower-cased for text: the rules compare text ignoring case."""
    fold = _lower if text else (lambda v: v)
    if name == "equals":
        return column.is_(None) if operand is None else column == fold(operand)
    if name == "not_equals":
        return (
            column.is_not(None)
            if operand is None
            else or_(column.is_(None), column != fold(operand))
        )
    if name == "in":
        return column.in_([fold(v) for v in operand])
    if name == "not_in":
        return or_(column.is_(None), column.not_in([fold(v) for v in operand]))
    if name == "contains":
        return column.contains(fold(operand), autoescape=True)
    if name == "matches" and isinstance(operand, re.Pattern):
        return column.regexp_match(operand.pattern, flags="i")
    if name in ("greater_than", "less_than") and not text:
        compared: ColumnElement[bool] = (
            column > operand if name == "greater_than" else (column < operand)
        )
        return compared
    raise NotInSql(f"{field}: the operator {name} cannot be used in a view")
