"""Every rule action over real SMTP, seen where people see it: the mail they get, the ticket,
its history. Plus each action's bad arguments, refused at load naming file, rule and problem."""

from __future__ import annotations

import itertools
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from mailflow.app import App
from mailflow.automation.schema import RuleError, load_rules
from mailflow.clock import ManualClock
from mailflow.config import from_mapping
from mailflow.db.models import (
    ActorKind,
    Agent,
    History,
    InboundMessage,
    InboundState,
    Message,
    OutboxMessage,
    Ticket,
)
from mailflow.db.people import Group, Usergroup
from mailflow.mail.addresses import Mailbox
from mailflow.render import Renderer
from mailflow.tickets import ops
from tests.conftest import Received, RelaySink, Running, StartDaemon
from tests.support import (
    add_agent,
    add_group,
    add_usergroup,
    all_rows,
    answer_notice,
    build_message,
    get_ticket,
    rules_dir,
    smtp_send,
)

NOTIFY = """rules:
  - name: notify
    trigger: ticket_created
    do: [send: {template: agent/new_ticket, to: type_agents}]
"""


_SERIAL = itertools.count(1)


def _message_id(number: int, sender: str) -> str:
    return f"<t{number}.{sender.replace('@', '.')}@customer.test>"


async def _write(
    running: Running,
    sender: str = "bob@customer.test",
    subject: str = "Printer is on fire",
    number: int = 1,
    body: str = "Help!",
) -> None:
    """A new ticket from `sender`; `number` is the ticket it will be, for its Message-ID."""
    message = build_message(
        sender=sender, subject=subject, body=body, message_id=_message_id(number, sender)
    )
    assert (await smtp_send(running.port, message, mail_from=sender))[0] == 250


async def _reply(running: Running, number: int, sender: str = "bob@customer.test") -> None:
    message = build_message(
        sender=sender,
        subject=f"Re: [#{number}] more",
        body="Any news?",
        in_reply_to=_message_id(number, sender),
        message_id=f"<r{next(_SERIAL)}@customer.test>",
    )
    assert (await smtp_send(running.port, message, mail_from=sender))[0] == 250


async def _queued(app: App) -> int:
    """Mail written to the outbox, committed before the SMTP answer: an exact count."""
    return len(await all_rows(app, OutboxMessage))


async def _history(app: App, ticket_id: int, action: str) -> list[History]:
    return [
        h for h in await all_rows(app, History) if h.ticket_id == ticket_id and h.action == action
    ]


# ---------------------------------------------------------------------------- send

KINDS = {
    "customer": "customer",
    "assignee": "assignee",
    "group": "group",
    "ticket_agents": "ticket_agents",
    "type_agents": "type_agents",
    "assignee_or_type_agents": "assignee_or_type_agents",
    "replying_agent": "replying_agent",
    "supervisors": "supervisors",
    "literal": "boss@elsewhere.test",
}


def _probes(tmp_path: Path, trigger: str, kinds: dict[str, str]) -> tuple[str, dict[str, Any]]:
    """One rule per kind of recipient, each sending its own template that names the kind."""
    templates = tmp_path / "templates" / "agent"
    templates.mkdir(parents=True, exist_ok=True)
    rules = "rules:\n"
    for kind, to in kinds.items():
        (templates / f"probe_{kind}.txt.j2").write_text(f"probe {kind} about {{{{ tag }}}}\n")
        rules += (
            f"  - name: probe {kind}\n    trigger: {trigger}\n"
            f"    do: [send: {{template: agent/probe_{kind}, to: '{to}'}}]\n"
        )
    return rules, {"templates": {"dir": str(tmp_path / "templates")}}


def _probed(received: list[Received]) -> dict[str, set[str]]:
    """Kind of recipient → who got that probe."""
    found: dict[str, set[str]] = {}
    for mail in received:
        if mail.text.startswith("probe "):
            found.setdefault(mail.text.split()[1], set()).update(mail.rcpt_tos)
    return found


async def _staff(app: App) -> None:
    """Alice, Bob, Carol and Frank serve every type; Dave only suggestions; Eve is not
    notified. Bob and Carol are billing."""
    for name in ("alice", "bob", "carol", "frank"):
        await add_agent(app, f"{name}@staff.test", name.title())
    await add_agent(app, "dave@staff.test", "Dave", types=["suggestion"])
    await add_agent(app, "eve@staff.test", "Eve", notify=False)
    await add_group(app, "billing", "bob@staff.test", "carol@staff.test", "eve@staff.test")


async def test_send_reaches_each_kind_of_recipient(
    start_daemon: StartDaemon, relay_sink: RelaySink, tmp_path: Path
) -> None:
    probes, settings = _probes(tmp_path, "customer_replied", KINDS)
    running = await start_daemon(
        {**rules_dir(tmp_path, {"10-base.yaml": NOTIFY, "20-probe.yaml": probes}), **settings}
    )
    await _staff(running.app)
    await add_usergroup(
        running.app, "acme", {"mia@acme.test": False, "sam@acme.test": True}, default=True
    )
    await _write(running, "mia@acme.test")
    await relay_sink.wait_for(4)
    (notice,) = relay_sink.to("alice@staff.test")
    await answer_notice(
        running, notice, "alice@staff.test", "#assign carol\n#group billing\n\nOn it."
    )
    await relay_sink.wait_for(5)
    before = len(relay_sink.received)

    await _reply(running, 1, "mia@acme.test")

    assert await _queued(running.app) == before + 14
    received = await relay_sink.wait_for(before + 14)
    assert _probed(received[before:]) == {
        "customer": {"mia@acme.test"},
        "assignee": {"carol@staff.test"},
        "group": {"bob@staff.test", "carol@staff.test"},
        "ticket_agents": {"alice@staff.test", "bob@staff.test", "carol@staff.test"},
        "type_agents": {
            "alice@staff.test",
            "bob@staff.test",
            "carol@staff.test",
            "frank@staff.test",
        },
        "assignee_or_type_agents": {"carol@staff.test"},
        "supervisors": {"sam@acme.test"},
        "literal": {"boss@elsewhere.test"},
    }, "replying_agent is nobody for a customer's reply; Dave and Eve are never told"
    assert all(len(m.rcpt_tos) == 1 for m in received[before:]), "one mail per person"


async def test_assignee_or_type_agents_falls_back_to_the_group_then_the_type(
    start_daemon: StartDaemon, relay_sink: RelaySink, tmp_path: Path
) -> None:
    kinds = {"assignee_or_type_agents": "assignee_or_type_agents"}
    probes, settings = _probes(tmp_path, "customer_replied", kinds)
    running = await start_daemon({**rules_dir(tmp_path, {"probe.yaml": probes}), **settings})
    await _staff(running.app)
    await _write(running)
    app = running.app
    steps = [
        ("unassigned", {"alice", "bob", "carol", "frank"}),
        ("group", {"bob", "carol"}),
        ("assignee", {"frank"}),
    ]
    for change, expected in steps:
        async with app.db.transaction() as session:
            ticket = await session.get(Ticket, 1)
            assert ticket is not None
            actor, now = ops.Actor.system(), app.clock.now()
            if change == "group":
                group = await session.scalar(select(Group))
                ops.assign_group(ticket, group, actor=actor, now=now, session=session)
            if change == "assignee":
                frank = await session.scalar(select(Agent).where(Agent.email == "frank@staff.test"))
                ops.assign(ticket, frank, actor=actor, now=now, session=session)
        before = len(relay_sink.received)
        await _reply(running, 1)
        assert await _queued(app) == before + len(expected)
        received = (await relay_sink.wait_for(before + len(expected)))[before:]
        assert {r for m in received for r in m.rcpt_tos} == {f"{n}@staff.test" for n in expected}


ACTING = """rules:
  - name: tell the assignee
    trigger: assigned
    if: {assigned.agent_changed: true}
    do: [send: {template: agent/assigned, to: assignee}]
"""


async def test_the_acting_agent_is_never_mailed_about_their_own_act(
    start_daemon: StartDaemon, relay_sink: RelaySink, tmp_path: Path
) -> None:
    kinds = {k: k for k in ("assignee", "group", "ticket_agents", "type_agents", "replying_agent")}
    probes, settings = _probes(tmp_path, "agent_replied", kinds)
    files = {"10-base.yaml": NOTIFY, "20-acting.yaml": ACTING, "30-probe.yaml": probes}
    running = await start_daemon({**rules_dir(tmp_path, files), **settings})
    await _staff(running.app)
    await add_group(running.app, "front", "alice@staff.test", "bob@staff.test")
    await _write(running)
    await relay_sink.wait_for(4)
    (notice,) = relay_sink.to("alice@staff.test")

    await answer_notice(running, notice, "alice@staff.test", "#assign me\n#group front")
    assert await _queued(running.app) == 4, "Alice is not told she took it"
    before = len(relay_sink.received)
    await answer_notice(running, notice, "alice@staff.test", "Hello Bob.")

    # The answer to the customer, and the probes: group 1, ticket_agents 1, type_agents 3,
    # replying_agent 1.
    assert await _queued(running.app) == before + 7
    received = await relay_sink.wait_for(before + 7)
    assert _probed(received[before:]) == {
        "group": {"bob@staff.test"},
        "ticket_agents": {"bob@staff.test"},
        "type_agents": {"bob@staff.test", "carol@staff.test", "frank@staff.test"},
        "replying_agent": {"alice@staff.test"},
    }, "the assignee probe is not sent: the assignee is Alice, who acted"

    before = len(relay_sink.received)
    await answer_notice(running, notice, "alice@staff.test", "#assign bob")
    assert await _queued(running.app) == before + 1
    (told,) = (await relay_sink.wait_for(before + 1))[before:]
    assert told.rcpt_tos == ["bob@staff.test"]
    assert "[#1]" in str(told.message["Subject"])


# ---------------------------------------------------------------------------- ticket fields

SETTERS = """rules:
  - name: triage
    trigger: ticket_created
    types: [ticket]
    do:
      - set_status: agent waiting
      - set_priority: urgent
      - set_project: Apollo
  - name: reset
    trigger: customer_replied
    do:
      - set_project: none
      - set_priority: low
"""


async def test_set_status_set_priority_and_set_project(
    start_daemon: StartDaemon, tmp_path: Path
) -> None:
    running = await start_daemon(rules_dir(tmp_path, {"a.yaml": SETTERS}))
    await _write(running)

    ticket = await get_ticket(running.app, 1)
    assert (ticket.status, ticket.priority, ticket.project) == ("agent waiting", "urgent", "Apollo")
    (changed,) = await _history(running.app, 1, "status_changed")
    assert (changed.actor_kind, changed.actor) == (ActorKind.AUTOMATION, "rule: triage")
    assert changed.details == {"old": "open", "new": "agent waiting"}

    await _reply(running, 1)
    ticket = await get_ticket(running.app, 1)
    assert (ticket.project, ticket.priority) == (None, "low")
    projects = [h.details for h in await _history(running.app, 1, "project_changed")]
    assert projects == [{"old": None, "new": "Apollo"}, {"old": "Apollo", "new": None}]


ASSIGNING = """rules:
  - name: alice takes new tickets
    trigger: ticket_created
    if: {message.subject: {contains: alice}}
    do: [assign: Alice@Staff.test]
  - name: a stranger takes new tickets
    trigger: ticket_created
    if: {message.subject: {contains: stranger}}
    do: [assign: zed@staff.test]
  - name: gone takes new tickets
    trigger: ticket_created
    if: {message.subject: {contains: gone}}
    do: [assign: gone@staff.test]
  - name: nobody answers for a ticket yet
    trigger: ticket_created
    do: [assign: replying_agent]
  - name: the answering agent takes it
    trigger: agent_replied
    do: [assign: replying_agent]
  - name: the customer's answer unassigns
    trigger: customer_replied
    do: [assign: nobody]
"""


async def test_assign_to_an_address_the_replying_agent_or_nobody(
    start_daemon: StartDaemon, relay_sink: RelaySink, tmp_path: Path
) -> None:
    running = await start_daemon(
        rules_dir(tmp_path, {"10-base.yaml": NOTIFY, "20.yaml": ASSIGNING})
    )
    await add_agent(running.app, "alice@staff.test", "Alice")
    await add_agent(running.app, "bob@staff.test", "Bob")
    await _write(running, subject="For alice")
    ticket = await get_ticket(running.app, 1)
    assert ticket.assignee is not None
    assert ticket.assignee.email == "alice@staff.test"
    (assigned,) = await _history(running.app, 1, "assigned")
    assert assigned.actor == "rule: alice takes new tickets"

    await relay_sink.wait_for(2)
    (bobs,) = relay_sink.to("bob@staff.test")
    await answer_notice(running, bobs, "bob@staff.test", "I will do it.")
    ticket = await get_ticket(running.app, 1)
    assert ticket.assignee is not None
    assert ticket.assignee.email == "bob@staff.test"

    await _reply(running, 1)
    assert (await get_ticket(running.app, 1)).assignee_id is None


async def test_assigning_an_unknown_or_inactive_agent_is_skipped_and_recorded(
    start_daemon: StartDaemon, tmp_path: Path
) -> None:
    running = await start_daemon(rules_dir(tmp_path, {"a.yaml": ASSIGNING}))
    await add_agent(running.app, "gone@staff.test", "Gone")
    async with running.app.db.transaction() as session:
        await session.execute(update(Agent).values(active=False))

    await _write(running, subject="For a stranger")
    await _write(running, "kim@customer.test", subject="For gone", number=2)

    for number, address in ((1, "zed@staff.test"), (2, "gone@staff.test")):
        ticket = await get_ticket(running.app, number)
        assert ticket.assignee_id is None
        (skipped,) = await _history(running.app, number, "rule_action_skipped")
        assert skipped.details == {"reason": f"no active agent {address}"}
        assert skipped.actor.startswith("rule: ")


TYPING = """rules:
  - name: ideas are suggestions
    trigger: ticket_created
    types: [ticket]
    if: {message.subject: {contains: idea}}
    do: [set_type: suggestion]
  - name: waiting ideas are under review
    trigger: ticket_created
    types: [ticket]
    if: {message.subject: {contains: waiting}}
    do:
      - set_status: agent waiting
      - set_type: suggestion
"""
TYPES = [
    {
        "name": "ticket",
        "addresses": ["support@example.com"],
        "statuses": ["open", "agent waiting", "customer waiting", "resolved", "closed"],
        "closed": ["resolved", "closed"],
        "default_status": "open",
    },
    {
        "name": "suggestion",
        "addresses": ["suggestion@example.com"],
        "statuses": ["new", "under review", "accepted", "rejected", "done"],
        "closed": ["rejected", "done"],
        "default_status": "new",
        "status_map": {"agent waiting": "under review"},
    },
]


async def test_set_type_maps_the_status_or_takes_the_default(
    start_daemon: StartDaemon, tmp_path: Path
) -> None:
    running = await start_daemon({**rules_dir(tmp_path, {"a.yaml": TYPING}), "types": TYPES})

    await _write(running, subject="An idea: dark mode")
    await _write(running, "kim@customer.test", subject="Still waiting", number=2)

    first, second = await get_ticket(running.app, 1), await get_ticket(running.app, 2)
    assert (first.type, first.status) == ("suggestion", "new"), "open is not mapped: default"
    assert (second.type, second.status) == ("suggestion", "under review")
    (typed,) = await _history(running.app, 2, "type_changed")
    assert typed.details == {"old": "ticket", "new": "suggestion", "old_status": "agent waiting"}
    moved = [h.details for h in await _history(running.app, 1, "status_changed")]
    assert moved == [{"old": "open", "new": "new"}], "a rule on change.old sees the old status"


RETYPED = """rules:
  - name: ideas are suggestions
    trigger: ticket_created
    types: [ticket]
    if: {message.subject: {contains: idea}}
    do: [set_type: suggestion]
  - name: tickets wait for an agent
    trigger: ticket_created
    types: [ticket]
    do: [set_status: agent waiting]
"""


async def test_rules_for_the_old_type_do_not_run_after_set_type(
    start_daemon: StartDaemon, tmp_path: Path
) -> None:
    running = await start_daemon(rules_dir(tmp_path, {"a.yaml": RETYPED}))

    await _write(running, subject="An idea: dark mode")

    (inbound,) = await all_rows(running.app, InboundMessage)
    assert inbound.state is InboundState.PROCESSED, inbound.reason
    ticket = await get_ticket(running.app, 1)
    assert (ticket.type, ticket.status) == ("suggestion", "new")


USERGROUPS = """rules:
  - name: acme's tickets
    trigger: ticket_created
    if: {customer.domain: acme.test}
    do: [set_usergroup: ACME]
  - name: unknown usergroup
    trigger: ticket_created
    if: {customer.domain: nowhere.test}
    do: [set_usergroup: nowhere]
  - name: out of acme
    trigger: customer_replied
    do: [set_usergroup: nobody]
  - name: a usergroup change is an event
    trigger: usergroup_changed
    do: [set_priority: high]
"""


async def test_set_usergroup_sets_clears_and_skips_an_unknown_one(
    start_daemon: StartDaemon, tmp_path: Path
) -> None:
    running = await start_daemon(rules_dir(tmp_path, {"a.yaml": USERGROUPS}))
    async with running.app.db.transaction() as session:
        session.add(
            Usergroup(name="acme", title="Acme", fields={}, created_at=running.app.clock.now())
        )

    await _write(running, "mia@acme.test")
    await _write(running, "ned@nowhere.test", number=2)

    ticket = await get_ticket(running.app, 1)
    assert ticket.usergroup is not None
    assert (ticket.usergroup.name, ticket.priority) == ("acme", "high")
    other = await get_ticket(running.app, 2)
    assert (other.usergroup_id, other.priority) == (None, "normal")
    (skipped,) = await _history(running.app, 2, "rule_action_skipped")
    assert skipped.details == {"reason": "no usergroup nowhere"}

    await _reply(running, 1, "mia@acme.test")
    assert (await get_ticket(running.app, 1)).usergroup_id is None


FIELDS = {
    "ticket_fields": [
        {"name": "severity", "type": "choice", "choices": ["s1", "s2", "s3"]},
        {"name": "contract", "type": "text"},
    ]
}
SET_FIELD = """rules:
  - name: severity from the subject
    trigger: ticket_created
    if: {message.subject: {contains: down}}
    do:
      - set_field: {name: severity, value: s1}
      - set_field: {name: contract, value: "  C-42 "}
  - name: calmer on the customer's answer
    trigger: customer_replied
    do:
      - set_field: {name: severity, value: s3}
      - set_field: {name: contract, value: null}
"""


async def test_set_field_sets_declared_ticket_fields(
    start_daemon: StartDaemon, tmp_path: Path
) -> None:
    running = await start_daemon({**rules_dir(tmp_path, {"a.yaml": SET_FIELD}), **FIELDS})

    await _write(running, subject="Everything is down")
    assert (await get_ticket(running.app, 1)).fields == {"severity": "s1", "contract": "C-42"}
    await _reply(running, 1)

    assert (await get_ticket(running.app, 1)).fields == {"severity": "s3"}, "null clears it"
    changes = [h.details for h in await _history(running.app, 1, "field_changed")]
    assert changes == [
        {"field": "severity", "old": None, "new": "s1"},
        {"field": "contract", "old": None, "new": "C-42"},
        {"field": "severity", "old": "s1", "new": "s3"},
        {"field": "contract", "old": "C-42", "new": None},
    ]


DUE = """rules:
  - name: due in four hours
    trigger: ticket_created
    do: [set_due: 4h]
  - name: no due date once answered
    trigger: customer_replied
    do: [set_due: none]
"""


async def test_set_due_counts_from_now_and_none_clears_it(
    start_daemon: StartDaemon, tmp_path: Path, clock: ManualClock
) -> None:
    running = await start_daemon(rules_dir(tmp_path, {"a.yaml": DUE}), clock=clock)
    opened = clock.now()

    await _write(running)
    assert (await get_ticket(running.app, 1)).due_at == opened + timedelta(hours=4)

    clock.advance(timedelta(hours=1))
    await _reply(running, 1)
    assert (await get_ticket(running.app, 1)).due_at is None
    dues = [h.details["due"] for h in await _history(running.app, 1, "due_changed")]
    assert dues == [(opened + timedelta(hours=4)).isoformat(), None]


def _group_rule(strategy: str) -> str:
    return (
        "rules:\n  - name: billing takes it\n    trigger: ticket_created\n"
        f"    do: [assign_group: {{group: Billing, strategy: {strategy}}}]\n"
        "  - name: a missing group is skipped\n    trigger: customer_replied\n"
        "    do: [assign_group: nowhere]\n"
    )


async def _billing(start_daemon: StartDaemon, tmp_path: Path, strategy: str) -> Running:
    running = await start_daemon(rules_dir(tmp_path, {"a.yaml": _group_rule(strategy)}))
    await add_agent(running.app, "carol@staff.test", "Carol")
    await add_agent(running.app, "bob@staff.test", "Bob")
    await add_agent(running.app, "alice@staff.test", "Alice")
    await add_group(running.app, "billing", "bob@staff.test", "carol@staff.test")
    return running


async def test_assign_group_fixed_sets_the_group_only(
    start_daemon: StartDaemon, tmp_path: Path
) -> None:
    running = await _billing(start_daemon, tmp_path, "fixed")

    await _write(running)
    ticket = await get_ticket(running.app, 1)
    assert ticket.group is not None
    assert (ticket.group.name, ticket.assignee_id) == ("billing", None)

    await _reply(running, 1)
    (skipped,) = await _history(running.app, 1, "rule_action_skipped")
    assert skipped.details == {"reason": "no group nowhere"}
    assert (await get_ticket(running.app, 1)).group is not None


async def test_assign_group_round_robin_rotates_across_the_members(
    start_daemon: StartDaemon, tmp_path: Path
) -> None:
    running = await _billing(start_daemon, tmp_path, "round_robin")

    for number in (1, 2, 3):
        await _write(
            running, f"c{number}@customer.test", subject=f"Invoice {number}", number=number
        )

    tickets = await all_rows(running.app, Ticket)
    assert [(t.group.name if t.group else None) for t in tickets] == ["billing"] * 3
    assert [t.assignee.email if t.assignee else None for t in tickets] == [
        "bob@staff.test",
        "carol@staff.test",
        "bob@staff.test",
    ], "in address order, round and round; Alice is not in billing"


async def test_assign_group_fewest_open_picks_the_least_loaded_member(
    start_daemon: StartDaemon, tmp_path: Path
) -> None:
    running = await _billing(start_daemon, tmp_path, "fewest_open")
    app = running.app
    ticket_type = app.config.ticket_type("ticket")
    load = [("bob", "open"), ("bob", "agent waiting")]  # Bob: two open
    load += [("carol", "open"), ("carol", "closed"), ("carol", "resolved"), ("carol", "closed")]
    async with app.db.transaction() as session:
        now, actor = app.clock.now(), ops.Actor.system()
        customer = await ops.customer_for(session, Mailbox("", "old@customer.test"), now)
        for name, status in load:
            agent = await session.scalar(select(Agent).where(Agent.email == f"{name}@staff.test"))
            ticket = await ops.open_ticket(
                session,
                ticket_type=ticket_type,
                customer=customer,
                subject="old",
                actor=actor,
                now=now,
            )
            ops.assign(ticket, agent, actor=actor, now=now, session=session)
            ops.set_status(
                ticket, status, ticket_type=ticket_type, actor=actor, now=now, session=session
            )

    await _write(running, "new@customer.test", subject="Refund")

    new = (await all_rows(app, Ticket))[-1]
    assert new.subject == "Refund"
    assert new.assignee is not None
    assert new.assignee.email == "carol@staff.test", (
        "one open ticket beats two; closed ones don't count"
    )


NOTE = """rules:
  - name: auto-reply
    trigger: ticket_created
    do: [send: {template: customer/auto_reply, to: customer}]
  - name: flag vip
    trigger: ticket_created
    if: {customer.domain: vip.test}
    do: [add_note: "VIP customer: call back within the hour."]
"""


async def test_add_note_keeps_an_internal_message_the_customer_never_gets(
    start_daemon: StartDaemon, relay_sink: RelaySink, tmp_path: Path
) -> None:
    running = await start_daemon(rules_dir(tmp_path, {"a.yaml": NOTE}))

    await _write(running, "zoe@vip.test")

    customer, note = await all_rows(running.app, Message)
    assert (note.public, note.author_kind, note.text) == (
        False,
        ActorKind.AUTOMATION,
        "VIP customer: call back within the hour.",
    )
    assert note.from_name == "rule: flag vip"
    assert customer.public
    (auto_reply,) = await relay_sink.wait_for(1)
    assert "call back" not in auto_reply.text
    assert await _history(running.app, 1, "note_added")


STOP = """rules:
  - name: vip
    trigger: ticket_created
    if: {customer.domain: vip.test}
    do: [set_priority: high, stop: true]
  - name: everyone else
    trigger: ticket_created
    do: [set_priority: low]
"""


async def test_stop_ends_the_rules_for_the_event(start_daemon: StartDaemon, tmp_path: Path) -> None:
    running = await start_daemon(rules_dir(tmp_path, {"a.yaml": STOP}))

    await _write(running, "zoe@vip.test")
    await _write(running, "kim@customer.test", number=2)

    tickets = await all_rows(running.app, Ticket)
    assert [t.priority for t in tickets] == ["high", "low"]


# ---------------------------------------------------------------------------- load errors


@pytest.mark.parametrize(
    ("action", "problem"),
    [
        ("send: {to: customer}", "send takes {template: NAME"),
        ("send: {template: customer/auto_reply, cc: x@y.test}", "send takes {template: NAME"),
        ("send: {template: customer/auto_reply, to: everyone}", "send.to: 'everyone' is not"),
        ("send: {template: customer/auto_reply, to: [customer, x]}", "send.to: 'x' is not"),
        ("send: {template: customer/nope}", "no template customer/nope.txt.j2"),
        ("send: {template: ''}", "send.template must be a non-empty string"),
        ("set_status: on hold", "set_status: 'on hold' is not a status of type 'ticket'"),
        ("set_status: [open]", "set_status must be a non-empty string"),
        ("set_priority: whenever", "set_priority: 'whenever' is not one of low, normal"),
        ("assign: somebody", "assign: 'somebody' is not replying_agent, nobody or an agent"),
        ("stop: false", "stop takes the value true"),
        ("set_type: complaint", "set_type: 'complaint' is not a ticket type (ticket, suggestion)"),
        ("set_usergroup: ''", "set_usergroup must be a non-empty string"),
        (f"set_project: {'x' * 101}", "set_project: a project name has at most 100 characters"),
        ("set_field: severity", "set_field takes {name: FIELD, value: VALUE}"),
        ("set_field: {name: colour, value: red}", "set_field: no ticket field 'colour'; known"),
        ("set_field: {name: severity, value: s9}", "set_field: severity: 's9' is not one of"),
        ("set_due: true", "set_due: True is not a duration"),
        ("set_due: soon", "set_due: 'soon' is not a duration"),
        ("assign_group: {group: billing, strategy: random}", "'random' is not one of fixed"),
        ("assign_group: {strategy: fixed}", "assign_group takes NAME or {group: NAME"),
        ("assign_group: {group: billing, size: 2}", "assign_group takes NAME or {group: NAME"),
        ("assign_group: ''", "assign_group.group must be a non-empty string"),
        ("add_note: ''", "add_note must be a non-empty string"),
    ],
)
def test_a_bad_argument_is_refused_at_load_naming_file_rule_and_problem(
    tmp_path: Path, action: str, problem: str
) -> None:
    path = tmp_path / "rules"
    path.mkdir()
    (path / "team.yaml").write_text(
        f"rules:\n  - name: broken\n    trigger: ticket_created\n    do:\n      - {action}\n"
    )
    config = from_mapping({"rules": {"dir": str(path)}, **FIELDS}, "test.toml", tmp_path)

    with pytest.raises(RuleError) as caught:
        load_rules(config, Renderer.from_config(config))

    assert (caught.value.file, caught.value.rule) == (str(path / "team.yaml"), "broken")
    assert problem in caught.value.problem
    assert str(caught.value).startswith(f"{path / 'team.yaml'}: rule 'broken': ")


def test_a_bad_rule_stops_the_daemon_before_it_listens(tmp_path: Path) -> None:
    path = tmp_path / "rules"
    path.mkdir()
    (path / "team.yaml").write_text(
        "rules:\n  - {name: fields, trigger: ticket_created,"
        " do: [set_field: {name: x, value: 1}]}\n"
    )
    config = from_mapping({"rules": {"dir": str(path)}}, "test.toml", tmp_path)

    with pytest.raises(RuleError) as caught:
        App(config)

    assert caught.value.rule == "fields"
    assert "no ticket field 'x'; known: none; declare them as [[ticket_fields]]" in str(
        caught.value
    )
