"""Who may do what by email: one table, checked for every command before any is applied."""

from __future__ import annotations

import enum

from mailflow.config import Config


class Role(enum.StrEnum):
    OPERATOR = "operator"
    ADMIN = "admin"  # the team's administrator
    SUPERVISOR = "supervisor"  # a customer supervising their usergroup's tickets


_AGENTS = frozenset({Role.OPERATOR, Role.ADMIN})
_EVERYONE = _AGENTS | {Role.SUPERVISOR}

# Command → the roles that may give it. Supervisors spread their organisation's requests:
# they close, reopen, assign and prioritise, and nothing else.
ALLOWED: dict[str, frozenset[Role]] = {
    "status": _EVERYONE,
    "assign": _EVERYONE,
    "group": _EVERYONE,
    "priority": _EVERYONE,
    "type": _AGENTS,
    "usergroup": frozenset({Role.ADMIN}),
    "note": _AGENTS,
    "private": _AGENTS,
    "cc": _AGENTS,
    "approval": _AGENTS,
    "resolution": _AGENTS,
    "time": _AGENTS,
}


def may(role: Role, command: str, config: Config) -> bool:
    if command == "usergroup" and role is Role.OPERATOR:
        return config.people.operators_may_change_usergroup
    return role in ALLOWED.get(command, frozenset())
