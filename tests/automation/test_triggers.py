"""Each trigger over real SMTP: a tiny rule per trigger leaves a visible mark when it fires,
and no other trigger's rule fires with it; plus the depth limit, stop, enabled and order."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select

from mailflow.app import App
from mailflow.db.models import Agent, History, OutboxMessage, OutboxState
from mailflow.db.people import AgentRole, Group, GroupMember, Usergroup
from tests.conftest import Received, RelaySink, Running, StartDaemon
from tests.support import (
    add_agent,
    all_rows,
    answer_notice,
    build_message,
    get_ticket,
    history_actions,
    rules_dir,
    smtp_send,
    wait_until,
)

WATCHED = (
    "ticket_created",
    "customer_replied",
    "agent_replied",
    "note_added",
    "status_changed",
    "assigned",
    "type_changed",
    "usergroup_changed",
    "delivery_failed",
    "unverified_message",
)

# The customer gets an auto-reply and the agents a notice (whose signed Reply-To is how an
# agent acts); then one rule per trigger sets the ticket's project to the trigger's name.
NOTIFY = """rules:
  - name: notify
    trigger: ticket_created
    do:
      - send: {template: customer/auto_reply, to: customer}
      - send: {template: agent/new_ticket, to: type_agents}
"""
WATCHING = NOTIFY + "".join(
    f"  - {{name: on {t}, trigger: {t}, do: [{{set_project: {t}}}]}}\n" for t in WATCHED
)

SUGGESTION = {
    "name": "suggestion",
    "addresses": ["suggestion@example.com"],
    "statuses": ["new", "under review", "accepted", "rejected", "done"],
    "closed": ["rejected", "done"],
    "default_status": "new",
}
TICKET = {
    "name": "ticket",
    "addresses": ["support@example.com"],
    "statuses": ["open", "agent waiting", "customer waiting", "resolved", "closed"],
    "closed": ["resolved", "closed"],
    "default_status": "open",
}


async def _fired(app: App, ticket_id: int, prefix: str = "on ") -> list[str]:
    """Names of the rules that fired on the ticket, in order, without the prefix."""
    return [
        h.actor.removeprefix("rule: " + prefix)
        for h in await all_rows(app, History)
        if h.ticket_id == ticket_id
        and h.action == "rule_fired"
        and h.actor.startswith("rule: " + prefix)
    ]


async def _customer_writes(running: Running, body: str = "Help!", **fields: Any) -> None:
    message = build_message(message_id="<t1@customer.test>", body=body, **fields)
    assert (await smtp_send(running.port, message))[0] == 250


async def _watching(
    start_daemon: StartDaemon,
    relay_sink: RelaySink,
    tmp_path: Path,
    extra: dict[str, str] | None = None,
    settings: dict[str, Any] | None = None,
) -> tuple[Running, Received]:
    """Alice (an admin) and Bob (an operator); ticket 1 from Bob Customer; Alice's notice."""
    files = {"10-watch.yaml": WATCHING, **(extra or {})}
    running = await start_daemon({**rules_dir(tmp_path, files), **(settings or {})})
    await add_agent(running.app, "alice@staff.test", "Alice", role=AgentRole.ADMIN)
    await add_agent(running.app, "bob@staff.test", "Bob")
    await _customer_writes(running)
    await relay_sink.wait_for(3)
    (notice,) = relay_sink.to("alice@staff.test")
    return running, notice


# ---------------------------------------------------------------------------- triggers


async def test_ticket_created_fires_only_the_ticket_created_rule(
    start_daemon: StartDaemon, relay_sink: RelaySink, tmp_path: Path
) -> None:
    running, _ = await _watching(start_daemon, relay_sink, tmp_path)

    assert await _fired(running.app, 1) == ["ticket_created"]
    assert (await get_ticket(running.app, 1)).project == "ticket_created"
    (auto_reply,) = relay_sink.to("bob@customer.test")
    assert "[#1]" in auto_reply.text


async def test_a_customer_reply_fires_customer_replied(
    start_daemon: StartDaemon, relay_sink: RelaySink, tmp_path: Path
) -> None:
    running, _ = await _watching(start_daemon, relay_sink, tmp_path)

    reply = build_message(
        subject="Re: [#1] Printer is on fire",
        body="It still burns.",
        in_reply_to="<t1@customer.test>",
    )
    assert (await smtp_send(running.port, reply))[0] == 250

    assert await _fired(running.app, 1) == ["ticket_created", "customer_replied"]
    assert (await get_ticket(running.app, 1)).project == "customer_replied"


async def test_an_agents_answer_fires_agent_replied(
    start_daemon: StartDaemon, relay_sink: RelaySink, tmp_path: Path
) -> None:
    running, notice = await _watching(start_daemon, relay_sink, tmp_path)

    await answer_notice(running, notice, "alice@staff.test", "We are on it.")

    assert await _fired(running.app, 1) == ["ticket_created", "agent_replied"]
    assert (await get_ticket(running.app, 1)).project == "agent_replied"
    await relay_sink.wait_for(4)
    assert relay_sink.to("bob@customer.test")[-1].text.startswith("We are on it.")


async def test_an_agents_signed_address_used_from_elsewhere_fires_only_unverified_message(
    start_daemon: StartDaemon, relay_sink: RelaySink, tmp_path: Path
) -> None:
    """The signed address alone does not make an agent, nor a customer: the From must be
    the one it was given to."""
    running, notice = await _watching(start_daemon, relay_sink, tmp_path)

    await answer_notice(running, notice, "mallory@elsewhere.test", "I am Alice, honestly.")

    assert await _fired(running.app, 1) == ["ticket_created", "unverified_message"]
    assert (await get_ticket(running.app, 1)).project == "unverified_message"


async def test_a_note_fires_note_added_and_not_agent_replied(
    start_daemon: StartDaemon, relay_sink: RelaySink, tmp_path: Path
) -> None:
    running, notice = await _watching(start_daemon, relay_sink, tmp_path)

    await answer_notice(running, notice, "alice@staff.test", "#note\nHe called twice already.")

    assert await _fired(running.app, 1) == ["ticket_created", "note_added"]
    assert (await get_ticket(running.app, 1)).project == "note_added"
    assert len(await all_rows(running.app, OutboxMessage)) == 3, "the note is mailed to nobody"


async def test_a_status_command_fires_status_changed(
    start_daemon: StartDaemon, relay_sink: RelaySink, tmp_path: Path
) -> None:
    running, notice = await _watching(start_daemon, relay_sink, tmp_path)

    await answer_notice(running, notice, "alice@staff.test", "#status resolved")

    ticket = await get_ticket(running.app, 1)
    assert ticket.status == "resolved"
    assert ticket.project == "status_changed"
    assert await _fired(running.app, 1) == ["ticket_created", "status_changed"], (
        "commands alone are no answer: agent_replied does not fire"
    )


async def test_a_status_command_with_an_answer_fires_both_answer_first(
    start_daemon: StartDaemon, relay_sink: RelaySink, tmp_path: Path
) -> None:
    running, notice = await _watching(start_daemon, relay_sink, tmp_path)

    await answer_notice(running, notice, "alice@staff.test", "#status resolved\n\nFixed it.")

    assert await _fired(running.app, 1) == ["ticket_created", "agent_replied", "status_changed"]


ASSIGNED = """rules:
  - name: assignee changed
    trigger: assigned
    if: {assigned.agent_changed: true}
    do: [set_priority: high]
  - name: group changed
    trigger: assigned
    if: {assigned.group_changed: true}
    do: [set_priority: urgent]
"""


async def test_assigning_an_agent_then_a_group_fires_assigned_each_time(
    start_daemon: StartDaemon, relay_sink: RelaySink, tmp_path: Path
) -> None:
    running, notice = await _watching(
        start_daemon, relay_sink, tmp_path, extra={"20-assigned.yaml": ASSIGNED}
    )
    async with running.app.db.transaction() as session:
        bob = await session.scalar(select(Agent).where(Agent.email == "bob@staff.test"))
        assert bob is not None
        group = Group(team_id=bob.team_id, name="billing", created_at=running.app.clock.now())
        session.add(group)
        await session.flush()
        session.add(GroupMember(group_id=group.id, agent_id=bob.id))

    await answer_notice(running, notice, "alice@staff.test", "#assign bob")
    ticket = await get_ticket(running.app, 1)
    assert ticket.assignee is not None
    assert ticket.assignee.email == "bob@staff.test"
    assert (ticket.project, ticket.priority) == ("assigned", "high")
    assert await _fired(running.app, 1, "") == [
        "notify",
        "on ticket_created",
        "on assigned",
        "assignee changed",
    ]

    await answer_notice(running, notice, "alice@staff.test", "#group billing")
    ticket = await get_ticket(running.app, 1)
    assert ticket.group is not None
    assert ticket.group.name == "billing"
    assert ticket.priority == "urgent"
    assert (await _fired(running.app, 1, ""))[4:] == ["on assigned", "group changed"]


async def test_a_type_command_fires_type_changed_and_follows_the_status_map(
    start_daemon: StartDaemon, relay_sink: RelaySink, tmp_path: Path
) -> None:
    types = [TICKET, {**SUGGESTION, "status_map": {"open": "under review"}}]
    running, notice = await _watching(start_daemon, relay_sink, tmp_path, settings={"types": types})

    await answer_notice(running, notice, "alice@staff.test", "#type suggestion")

    ticket = await get_ticket(running.app, 1)
    assert (ticket.type, ticket.status) == ("suggestion", "under review")
    assert await _fired(running.app, 1) == ["ticket_created", "type_changed", "status_changed"]
    assert ticket.project == "status_changed"


async def test_an_admin_changing_the_usergroup_fires_usergroup_changed(
    start_daemon: StartDaemon, relay_sink: RelaySink, tmp_path: Path
) -> None:
    running, notice = await _watching(start_daemon, relay_sink, tmp_path)
    async with running.app.db.transaction() as session:
        session.add(
            Usergroup(name="acme", title="Acme", fields={}, created_at=running.app.clock.now())
        )

    await answer_notice(running, notice, "alice@staff.test", "#usergroup acme")

    ticket = await get_ticket(running.app, 1)
    assert ticket.usergroup is not None
    assert ticket.usergroup.name == "acme"
    assert await _fired(running.app, 1) == ["ticket_created", "usergroup_changed"]
    assert ticket.project == "usergroup_changed"


PROJECTS = """rules:
  - name: apollo mail
    trigger: ticket_created
    if: {message.subject: {contains: apollo}}
    do: [set_project: apollo]
  - name: new apollo work is urgent
    trigger: project_changed
    if: {change.old: null, change.new: Apollo}
    do: [set_priority: urgent]
  - name: leaving a project is never urgent
    trigger: project_changed
    if: {change.new: null}
    do: [set_priority: urgent]
"""


async def test_set_project_fires_project_changed_with_the_old_and_new_project(
    start_daemon: StartDaemon, tmp_path: Path
) -> None:
    running = await start_daemon(rules_dir(tmp_path, {"a.yaml": PROJECTS}))

    await _customer_writes(running, subject="Apollo launch slips")

    ticket = await get_ticket(running.app, 1)
    assert (ticket.project, ticket.priority) == ("apollo", "urgent")
    assert await _fired(running.app, 1, "") == ["apollo mail", "new apollo work is urgent"]


async def test_an_operator_may_not_change_the_usergroup_and_nothing_fires(
    start_daemon: StartDaemon, relay_sink: RelaySink, tmp_path: Path
) -> None:
    running, _ = await _watching(start_daemon, relay_sink, tmp_path)
    async with running.app.db.transaction() as session:
        session.add(
            Usergroup(name="acme", title="Acme", fields={}, created_at=running.app.clock.now())
        )
    (bobs_notice,) = relay_sink.to("bob@staff.test")

    await answer_notice(running, bobs_notice, "bob@staff.test", "#usergroup acme")

    assert (await get_ticket(running.app, 1)).usergroup is None
    assert await _fired(running.app, 1) == ["ticket_created"]
    assert "commands_refused" in await history_actions(running.app, 1)


async def test_a_refused_delivery_fires_delivery_failed(
    start_daemon: StartDaemon, relay_sink: RelaySink, tmp_path: Path
) -> None:
    running = await start_daemon(rules_dir(tmp_path, {"10-watch.yaml": WATCHING}))
    relay_sink.replies = ["550 5.1.1 no such user"]  # the auto-reply, the only mail, bounces

    await _customer_writes(running)

    async def failed() -> bool:
        return (await get_ticket(running.app, 1)).project == "delivery_failed"

    await wait_until(failed)
    assert await _fired(running.app, 1) == ["ticket_created", "delivery_failed"]
    (row,) = await all_rows(running.app, OutboxMessage)
    assert row.state is OutboxState.FAILED
    assert "550 5.1.1 no such user" in row.last_error


# ---------------------------------------------------------------------------- the engine

PING_PONG = """rules:
  - name: kick off
    trigger: ticket_created
    types: [ticket]
    do: [set_status: agent waiting]
  - name: ping
    trigger: status_changed
    types: [ticket]
    if: {change.new: agent waiting}
    do: [set_status: customer waiting]
  - name: pong
    trigger: status_changed
    types: [ticket]
    if: {change.new: customer waiting}
    do: [set_status: agent waiting]
"""


async def test_rules_that_ping_pong_are_stopped_at_the_depth_limit(
    start_daemon: StartDaemon, tmp_path: Path
) -> None:
    settings = rules_dir(tmp_path, {"loop.yaml": PING_PONG})
    settings["rules"]["max_depth"] = 4
    running = await start_daemon(settings)

    await _customer_writes(running)

    history = [h for h in await all_rows(running.app, History) if h.ticket_id == 1]
    changes = [h.details["new"] for h in history if h.action == "status_changed"]
    # Links at depth 0 (ticket_created) to 3 run; the event at depth 4 is not handled.
    assert changes == ["agent waiting", "customer waiting", "agent waiting", "customer waiting"]
    (stopped,) = [h for h in history if h.action == "rule_chain_stopped"]
    assert stopped.details == {"trigger": "status_changed", "depth": 4}
    assert stopped.actor == "rules"
    assert history[-1] == stopped, "nothing ran after the chain was stopped"
    assert (await get_ticket(running.app, 1)).status == "customer waiting"


async def test_the_default_depth_limit_is_five(start_daemon: StartDaemon, tmp_path: Path) -> None:
    running = await start_daemon(rules_dir(tmp_path, {"loop.yaml": PING_PONG}))

    await _customer_writes(running)

    actions = await history_actions(running.app, 1)
    assert actions.count("status_changed") == 5
    assert actions.count("rule_chain_stopped") == 1


STOPPING = """rules:
  - name: first
    trigger: ticket_created
    types: [ticket]
    do:
      - set_priority: high
      - set_status: agent waiting
      - stop: true
      - set_project: after-stop-in-the-same-rule
  - name: second
    trigger: ticket_created
    do: [set_priority: low]
  - name: chained
    trigger: status_changed
    do: [set_due: 4h]
"""


async def test_stop_keeps_later_rules_for_the_event_from_running(
    start_daemon: StartDaemon, tmp_path: Path
) -> None:
    running = await start_daemon(rules_dir(tmp_path, {"stop.yaml": STOPPING}))

    await _customer_writes(running)

    ticket = await get_ticket(running.app, 1)
    assert ticket.priority == "high", "the second rule did not run"
    assert await _fired(running.app, 1, "") == ["first", "chained"], (
        "stop ends this event's rules, not the rules of the events it caused"
    )
    assert ticket.project == "after-stop-in-the-same-rule", "the stopping rule runs to its end"
    assert ticket.due_at is not None


DISABLED = """rules:
  - name: paused
    trigger: ticket_created
    enabled: false
    do: [set_priority: urgent]
  - name: running
    trigger: ticket_created
    enabled: true
    do: [set_project: running]
"""


async def test_a_disabled_rule_does_not_run(start_daemon: StartDaemon, tmp_path: Path) -> None:
    running = await start_daemon(rules_dir(tmp_path, {"rules.yaml": DISABLED}))

    await _customer_writes(running)

    ticket = await get_ticket(running.app, 1)
    assert (ticket.priority, ticket.project) == ("normal", "running")
    assert await _fired(running.app, 1, "") == ["running"]


def _setter(name: str) -> str:
    return f"  - {{name: {name}, trigger: ticket_created, do: [{{set_project: {name}}}]}}\n"


async def test_rules_run_in_file_name_order_then_in_file_order(
    start_daemon: StartDaemon, tmp_path: Path
) -> None:
    files = {  # written in this order; run in name order
        "20-late.yaml": "rules:\n" + _setter("late-1"),
        "10-early.yaml": "rules:\n" + _setter("early-2") + _setter("early-1"),
        "15-middle.yml": "rules:\n" + _setter("middle"),
    }
    running = await start_daemon(rules_dir(tmp_path, files))

    await _customer_writes(running)

    expected = ["early-2", "early-1", "middle", "late-1"]
    assert await _fired(running.app, 1, "") == expected
    changes = [
        h.details["new"]
        for h in await all_rows(running.app, History)
        if h.action == "project_changed"
    ]
    assert changes == expected
    assert (await get_ticket(running.app, 1)).project == "late-1"
