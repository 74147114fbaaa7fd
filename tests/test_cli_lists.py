"""Lists at any size: every list command shows a page (50 rows unless --limit says) and the
cursor of the next one, pages follow each other without a gap or a repeat however many rows
share a timestamp, and no ticket is loaded as an ORM object to be listed. And who did it:
what a command does is recorded as the administrator at the command line, or as the agent
named with --as."""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import event, insert, select

from mailflow.cli import cli
from mailflow.config import load_config
from mailflow.db.models import Customer, History, Ticket
from mailflow.db.session import Database

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
CURSOR = re.compile(r"--after (\S+)")


@pytest.fixture
def config(tmp_path: Path, database_url: str) -> Path:
    path = tmp_path / "mailflow.toml"
    path.write_text(f'[database]\nurl = "{database_url}"\n[outbox]\nmaildir = "sent"\n')
    return path


def mailflow(config: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    result = CliRunner(env=env).invoke(cli, ["--config", str(config), *args])
    assert result.exit_code == 0, result.output + result.stderr
    return result


def _fill(config: Path, count: int) -> None:
    """`count` tickets, as mail would have left them, three to a timestamp: paging must tell
    rows with the same updated_at apart by number."""

    async def fill() -> None:
        db = Database.from_config(load_config(config))
        async with db.transaction() as session:
            customer = (
                await session.execute(
                    insert(Customer)
                    .values(email="sam@example.org", created_at=NOW)
                    .returning(Customer.id)
                )
            ).scalar_one()
            rows = [
                {
                    "type": "ticket",
                    "status": "open",
                    "subject": f"Question {n}",
                    "customer_id": customer,
                    "fields": {},
                    "created_at": NOW,
                    "updated_at": NOW - timedelta(minutes=n // 3),
                    "status_since": NOW,
                }
                for n in range(count)
            ]
            await session.execute(insert(Ticket), rows)
        await db.dispose()

    asyncio.run(fill())


def _page(config: Path, *args: str) -> tuple[list[dict[str, Any]], str | None]:
    result = mailflow(config, *args, "--format", "json")
    cursor = CURSOR.search(result.stderr)
    return json.loads(result.stdout), cursor.group(1) if cursor else None


def test_tickets_come_a_page_at_a_time_newest_first_without_gaps_or_repeats(
    config: Path,
) -> None:
    _fill(config, 120)
    shown: list[dict[str, Any]] = []
    page, cursor = _page(config, "tickets", "--view", "all")
    sizes = [len(page)]
    shown += page
    while cursor is not None:
        page, cursor = _page(config, "tickets", "--view", "all", "--after", cursor)
        sizes.append(len(page))
        shown += page
    assert sizes == [50, 50, 20]
    keys = [(row["updated"], row["number"]) for row in shown]
    assert keys == sorted(keys, reverse=True)
    assert sorted(row["number"] for row in shown) == list(range(1, 121))


def test_limit_zero_lists_every_ticket_and_no_cursor(config: Path) -> None:
    _fill(config, 120)
    page, cursor = _page(config, "tickets", "--view", "all", "--limit", "0")
    assert (len(page), cursor) == (120, None)
    table = mailflow(config, "tickets", "--view", "all", "--limit", "7")
    assert len(table.stdout.splitlines()) == 1 + 7
    assert "--after" in table.stderr


def test_a_cursor_that_was_not_given_is_a_usage_error(config: Path) -> None:
    result = CliRunner().invoke(
        cli, ["--config", str(config), "tickets", "--view", "all", "--after", "nonsense"]
    )
    assert result.exit_code == 2
    assert "--after" in result.output
    assert "is not a cursor this list gave" in result.output


@pytest.fixture
def ticket_loads() -> Iterator[list[int]]:
    loaded: list[int] = []

    def count(target: Ticket, context: Any) -> None:
        loaded.append(target.id)

    event.listen(Ticket, "load", count)
    yield loaded
    event.remove(Ticket, "load", count)


def test_listing_tickets_loads_no_ticket_object(config: Path, ticket_loads: list[int]) -> None:
    _fill(config, 60)
    for view in ("all", "open", "unassigned"):
        for fmt in ("table", "json", "csv"):
            mailflow(config, "tickets", "--view", view, "--format", fmt, "--limit", "0")
    assert ticket_loads == []


def test_other_lists_page_too(config: Path) -> None:
    for name in ("carol", "alice", "bob"):
        mailflow(config, "agent", "add", f"{name}@staff.test", "--name", name.title())
    page, cursor = _page(config, "agent", "list", "--limit", "2")
    assert [row["email"] for row in page] == ["alice@staff.test", "bob@staff.test"]
    assert cursor is not None
    page, cursor = _page(config, "agent", "list", "--limit", "2", "--after", cursor)
    assert ([row["email"] for row in page], cursor) == (["carol@staff.test"], None)
    csv_lines = mailflow(config, "team", "list", "--format", "csv").stdout.splitlines()
    assert csv_lines == ["name", "support"]


def test_a_list_does_not_wait_for_the_daemons_write_lock(tmp_path: Path) -> None:
    """SQLite: a list reads in a deferred transaction, so a long one does not hold the
    write lock the daemon needs, and is not held up by a write under way."""
    config = tmp_path / "mailflow.toml"
    config.write_text(
        '[database]\nurl = "sqlite+aiosqlite:///var/mailflow.db"\nbusy_timeout = "1s"\n'
    )
    mailflow(config, "db", "upgrade")
    _fill(config, 3)
    writer = sqlite3.connect(tmp_path / "var" / "mailflow.db", isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")  # the daemon, in the middle of a message
        page, _ = _page(config, "tickets", "--view", "all")
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert len(page) == 3


# ---------------------------------------------------------------------------- who did it


def _history(config: Path, number: int) -> list[tuple[str, str, str]]:
    async def read() -> list[tuple[str, str, str]]:
        db = Database.from_config(load_config(config))
        async with db.transaction() as session:
            found = await session.execute(
                select(History.actor_kind, History.actor, History.action)
                .where(History.ticket_id == number)
                .order_by(History.id)
            )
            rows = [(kind.value, actor, action) for kind, actor, action in found]
        await db.dispose()
        return rows

    return asyncio.run(read())


def test_cli_actions_name_the_administrator_or_the_agent_acting(config: Path) -> None:
    _fill(config, 1)
    for name in ("alice", "bob"):
        mailflow(config, "agent", "add", f"{name}@staff.test", "--name", name.title())
    alice_at_the_terminal = {"SUDO_USER": "alice"}
    mailflow(
        config,
        *("activity", "add", "1", "--title", "Call back", "--at", "2026-12-01 14:30"),
        *("--as", "bob@staff.test"),
    )
    mailflow(config, "activity", "owner", "1", "alice@staff.test", env=alice_at_the_terminal)
    mailflow(config, "activity", "done", "1", "--as", "alice@staff.test")
    mailflow(config, "time", "1", "30m", "--as", "bob@staff.test")
    assert _history(config, 1) == [
        ("agent", "bob@staff.test", "activity_added"),
        ("administrator", "alice (cli)", "activity_owner_changed"),
        ("agent", "alice@staff.test", "activity_done"),
        ("agent", "bob@staff.test", "time_spent"),
    ]
    shown = mailflow(config, "ticket", "show", "1").stdout
    assert re.search(r"administrator +alice \(cli\) +activity_owner_changed", shown)


def test_deleting_a_group_is_recorded_as_the_administrator_who_did_it(config: Path) -> None:
    _fill(config, 1)
    mailflow(config, "agent", "add", "alice@staff.test", "--name", "Alice")
    mailflow(config, "group", "create", "billing")

    async def assign() -> None:
        db = Database.from_config(load_config(config))
        async with db.transaction() as session:
            ticket = await session.get(Ticket, 1)
            assert ticket is not None
            ticket.group_id = 1
        await db.dispose()

    asyncio.run(assign())
    mailflow(config, "group", "delete", "billing", env={"SUDO_USER": "carol"})
    assert _history(config, 1) == [
        ("administrator", "carol (cli): group billing deleted", "group_assigned")
    ]
