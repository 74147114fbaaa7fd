"""`mailflow team|group|agent|usergroup`: the structures, administered from the shell."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import update

from mailflow.cli import cli
from mailflow.config import load_config
from mailflow.db.models import Ticket
from mailflow.db.people import Group
from mailflow.db.session import Database
from tests.support import build_message


@pytest.fixture
def config(tmp_path: Path, database_url: str) -> Path:
    path = tmp_path / "mailflow.toml"
    path.write_text(
        f'[database]\nurl = "{database_url}"\n[outbox]\nmaildir = "sent"\n'
        '[[people.usergroup_fields]]\nname = "phone"\ntype = "phone"\n'
        '[[people.usergroup_fields]]\nname = "tier"\ntype = "choice"\n'
        'choices = ["gold", "silver"]\n'
    )
    return path


def run(config: Path, *args: str, code: int = 0) -> str:
    result: Result = CliRunner().invoke(cli, ["--config", str(config), *args])
    assert result.exit_code == code, result.output
    return result.output


def test_teams_groups_and_agents(config: Path) -> None:
    run(config, "agent", "add", "alice@staff.test", "--name", "Alice", "--role", "admin")
    run(config, "agent", "add", "bob@staff.test", "--name", "Bob")
    assert run(config, "team", "list").split() == ["NAME", "support"]
    run(config, "group", "create", "billing")
    run(config, "group", "add-member", "billing", "bob@staff.test", "alice@staff.test")
    run(config, "group", "rename", "billing", "accounts")
    groups = json.loads(run(config, "group", "list", "--format", "json"))
    assert groups == [
        {"team": "support", "group": "accounts", "members": "alice@staff.test, bob@staff.test"}
    ]
    agents = {a["email"]: a for a in json.loads(run(config, "agent", "list", "--format", "json"))}
    assert agents["alice@staff.test"]["role"] == "admin"
    assert agents["bob@staff.test"]["groups"] == "accounts"
    run(config, "group", "remove-member", "accounts", "alice@staff.test")
    assert "no group 'nope'" in run(config, "group", "rename", "nope", "x", code=1)
    run(config, "agent", "deactivate", "bob@staff.test")
    agents = {a["email"]: a for a in json.loads(run(config, "agent", "list", "--format", "json"))}
    assert agents["bob@staff.test"]["active"] is False


def _inject(config: Path, tmp_path: Path, subject: str) -> None:
    eml = tmp_path / f"{subject}.eml"
    eml.write_bytes(build_message(subject=subject, message_id=f"<{subject}@c.test>").as_bytes())
    run(config, "inject", str(eml))


@pytest.mark.parametrize("purge", [False, True])
def test_deleting_a_group_unassigns_its_open_tickets(
    config: Path, tmp_path: Path, purge: bool
) -> None:
    run(config, "agent", "add", "bob@staff.test", "--name", "Bob")
    run(config, "group", "create", "billing")
    for subject in ("open-one", "closed-one"):
        _inject(config, tmp_path, subject)

    async def place() -> None:
        """Both tickets in billing; one of them closed."""
        db = Database.from_config(load_config(config))
        async with db.transaction() as session:
            group_id = (
                await session.scalars(update(Group).values(name="billing").returning(Group.id))
            ).one()
            await session.execute(update(Ticket).values(group_id=group_id))
            await session.execute(
                update(Ticket).where(Ticket.subject == "closed-one").values(status="closed")
            )
        await db.dispose()

    asyncio.run(place())
    args = ["group", "delete", "billing"] + (["--purge-closed"] if purge else [])
    output = run(config, *args)
    assert "1 open tickets back to unassigned" in output
    rows = json.loads(run(config, "tickets", "--view", "all", "--format", "json"))
    assert [(r["subject"], r["group"]) for r in rows if r["subject"] == "open-one"] == [
        ("open-one", "")
    ]
    closed = [r for r in rows if r["subject"] == "closed-one"]
    assert closed == [] if purge else [dict(closed[0], group="")]
    number = next(r["number"] for r in rows if r["subject"] == "open-one")
    assert "group billing deleted" in run(config, "ticket", "show", str(number))
    assert run(config, "group", "list").strip().splitlines()[1:] == []


def test_usergroups_members_supervisors_and_fields(config: Path, tmp_path: Path) -> None:
    run(config, "usergroup", "create", "acme", "--title", "ACME Ltd", "--set", "tier=gold")
    run(config, "usergroup", "add-member", "acme", "mia@acme.test", "--person", "Mia")
    run(config, "usergroup", "add-member", "acme", "sam@acme.test", "--supervisor")
    run(config, "usergroup", "set", "acme", "phone=+44 20 7946 0000")
    bad = run(config, "usergroup", "set", "acme", "phone=call me", code=2)
    assert "'call me' is not a phone number" in bad
    assert "'bronze' is not one of gold, silver" in run(
        config, "usergroup", "set", "acme", "tier=bronze", code=2
    )
    assert "no usergroup field 'fax'" in run(config, "usergroup", "set", "acme", "fax=1", code=2)
    (row,) = json.loads(run(config, "usergroup", "list", "--format", "json"))
    assert row == {
        "name": "acme",
        "title": "ACME Ltd",
        "members": 2,
        "supervisors": "sam@acme.test",
        "fields": "phone=+44 20 7946 0000; tier=gold",
    }
    eml = tmp_path / "m.eml"
    eml.write_bytes(build_message(sender="Mia <mia@acme.test>").as_bytes())
    run(config, "inject", str(eml))
    assert [
        r["usergroup"]
        for r in json.loads(run(config, "tickets", "--usergroup", "acme", "--format", "json"))
    ] == ["acme"]
    shown = run(config, "ticket", "show", "1")
    assert "usergroup acme (ACME Ltd)" in shown
    assert "phone: +44 20 7946 0000" in shown
