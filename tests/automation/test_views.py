"""Views: the built-in ticket lists and their filters through `mailflow tickets`, and views of
one's own ([[views]]), whose SQL must list exactly the tickets for which the same condition
holds in Python, also with missing values and text in another case."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from mailflow.app import App
from mailflow.automation.conditions import Facts, parse_condition
from mailflow.cli import cli
from mailflow.config import Config, ConfigError, from_mapping, load_config
from mailflow.db.models import Agent, Ticket
from mailflow.db.people import Group, Usergroup
from mailflow.db.session import Database
from mailflow.mail.addresses import Mailbox
from mailflow.people.directory import team_named
from mailflow.tickets import ops, views
from mailflow.tickets.events import TicketCreated


@dataclass(frozen=True)
class Spec:
    type: str
    status: str
    priority: str
    customer: str
    subject: str
    age: timedelta
    assignee: str | None = None
    group: str | None = None
    usergroup: str | None = None
    project: str | None = None
    due: timedelta | None = None  # from now; negative: past
    private: bool = False


H, D = timedelta(hours=1), timedelta(days=1)
TICKETS = {  # number → what it is
    1: Spec(
        "ticket", "open", "high", "zoe@vip.test", "Invoice missing", 3 * D,
        assignee="alice", group="Billing", usergroup="acme", project="Apollo", due=-2 * D,
    ),
    2: Spec("ticket", "agent waiting", "urgent", "kim@sub.vip.test", "Login fails", 2 * H),
    3: Spec(
        "ticket", "customer waiting", "normal", "zoe@vip.test", "Printer jam", 5 * D,
        assignee="bob", project="apollo",
    ),
    4: Spec("ticket", "closed", "urgent", "ann@vip.test", "Refund", 10 * D, group="Billing"),
    5: Spec(
        "suggestion", "new", "low", "ned@other.test", "Dark mode", H,
        usergroup="acme", project="Zeus", private=True,
    ),
    6: Spec(
        "suggestion", "under review", "high", "ned@other.test", "Export to CSV", 2 * D,
        assignee="alice", due=2 * D,
    ),
    7: Spec(
        "ticket", "resolved", "high", "mia@acme.test", "Printer toner", 4 * D,
        assignee="bob", usergroup="acme", due=-3 * D,
    ),
    8: Spec(
        "ticket", "open", "normal", "mia@acme.test", "PRINTER down", H / 2,
        usergroup="acme", due=-D,
    ),
}  # fmt: skip


async def _populate(config: Config) -> None:
    """The tickets above, made the way mailflow makes them, at moments relative to now."""
    db = Database.from_config(config)
    now = datetime.now(UTC)
    async with db.transaction() as session:
        team = await team_named(session, None, now)
        agents = {
            name: Agent(
                email=f"{name}@staff.test",
                name=name.title(),
                types=[],
                created_at=now,
                team_id=team.id,
            )
            for name in ("alice", "bob")
        }
        billing = Group(team_id=team.id, name="Billing", created_at=now)
        acme = Usergroup(name="acme", title="Acme", fields={}, created_at=now)
        session.add_all([*agents.values(), billing, acme])
        await session.flush()
        for number, spec in TICKETS.items():
            at = now - spec.age
            actor = ops.Actor.system("test")
            ticket_type = config.ticket_type(spec.type)
            customer = await ops.customer_for(session, Mailbox("", spec.customer), at)
            ticket = await ops.open_ticket(
                session,
                ticket_type=ticket_type,
                customer=customer,
                subject=spec.subject,
                actor=actor,
                now=at,
            )
            assert ticket.id == number
            change: dict[str, Any] = {"actor": actor, "now": at, "session": session}
            ops.set_status(ticket, spec.status, ticket_type=ticket_type, **change)
            ops.set_priority(ticket, spec.priority, **change)
            ops.assign(ticket, agents[spec.assignee] if spec.assignee else None, **change)
            ops.assign_group(ticket, billing if spec.group else None, **change)
            ops.set_usergroup(ticket, acme if spec.usergroup else None, **change)
            ticket.project, ticket.private = spec.project, spec.private
            ticket.due_at = now + spec.due if spec.due is not None else None
    await db.dispose()


# ---------------------------------------------------------------------------- the CLI

URGENT_VIP = (
    '[[views]]\nname = "urgent-vip"\ndescription = "VIPs waiting on something important"\n'
    'if = { all = [ { "ticket.priority" = { in = ["high", "urgent"] } },'
    ' { "customer.domain" = "vip.test" } ] }\n'
)


@pytest.fixture
def config_file(tmp_path: Path, database_url: str) -> Path:
    path = tmp_path / "mailflow.toml"
    path.write_text(
        f'[database]\nurl = "{database_url}"\n[outbox]\nmaildir = "sent"\n' + URGENT_VIP
    )
    asyncio.run(_populate(load_config(path)))
    return path


def mailflow(config: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config", str(config), *args], catch_exceptions=False)


def listed(config: Path, *args: str) -> set[int]:
    result = mailflow(config, "tickets", "--format", "json", *args)
    assert result.exit_code == 0, result.output
    return {row["number"] for row in json.loads(result.output)}


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--view", "unassigned"], {2, 5, 8}),
        (["--view", "customer-waiting"], {3}),
        (["--view", "agent-waiting"], {2}),
        (["--view", "overdue"], {1, 8}),
        (["--view", "mine", "--agent", "alice@staff.test"], {1, 6}),
        (["--view", "mine", "--agent", "Bob@Staff.TEST"], {3}),
        (["--view", "open"], {1, 2, 3, 5, 6, 8}),
        ([], {1, 2, 3, 5, 6, 8}),
        (["--view", "all"], set(TICKETS)),
        (["--view", "all", "--type", "suggestion"], {5, 6}),
        (["--view", "all", "--status", "agent waiting"], {2}),
        (["--view", "all", "--group", "billing"], {1, 4}),
        (["--view", "all", "--usergroup", "ACME"], {1, 5, 7, 8}),
        (["--view", "all", "--project", "Zeus"], {5}),
        (["--view", "all", "--project", "zEUS"], {5}),
        (["--view", "open", "--type", "ticket", "--usergroup", "acme"], {1, 8}),
        (["--view", "customer-waiting", "--group", "billing"], set()),
        (["--view", "urgent-vip"], {1, 4}),
        (["--view", "urgent-vip", "--status", "open"], {1}),
    ],
)
def test_tickets_lists_a_view_narrowed_by_filters(
    config_file: Path, args: list[str], expected: set[int]
) -> None:
    assert listed(config_file, *args) == expected


def test_a_view_lists_the_latest_change_first(config_file: Path) -> None:
    result = mailflow(config_file, "tickets", "--view", "all", "--format", "json")
    numbers = [row["number"] for row in json.loads(result.output)]
    assert numbers == sorted(TICKETS, key=lambda n: TICKETS[n].age)


def test_the_table_shows_the_ticket_as_it_is(config_file: Path) -> None:
    lines = mailflow(config_file, "tickets", "--view", "overdue").output.splitlines()
    assert lines[0].split()[:4] == ["NUMBER", "TYPE", "STATUS", "PRIORITY"]
    (first,) = [line for line in lines if line.startswith("1 ")]
    for shown in ("open", "high", "Invoice missing", "zoe@vip.test", "acme", "Billing", "Apollo"):
        assert shown in first
    assert "alice@staff.test" in first


def test_mine_needs_an_agent_and_an_unknown_view_is_named(config_file: Path) -> None:
    mine = CliRunner().invoke(cli, ["--config", str(config_file), "tickets", "--view", "mine"])
    assert mine.exit_code == 2
    assert "the view mine needs --agent ADDRESS" in mine.output
    unknown = CliRunner().invoke(cli, ["--config", str(config_file), "tickets", "--view", "vip"])
    assert unknown.exit_code == 2
    assert "no view 'vip'; views: unassigned, customer-waiting" in unknown.output
    assert "urgent-vip" in unknown.output


# ---------------------------------------------------------------------------- SQL == Python


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        (
            {
                "all": [
                    {"ticket.priority": {"in": ["high", "urgent"]}},
                    {"customer.domain": "vip.test"},
                ]
            },
            {1, 4},
        ),
        ({"ticket.priority": {"in": ["HIGH", "Urgent"]}}, {1, 2, 4, 6, 7}),
        ({"customer.domain": "VIP.Test"}, {1, 3, 4}),
        ({"customer.domain": {"not_in": ["vip.test", "acme.test"]}}, {2, 5, 6}),
        ({"customer.email": "ZOE@vip.test"}, {1, 3}),
        ({"ticket.project": "APOLLO"}, {1, 3}),
        ({"ticket.project": None}, {2, 4, 6, 7, 8}),
        ({"ticket.project": {"not_equals": "apollo"}}, {2, 4, 5, 6, 7, 8}),
        ({"ticket.project": {"not_in": ["apollo", "zeus"]}}, {2, 4, 6, 7, 8}),
        ({"ticket.assignee": None}, {2, 4, 5, 8}),
        ({"ticket.assignee": {"not_equals": None}}, {1, 3, 6, 7}),
        ({"ticket.assignee": "ALICE@staff.test"}, {1, 6}),
        ({"ticket.assignee": {"not_equals": "alice@staff.test"}}, {2, 3, 4, 5, 7, 8}),
        ({"ticket.group": {"not_in": ["billing"]}}, {2, 3, 5, 6, 7, 8}),
        ({"ticket.usergroup": "ACME"}, {1, 5, 7, 8}),
        ({"customer.usergroup": "acme"}, {1, 5, 7, 8}),
        ({"not": {"ticket.closed": True}}, {1, 2, 3, 5, 6, 8}),
        ({"not": {"ticket.priority": "high"}}, {2, 3, 4, 5, 8}),
        ({"not": {"ticket.project": "apollo"}}, {2, 4, 5, 6, 7, 8}),
        ({"not": {"ticket.overdue_by": {"older_than": "1h"}}}, {2, 3, 4, 5, 6}),
        (
            {"any": [{"ticket.closed": True}, {"ticket.overdue_by": {"older_than": "1h"}}]},
            {1, 4, 7, 8},
        ),
        ({"ticket.age": {"newer_than": "1d"}}, {2, 5, 8}),
        ({"ticket.age": {"older_than": "84h"}}, {3, 4, 7}),
        ({"ticket.subject": {"contains": "printer"}}, {3, 7, 8}),
        ({"ticket.subject": {"matches": "^printer"}}, {3, 7, 8}),
        ({"ticket.subject": {"matches": r"^\S+ down$"}}, {8}),
        ({"ticket.number": {"greater_than": 5}}, {6, 7, 8}),
        ({"ticket.private": True}, {5}),
        ({"ticket.type": "suggestion", "ticket.status": {"in": ["New", "under review"]}}, {5, 6}),
    ],
)
def test_a_configured_view_lists_exactly_where_the_condition_holds(
    tmp_path: Path, database_url: str, condition: dict[str, Any], expected: set[int]
) -> None:
    config = from_mapping(
        {"database": {"url": database_url}, "views": [{"name": "mine-too", "if": condition}]},
        "test.toml",
        tmp_path,
    )
    views.check_views(config)
    asyncio.run(_populate(config))

    in_sql, in_python = asyncio.run(_both(config))

    assert in_python == expected, "the condition, evaluated the way the rules do"
    assert in_sql == in_python


async def _both(config: Config) -> tuple[set[int], set[int]]:
    db = Database.from_config(config)
    now = datetime.now(UTC)
    condition = parse_condition(config.views[0].where)
    try:
        async with db.transaction() as session:
            rows = await views.rows(session, config, "mine-too", now)
            tickets = (await session.scalars(select(Ticket))).unique().all()
            in_python = {
                t.id
                for t in tickets
                if condition.holds(
                    Facts(ticket=t, event=TicketCreated(ticket_id=t.id, message_id=0), now=now)
                )
            }
    finally:
        await db.dispose()
    return {row.number for row in rows}, in_python


# ---------------------------------------------------------------------------- refused views

MESSAGE_VIEW = '[[views]]\nname = "angry"\nif = { "message.text" = { contains = "angry" } }\n'


def test_a_view_on_the_message_stops_start_up_naming_file_and_key(
    tmp_path: Path, database_url: str
) -> None:
    path = tmp_path / "mailflow.toml"
    path.write_text(f'[database]\nurl = "{database_url}"\n' + URGENT_VIP + MESSAGE_VIEW)

    with pytest.raises(ConfigError) as caught:
        App(load_config(path))

    assert (caught.value.file, caught.value.key) == (str(path), "views[1].if")
    assert "message.text cannot be used in a view" in caught.value.problem

    checked = CliRunner().invoke(cli, ["--config", str(path), "check"])
    assert checked.exit_code == 78
    assert f"mailflow: {path}: views[1].if: message.text cannot be used in a view" in (
        checked.output
    )


@pytest.mark.parametrize(
    ("view", "key", "problem"),
    [
        ('name = "open"\nif = { "ticket.status" = "open" }', "views[0].name", "a built-in view"),
        ('name = "x"\nif = { "ticket.colour" = "red" }', "views[0].if", "unknown field"),
        ('name = "x"\nif = { "ticket.age" = "2d" }', "views[0].if", "is an age"),
        ('name = "x"\nif = { "agent.email" = "a@b.test" }', "views[0].if", "agent.email"),
    ],
)
def test_a_view_that_cannot_be_a_query_is_refused_by_check(
    tmp_path: Path, database_url: str, view: str, key: str, problem: str
) -> None:
    path = tmp_path / "mailflow.toml"
    path.write_text(f'[database]\nurl = "{database_url}"\n[[views]]\n{view}\n')

    checked = CliRunner().invoke(cli, ["--config", str(path), "check"])

    assert checked.exit_code == 78
    assert f"mailflow: {path}: {key}: " in checked.output
    assert problem in checked.output


def test_tickets_with_a_view_on_the_message_says_what_is_wrong(
    tmp_path: Path, database_url: str
) -> None:
    path = tmp_path / "mailflow.toml"
    path.write_text(f'[database]\nurl = "{database_url}"\n' + MESSAGE_VIEW)

    result = CliRunner().invoke(cli, ["--config", str(path), "tickets", "--view", "angry"])

    assert result.exit_code == 78
    assert f"mailflow: {path}: views[0].if: message.text cannot be used" in result.output
