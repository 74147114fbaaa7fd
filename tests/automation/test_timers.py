"""Time-based rules with a manual clock and the sweep called directly: each fires once per
ticket per episode, not before its time, not twice, not again after a restart or from a second
daemon, and again in a new episode."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mailflow.app import App
from mailflow.automation.schema import RuleError, load_rules
from mailflow.automation.sweep import sweep
from mailflow.clock import ManualClock
from mailflow.config import from_mapping
from mailflow.db.models import History, RuleFiring, Ticket
from mailflow.render import Renderer
from mailflow.tickets import ops
from tests.conftest import Received, RelaySink, Running, StartDaemon
from tests.support import add_agent, all_rows, build_message, get_ticket, reply_address, smtp_send

NOTIFY = """  - name: notify
    trigger: ticket_created
    do: [send: {template: agent/new_ticket, to: type_agents}]
"""
STATUS_FOR = """rules:
  - name: two days open
    trigger: status_for
    types: [ticket]
    when: {status: open, after: 2d}
    do: [add_note: open for two days]
"""
SILENCE = f"""rules:
{NOTIFY}  - name: customer silent
    trigger: no_customer_reply
    when: {{after: 3d}}
    do: [add_note: the customer is silent]
  - name: agent silent
    trigger: no_agent_reply
    when: {{after: 4h}}
    do: [add_note: nobody answered]
"""
DUE = """rules:
  - name: due in a day
    trigger: ticket_created
    do: [set_due: 1d]
  - name: due soon
    trigger: due
    when: {before: 2h}
    do: [add_note: due in two hours]
  - name: overdue
    trigger: due
    when: {after: 1h}
    do: [add_note: an hour overdue, set_priority: urgent]
"""
_SERIAL = itertools.count(1)


def _settings(tmp_path: Path, rules: str) -> dict[str, Any]:
    """The rules; the scheduler's own sweep is far off, so that only the test sweeps."""
    path = tmp_path / "rules"
    path.mkdir(exist_ok=True)
    (path / "timed.yaml").write_text(rules)
    return {"rules": {"dir": str(path), "sweep_interval": "1d"}}


async def _fired(app: App, rule: str) -> list[int]:
    """The tickets the rule fired for, once per firing."""
    return [
        h.ticket_id
        for h in await all_rows(app, History)
        if h.action == "rule_fired" and h.actor == f"rule: {rule}"
    ]


async def _write(running: Running, number: int = 1, sender: str = "bob@customer.test") -> None:
    """Ticket `number`'s first message, or with the ticket there, the customer's answer."""
    opening = f"<t{number}@customer.test>"
    answering = await _exists(running.app, number)
    message = build_message(
        sender=sender,
        subject=f"Re: [#{number}] Printer" if answering else f"Printer {number}",
        message_id=f"<m{next(_SERIAL)}@customer.test>" if answering else opening,
        in_reply_to=opening if answering else None,
    )
    assert (await smtp_send(running.port, message, mail_from=sender))[0] == 250


async def _exists(app: App, number: int) -> bool:
    async with app.db.transaction() as session:
        return await session.get(Ticket, number) is not None


async def _agent_answers(running: Running, notice: Received, body: str = "On it.") -> None:
    message = build_message(
        sender="alice@staff.test",
        to=reply_address(notice),
        subject="Re: " + str(notice.message["Subject"]),
        body=body,
        message_id=f"<a{next(_SERIAL)}@staff.test>",
        in_reply_to=notice.message["Message-ID"],
    )
    assert (await smtp_send(running.port, message, mail_from="alice@staff.test"))[0] == 250


async def _set_status(app: App, number: int, status: str) -> None:
    """As an agent would by #status or the CLI."""
    async with app.db.transaction() as session:
        ticket = await session.get(Ticket, number)
        assert ticket is not None
        ops.set_status(
            ticket,
            status,
            ticket_type=app.config.ticket_type(ticket.type),
            actor=ops.Actor.system("test"),
            now=app.clock.now(),
            session=session,
        )


async def _notes(app: App, number: int) -> list[str]:
    return [
        h.details["text"]
        for h in await all_rows(app, History)
        if h.ticket_id == number and h.action == "note_added"
    ]


# ---------------------------------------------------------------------------- status_for


async def test_status_for_fires_once_after_the_delay(
    start_daemon: StartDaemon, tmp_path: Path, clock: ManualClock
) -> None:
    running = await start_daemon(_settings(tmp_path, STATUS_FOR), clock=clock)
    await _write(running)

    clock.advance(timedelta(days=2) - timedelta(seconds=1))
    assert await sweep(running.app) == 0
    clock.advance(timedelta(seconds=1))
    assert await sweep(running.app) == 1
    assert await sweep(running.app) == 0
    clock.advance(timedelta(days=5))
    assert await sweep(running.app) == 0

    assert await _fired(running.app, "two days open") == [1]
    assert await _notes(running.app, 1) == ["open for two days"]
    (firing,) = await all_rows(running.app, RuleFiring)
    ticket = await get_ticket(running.app, 1)
    assert (firing.rule, firing.ticket_id, firing.episode_at) == (
        "two days open",
        1,
        ticket.status_since,
    )


async def test_status_for_fires_again_after_leaving_the_status_and_coming_back(
    start_daemon: StartDaemon, tmp_path: Path, clock: ManualClock
) -> None:
    running = await start_daemon(_settings(tmp_path, STATUS_FOR), clock=clock)
    await _write(running)
    clock.advance(timedelta(days=3))
    assert await sweep(running.app) == 1

    await _set_status(running.app, 1, "agent waiting")
    clock.advance(timedelta(days=3))
    assert await sweep(running.app) == 0, "not open now"
    await _set_status(running.app, 1, "open")
    clock.advance(timedelta(days=1))
    assert await sweep(running.app) == 0, "open again, but only for a day"
    clock.advance(timedelta(days=1))
    assert await sweep(running.app) == 1, "a new stay in the status, a new episode"

    assert await _fired(running.app, "two days open") == [1, 1]


async def test_status_for_survives_a_restart_without_firing_twice(
    start_daemon: StartDaemon, tmp_path: Path, clock: ManualClock
) -> None:
    settings = _settings(tmp_path, STATUS_FOR)
    first = await start_daemon(settings, clock=clock)
    await _write(first, 1)
    clock.advance(timedelta(days=1))
    await _write(first, 2, "kim@customer.test")
    clock.advance(timedelta(days=1))
    assert await sweep(first.app) == 1  # ticket 1 only
    await first.daemon.stop()

    clock.advance(timedelta(days=1))  # ticket 2's time comes while no daemon runs
    second = await start_daemon(settings, clock=clock)
    assert await sweep(second.app) == 1
    assert await sweep(second.app) == 0
    clock.advance(timedelta(days=1))
    assert await sweep(second.app) == 0

    assert await _fired(second.app, "two days open") == [1, 2]


async def test_status_for_fires_for_closed_tickets_too(
    start_daemon: StartDaemon, tmp_path: Path, clock: ManualClock
) -> None:
    rules = STATUS_FOR.replace("status: open", "status: closed")
    running = await start_daemon(_settings(tmp_path, rules), clock=clock)
    await _write(running)
    await _set_status(running.app, 1, "closed")

    clock.advance(timedelta(days=2))
    assert await sweep(running.app) == 1


# ---------------------------------------------------------------------------- silences


async def _silence(
    start_daemon: StartDaemon, relay_sink: RelaySink, tmp_path: Path, clock: ManualClock
) -> tuple[Running, Received]:
    running = await start_daemon(_settings(tmp_path, SILENCE), clock=clock)
    await add_agent(running.app, "alice@staff.test", "Alice")
    await _write(running)
    (notice,) = await relay_sink.wait_for(1)
    return running, notice


async def test_no_customer_reply_fires_after_the_agents_answer(
    start_daemon: StartDaemon, relay_sink: RelaySink, tmp_path: Path, clock: ManualClock
) -> None:
    running, notice = await _silence(start_daemon, relay_sink, tmp_path, clock)
    clock.advance(timedelta(hours=1))
    await _agent_answers(running, notice)

    clock.advance(timedelta(days=3) - timedelta(seconds=1))
    assert await sweep(running.app) == 0
    clock.advance(timedelta(seconds=1))
    assert await sweep(running.app) == 1
    clock.advance(timedelta(days=10))
    assert await sweep(running.app) == 0

    assert await _notes(running.app, 1) == ["the customer is silent"]
    assert await _fired(running.app, "agent silent") == [], "the agent answered within 4h"


async def test_the_customers_answer_ends_the_silence_and_starts_the_agents(
    start_daemon: StartDaemon, relay_sink: RelaySink, tmp_path: Path, clock: ManualClock
) -> None:
    running, notice = await _silence(start_daemon, relay_sink, tmp_path, clock)
    clock.advance(timedelta(hours=1))
    await _agent_answers(running, notice)
    clock.advance(timedelta(days=1))
    await _write(running)  # the customer answers

    clock.advance(timedelta(days=3))
    assert await sweep(running.app) == 1
    assert await _fired(running.app, "customer silent") == []
    assert await _fired(running.app, "agent silent") == [1]

    await _agent_answers(running, notice, "Sorry for the wait.")  # a new silence begins
    clock.advance(timedelta(days=3))
    assert await sweep(running.app) == 1
    assert await _fired(running.app, "customer silent") == [1]


async def test_no_agent_reply_fires_once_per_unanswered_customer_message(
    start_daemon: StartDaemon, relay_sink: RelaySink, tmp_path: Path, clock: ManualClock
) -> None:
    running, _ = await _silence(start_daemon, relay_sink, tmp_path, clock)

    clock.advance(timedelta(hours=4) - timedelta(seconds=1))
    assert await sweep(running.app) == 0
    clock.advance(timedelta(seconds=1))
    assert await sweep(running.app) == 1
    assert await sweep(running.app) == 0
    clock.advance(timedelta(hours=1))
    await _write(running)  # still no answer: the customer writes again
    clock.advance(timedelta(hours=4))
    assert await sweep(running.app) == 1

    assert await _fired(running.app, "agent silent") == [1, 1]
    assert await _fired(running.app, "customer silent") == []


async def test_an_agents_commands_alone_are_no_answer_to_the_customer(
    start_daemon: StartDaemon, relay_sink: RelaySink, tmp_path: Path, clock: ManualClock
) -> None:
    running, notice = await _silence(start_daemon, relay_sink, tmp_path, clock)
    clock.advance(timedelta(hours=1))
    await _agent_answers(running, notice, "#priority high")
    assert (await get_ticket(running.app, 1)).priority == "high"

    clock.advance(timedelta(hours=4))
    await sweep(running.app)

    assert await _fired(running.app, "agent silent") == [1]


# ---------------------------------------------------------------------------- due dates


async def test_due_fires_before_and_after_the_due_date_once_each(
    start_daemon: StartDaemon, tmp_path: Path, clock: ManualClock
) -> None:
    running = await start_daemon(_settings(tmp_path, DUE), clock=clock)
    await _write(running)
    assert (await get_ticket(running.app, 1)).due_at == clock.now() + timedelta(days=1)

    clock.advance(timedelta(hours=22) - timedelta(seconds=1))
    assert await sweep(running.app) == 0
    clock.advance(timedelta(seconds=1))
    assert await sweep(running.app) == 1
    assert await _notes(running.app, 1) == ["due in two hours"]
    clock.advance(timedelta(hours=2, minutes=59))  # 59 minutes overdue
    assert await sweep(running.app) == 0
    clock.advance(timedelta(minutes=1))
    assert await sweep(running.app) == 1
    clock.advance(timedelta(days=3))
    assert await sweep(running.app) == 0

    assert await _notes(running.app, 1) == ["due in two hours", "an hour overdue"]
    assert (await get_ticket(running.app, 1)).priority == "urgent"


async def test_a_new_due_date_is_a_new_episode(
    start_daemon: StartDaemon, tmp_path: Path, clock: ManualClock
) -> None:
    rules = DUE + "  - name: again\n    trigger: customer_replied\n    do: [set_due: 1d]\n"
    running = await start_daemon(_settings(tmp_path, rules), clock=clock)
    await _write(running)
    clock.advance(timedelta(hours=23))
    assert await sweep(running.app) == 1  # due soon
    clock.advance(timedelta(days=1))
    assert await sweep(running.app) == 1  # overdue

    await _write(running)  # the customer's answer sets a new due date
    clock.advance(timedelta(hours=23))
    assert await sweep(running.app) == 1
    clock.advance(timedelta(days=1))
    assert await sweep(running.app) == 1
    assert await _fired(running.app, "due soon") == [1, 1]
    assert await _fired(running.app, "overdue") == [1, 1]


async def test_a_warning_before_the_due_date_is_not_sent_once_it_has_passed(
    start_daemon: StartDaemon, tmp_path: Path, clock: ManualClock
) -> None:
    """Swept only after the due date (the daemon was down, or the ticket was reopened
    overdue): the overdue rule speaks, not a stale "due in two hours"."""
    running = await start_daemon(_settings(tmp_path, DUE), clock=clock)
    await _write(running)
    clock.advance(timedelta(days=2))

    assert await sweep(running.app) == 1
    assert await _fired(running.app, "due soon") == []
    assert await _notes(running.app, 1) == ["an hour overdue"]


async def test_closed_tickets_are_not_swept_for_silences_or_due_dates(
    start_daemon: StartDaemon, relay_sink: RelaySink, tmp_path: Path, clock: ManualClock
) -> None:
    rules = SILENCE + "".join(DUE.splitlines(keepends=True)[1:])
    running = await start_daemon(_settings(tmp_path, rules), clock=clock)
    await add_agent(running.app, "alice@staff.test", "Alice")
    await _write(running, 1)
    await _write(running, 2, "kim@customer.test")
    await relay_sink.wait_for(2)
    (notice,) = [r for r in relay_sink.received if "[#1]" in str(r.message["Subject"])]
    await _agent_answers(running, notice)  # ticket 1: the customer's turn
    await _set_status(running.app, 1, "closed")
    await _set_status(running.app, 2, "resolved")  # ticket 2: the agent's turn, and due

    clock.advance(timedelta(days=30))
    assert await sweep(running.app) == 0

    await _set_status(running.app, 2, "open")  # reopened: swept again, late as it is
    assert await sweep(running.app) == 2
    for rule in ("agent silent", "overdue"):
        assert await _fired(running.app, rule) == [2]
    assert await _fired(running.app, "due soon") == [], "its due date is long past"


# ---------------------------------------------------------------------------- two daemons


async def test_two_daemons_sweeping_at_the_same_moment_fire_once(
    start_daemon: StartDaemon, tmp_path: Path, clock: ManualClock
) -> None:
    settings = _settings(tmp_path, STATUS_FOR)
    first = await start_daemon(settings, clock=clock)
    second = await start_daemon(settings, clock=clock)
    for number in range(1, 9):
        await _write(first if number % 2 else second, number, f"c{number}@customer.test")
    clock.advance(timedelta(days=2))

    counts = await asyncio.gather(*(sweep(d.app) for d in (first, second, first, second)))

    assert sum(counts) == 8
    assert sorted(await _fired(first.app, "two days open")) == list(range(1, 9))
    assert len(await all_rows(first.app, RuleFiring)) == 8
    for number in range(1, 9):
        assert await _notes(first.app, number) == ["open for two days"]


# ---------------------------------------------------------------------------- conditions


IN_HOURS = """rules:
  - name: nudge in business hours
    trigger: status_for
    types: [ticket]
    when: {status: open, after: 1h}
    if: {now.business_hours: true}
    do: [set_priority: high]
"""


async def test_a_timed_rule_whose_condition_holds_fires(
    start_daemon: StartDaemon, tmp_path: Path
) -> None:
    clock = ManualClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))  # a Monday, 09:00 UTC
    running = await start_daemon(_settings(tmp_path, IN_HOURS), clock=clock)
    await _write(running)
    clock.advance(timedelta(hours=1))

    assert await sweep(running.app) == 1
    assert (await get_ticket(running.app, 1)).priority == "high"


async def test_a_timed_rule_fires_when_its_condition_comes_to_hold(
    start_daemon: StartDaemon, tmp_path: Path
) -> None:
    clock = ManualClock(datetime(2026, 1, 9, 16, 30, tzinfo=UTC))  # Friday 16:30 UTC
    running = await start_daemon(_settings(tmp_path, IN_HOURS), clock=clock)
    await _write(running)
    clock.advance(timedelta(hours=1))
    assert await sweep(running.app) == 0, "Friday 17:30: outside business hours"

    clock.advance(timedelta(days=2, hours=16))  # Monday 09:30
    await sweep(running.app)

    assert (await get_ticket(running.app, 1)).priority == "high"


# ---------------------------------------------------------------------------- load errors


@pytest.mark.parametrize(
    ("rule", "problem"),
    [
        ("trigger: status_for", "trigger status_for needs `when:`, e.g. {after: 2d}"),
        ("trigger: status_for\n    when: {status: open}", "status_for needs after"),
        (
            "trigger: status_for\n    when: {status: pending, after: 1d}",
            "'pending' is not a status",
        ),
        ("trigger: no_agent_reply\n    when: {after: 1d, before: 1d}", "unknown keys ['before']"),
        ("trigger: due\n    when: {after: 1d, before: 1d}", "give either before or after"),
        ("trigger: no_customer_reply\n    when: {after: true}", "when.after: True is not a dura"),
        ("trigger: due\n    when: {before: [1d]}", "when.before: ['1d'] is not a duration"),
        ("trigger: ticket_created\n    when: {after: 1d}", "`when:` is for the time-based"),
        (
            "trigger: no_agent_reply\n    when: {after: soon}",
            "when.after: 'soon' is not a duration",
        ),
    ],
)
def test_a_bad_when_is_refused_at_load_naming_file_and_rule(
    tmp_path: Path, rule: str, problem: str
) -> None:
    path = tmp_path / "rules"
    path.mkdir()
    (path / "timed.yaml").write_text(
        f"rules:\n  - name: late\n    types: [ticket]\n    {rule}\n    do: [set_priority: high]\n"
    )
    config = from_mapping({"rules": {"dir": str(path)}}, "test.toml", tmp_path)

    with pytest.raises(RuleError) as caught:
        load_rules(config, Renderer.from_config(config))

    assert (caught.value.file, caught.value.rule) == (str(path / "timed.yaml"), "late")
    assert problem in caught.value.problem
