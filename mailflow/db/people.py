"""The people structures: support teams with groups of agents, and customers' organisations
(usergroups) with members and supervisors."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from mailflow.db.base import LANGUAGE_LENGTH, NAME_LENGTH, ZONE_LENGTH, Base


class AgentRole(enum.StrEnum):
    OPERATOR = "operator"
    ADMIN = "admin"  # the team's administrator: every command, every setting


class Team(Base):
    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    created_at: Mapped[datetime]


class Group(Base):
    """Agents inside a team, such as billing or second line; tickets can be assigned to it."""

    __tablename__ = "groups"
    __table_args__ = (UniqueConstraint("team_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id"))
    name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime]
    # Round-robin assignment continues after this member.
    last_assigned_agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))


class GroupMember(Base):
    __tablename__ = "group_members"

    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id"), primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id"), primary_key=True, index=True)


class Usergroup(Base):
    """A customers' organisation. Its custom fields are declared in the configuration."""

    __tablename__ = "usergroups"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Short and lower-case: it is what support+<name>@ and #usergroup name it by.
    name: Mapped[str] = mapped_column(String(100), unique=True)
    title: Mapped[str] = mapped_column(String(NAME_LENGTH), default="")
    fields: Mapped[dict[str, Any]] = mapped_column(default=dict)
    notify_supervisors: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]
    # Its members' language and time zone, unless a member has their own.
    language: Mapped[str | None] = mapped_column(String(LANGUAGE_LENGTH))
    timezone: Mapped[str | None] = mapped_column(String(ZONE_LENGTH))


class UsergroupMember(Base):
    __tablename__ = "usergroup_members"
    __table_args__ = (UniqueConstraint("usergroup_id", "customer_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    usergroup_id: Mapped[int] = mapped_column(ForeignKey("usergroups.id"), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    supervisor: Mapped[bool] = mapped_column(Boolean, default=False)
    # The usergroup a member's new tickets get when they belong to several.
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]
