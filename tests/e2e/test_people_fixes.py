"""People and their notices, over SMTP and the command line: a rule's round robin tells the
chosen agent once, the new-ticket notice says who has the ticket, an agent who changes team
leaves the old team's groups, one administrator per team, a customer in two usergroups
without a default, and a deleted group's tickets."""

from __future__ import annotations

from pathlib import Path

from mailflow.db.models import OutboxMessage
from tests.conftest import RelaySink, Running, StartDaemon
from tests.support import add_agent, add_group, all_rows, build_message, rules_dir, smtp_send

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
