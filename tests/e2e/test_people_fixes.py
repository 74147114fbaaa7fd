"""People and their notices, over SMTP and the command line: a rule's round robin tells the
chosen agent once, the new-ticket notice says who has the ticket, an agent who changes team
leaves the old team's groups, one administrator per team, a customer in two usergroups
without a default, and a deleted group's tickets."""

from __future__ import annotations

import json
from pathlib import Path

from mailflow.db.models import History, OutboxMessage
from tests.conftest import RelaySink, Running, StartDaemon
from tests.support import (
    add_agent,
    add_group,
    add_usergroup,
    all_rows,
    answer_notice,
    build_message,
    get_ticket,
    mailflow_cli,
    rules_dir,
    smtp_send,
)

ROUND_ROBIN = """rules:
  - name: second line, round robin
    trigger: ticket_created
    do:
      - assign_group: {group: second-line, strategy: round_robin}
"""


async def _round_robin(start_daemon: StartDaemon, relay_sink: RelaySink, tmp_path: Path) -> Running:
    """Alice; Carol and Dave in second-line, which a rule after the shipped ones gives every
    new ticket, round robin; ticket 1 opened, all its mail sent."""
    extra = rules_dir(tmp_path, {"round_robin.yaml": ROUND_ROBIN})["rules"]["dir"]
    running = await start_daemon({"rules": {"extra_dir": extra}})
    app = running.app
    await add_agent(app, "alice@staff.test", "Alice")
    await add_agent(app, "carol@staff.test", "Carol")
    await add_agent(app, "dave@staff.test", "Dave")
    await add_group(app, "second-line", "carol@staff.test", "dave@staff.test")
    await smtp_send(running.port, build_message())
    await relay_sink.wait_for(len(await all_rows(app, OutboxMessage)))
    return running


async def test_a_round_robin_rule_tells_the_chosen_agent_once(
    start_daemon: StartDaemon, relay_sink: RelaySink, tmp_path: Path
) -> None:
    await _round_robin(start_daemon, relay_sink, tmp_path)

    carol = [m.text for m in relay_sink.to("carol@staff.test")]
    assert sum("is now assigned to you" in text for text in carol) == 1, carol
    dave = [m.text for m in relay_sink.to("dave@staff.test")]
    assert sum("is now with your group second-line" in text for text in dave) == 1, dave
    assert not any("assigned to you" in text for text in dave)


async def test_the_new_ticket_notice_names_whom_a_rule_assigned(
    start_daemon: StartDaemon, relay_sink: RelaySink, tmp_path: Path
) -> None:
    await _round_robin(start_daemon, relay_sink, tmp_path)

    (notice,) = [m for m in relay_sink.to("alice@staff.test") if "New ticket" in m.text]
    assert "Assigned to Carol · Group second-line" in notice.text
    assert "Unassigned" not in notice.text
    assert notice.html is not None
    assert "Assigned to Carol · Group second-line" in notice.html


# ---------------------------------------------------------------------------- teams


def _cli_config(tmp_path: Path, database_url: str, extra: str = "") -> Path:
    config = tmp_path / "cli.toml"
    config.write_text(f'[database]\nurl = "{database_url}"\n{extra}')
    return config


async def _cli(config: Path, *args: str, code: int = 0) -> str:
    result = await mailflow_cli(config, *args)
    assert result.exit_code == code, result.output
    return result.output


async def _agents(config: Path) -> dict[str, dict[str, object]]:
    listed = json.loads(await _cli(config, "agent", "list", "--format", "json"))
    return {agent["email"]: agent for agent in listed}


async def test_an_agent_moved_to_another_team_leaves_the_old_teams_groups(
    start_daemon: StartDaemon, relay_sink: RelaySink, tmp_path: Path, database_url: str
) -> None:
    running = await start_daemon()
    config = _cli_config(tmp_path, database_url)
    await _cli(config, "agent", "add", "alice@staff.test", "--name", "Alice", "--role", "admin")
    await _cli(config, "agent", "add", "bob@staff.test", "--name", "Bob")
    await _cli(config, "group", "create", "billing")
    await _cli(config, "group", "add-member", "billing", "bob@staff.test")
    await _cli(config, "team", "create", "sales")
    await smtp_send(running.port, build_message())
    await relay_sink.wait_for(3)
    (notice,) = relay_sink.to("alice@staff.test")
    await answer_notice(running, notice, "alice@staff.test", "#group billing\n#assign bob")

    moved = await _cli(config, "agent", "add", "bob@staff.test", "--name", "Bob", "--team", "sales")

    assert "left the groups of team support: billing" in moved
    assert "still assigned to ticket 1" in moved
    bob = (await _agents(config))["bob@staff.test"]
    assert (bob["team"], bob["groups"]) == ("sales", "")
    groups = json.loads(await _cli(config, "group", "list", "--format", "json"))
    assert groups == [{"team": "support", "group": "billing", "members": ""}]
    (left,) = [h for h in await all_rows(running.app, History) if h.action == "agent_left_group"]
    assert (left.ticket_id, left.details) == (
        1,
        {"agent": "bob@staff.test", "group": "billing", "team": "sales"},
    )
    assert (await get_ticket(running.app, 1)).assignee_id is not None, "still his to finish"


async def test_a_team_has_one_administrator_unless_configured(
    tmp_path: Path, database_url: str
) -> None:
    config = _cli_config(tmp_path, database_url)
    await _cli(config, "agent", "add", "alice@staff.test", "--name", "Alice", "--role", "admin")

    refused = await _cli(
        config, "agent", "add", "bob@staff.test", "--name", "Bob", "--role", "admin", code=1
    )

    assert "team support has its administrator already: alice@staff.test" in refused
    assert "--role operator" in refused
    assert "admins_per_team" in refused
    assert "bob@staff.test" not in await _agents(config)
    await _cli(config, "agent", "add", "bob@staff.test", "--name", "Bob")
    await _cli(config, "team", "create", "sales")
    await _cli(
        config,
        "agent",
        "add",
        "carol@staff.test",
        "--name",
        "Carol",
        "--team",
        "sales",
        "--role",
        "admin",
    )
    moving = await _cli(
        config,
        "agent",
        "add",
        "carol@staff.test",
        "--name",
        "Carol",
        "--role",
        "admin",
        "--team",
        "support",
        code=1,
    )
    assert "team support has its administrator already" in moving
    # Handing the role on: Alice steps down, Bob steps up.
    await _cli(config, "agent", "add", "alice@staff.test", "--name", "Alice")
    await _cli(config, "agent", "add", "bob@staff.test", "--name", "Bob", "--role", "admin")
    roles = {email: a["role"] for email, a in (await _agents(config)).items()}
    assert roles == {
        "alice@staff.test": "operator",
        "bob@staff.test": "admin",
        "carol@staff.test": "admin",
    }

    two = _cli_config(tmp_path, database_url, "[people]\nadmins_per_team = 2\n")
    await _cli(two, "agent", "add", "alice@staff.test", "--name", "Alice", "--role", "admin")
    assert (await _agents(two))["alice@staff.test"]["role"] == "admin"


# ---------------------------------------------------------------------------- usergroups


async def test_a_customer_in_two_usergroups_without_a_default_gets_none_and_agents_hear_why(
    start_daemon: StartDaemon, relay_sink: RelaySink
) -> None:
    running = await start_daemon()
    await add_agent(running.app, "alice@staff.test", "Alice")
    await add_usergroup(running.app, "acme", {"bob@customer.test": False})
    await add_usergroup(running.app, "globex", {"bob@customer.test": False})

    await smtp_send(running.port, build_message())
    await relay_sink.wait_for(2)

    assert (await get_ticket(running.app, 1)).usergroup_id is None
    (undecided,) = [
        h for h in await all_rows(running.app, History) if h.action == "usergroup_undecided"
    ]
    assert undecided.details["usergroups"] == ["acme", "globex"]
    assert "#usergroup NAME" in undecided.details["how"]
    (notice,) = relay_sink.to("alice@staff.test")
    text = " ".join(notice.text.split())
    assert "Usergroup: none, because bob@customer.test is in acme and globex" in text
    assert "#usergroup NAME" in text
    assert "mailflow usergroup add-member NAME bob@customer.test --default" in text
    assert notice.html is not None
    assert "acme and globex" in notice.html

    # The usergroup's address chooses.
    await smtp_send(
        running.port,
        build_message(to="support+globex@example.com", subject="Another", message_id="<2@c.t>"),
    )
    second = await get_ticket(running.app, 2)
    assert second.usergroup is not None
    assert second.usergroup.name == "globex"


# ---------------------------------------------------------------------------- groups


async def test_deleting_a_group_writes_history_on_every_ticket_it_detaches(
    start_daemon: StartDaemon, relay_sink: RelaySink, tmp_path: Path, database_url: str
) -> None:
    running = await start_daemon()
    config = _cli_config(tmp_path, database_url)
    await add_agent(running.app, "alice@staff.test", "Alice")
    await add_group(running.app, "billing", "alice@staff.test")
    for number in (1, 2):
        await smtp_send(running.port, build_message(message_id=f"<{number}@customer.test>"))
    await relay_sink.wait_for(4)
    first, second = (
        next(m for m in relay_sink.to("alice@staff.test") if f"[#{n}]" in m.text) for n in (1, 2)
    )
    await answer_notice(running, first, "alice@staff.test", "#group billing")
    await answer_notice(running, second, "alice@staff.test", "#group billing\n#status closed")

    said = await _cli(config, "group", "delete", "billing")

    assert "1 open tickets back to unassigned, 1 closed tickets kept" in said
    for number in (1, 2):
        ticket = await get_ticket(running.app, number)
        assert ticket.group_id is None
        detached = [
            (h.action, h.details)
            for h in await all_rows(running.app, History)
            if h.ticket_id == number and h.actor.endswith(": group billing deleted")
        ]
        assert detached == [("group_assigned", {"old": "billing", "new": None})], number
