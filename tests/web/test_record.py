"""The rest of a ticket's record: a resolution told and published, time spent and billed,
activities with reminders at the right moment and only once, attachments, the history."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import select

from mailflow.automation.sweep import sweep
from mailflow.clock import ManualClock
from mailflow.db.models import Agent, History, Ticket
from mailflow.db.record import Activity, ActivityKind, TimeEntry
from mailflow.tickets import activities
from tests.conftest import Received, RelaySink, Running, StartDaemon
from tests.support import (
    add_agent,
    all_rows,
    answer_notice,
    build_message,
    get_ticket,
    mailflow_cli,
    smtp_send,
)


async def _ticket_with_notice(
    start_daemon: StartDaemon, relay_sink: RelaySink, clock: ManualClock | None = None
) -> tuple[Running, Received]:
    running = await start_daemon(clock=clock)
    await add_agent(running.app, "alice@staff.test", "Alice")
    await smtp_send(running.port, build_message(subject="Printer <on> fire"))
    await relay_sink.wait_for(2)
    (notice,) = relay_sink.to("alice@staff.test")
    return running, notice


async def _answer(running: Running, notice: Received, body: str) -> None:
    to = str(notice.message["Reply-To"].addresses[0].addr_spec)
    message = build_message(sender="alice@staff.test", to=to, subject="Re: x", body=body)
    assert (await smtp_send(running.port, message, mail_from="alice@staff.test"))[0] == 250


async def test_a_resolution_is_told_and_published_escaped(
    start_daemon: StartDaemon, relay_sink: RelaySink, http: aiohttp.ClientSession
) -> None:
    running, notice = await _ticket_with_notice(start_daemon, relay_sink)
    text = "Turned it off and on.\n<script>alert(1)</script>"
    await _answer(running, notice, f"#resolution notify publish\n\n{text}")
    await relay_sink.wait_for(3)
    told = relay_sink.to("bob@customer.test")[-1]
    assert "is resolved" in told.text
    assert "Turned it off and on." in told.text
    assert len(relay_sink.to("bob@customer.test")) == 2, "no separate copy of the agent's mail"
    base = running.app.config.web.base_url
    async with http.get(f"{base}/kb/") as response:
        index = await response.text()
    assert 'href="/kb/1-printer-on-fire"' in index
    assert "Printer &lt;on&gt; fire" in index
    async with http.get(f"{base}/kb/1-printer-on-fire") as response:
        article = await response.text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in article
    assert "<script>" not in article
    # Setting it again edits the one resolution.
    await _answer(running, notice, "#resolution\n\nA better answer.")
    async with http.get(f"{base}/kb/1-printer-on-fire") as response:
        assert "A better answer." in await response.text()
    actions = [h.action for h in await all_rows(running.app, History)]
    assert (actions.count("resolution_set"), actions.count("resolution_edited")) == (1, 1)
    async with http.get(f"{base}/kb/2-unknown") as response:
        assert response.status == 404


async def test_time_spent_by_email_and_the_report(
    start_daemon: StartDaemon, relay_sink: RelaySink, tmp_path: Path, database_url: str
) -> None:
    running, notice = await _ticket_with_notice(start_daemon, relay_sink)
    await _answer(running, notice, "#time 45m billable checked the logs\n\nOn it.")
    await _answer(running, notice, "#time 1h30m\n\nStill on it.")
    entries = await all_rows(running.app, TimeEntry)
    assert [(e.minutes, e.billable, e.note) for e in entries] == [
        (45, True, "checked the logs"),
        (90, False, ""),
    ]
    config = tmp_path / "cli.toml"
    config.write_text(f'[database]\nurl = "{database_url}"\n')
    today = datetime.now(UTC).date()
    args = [
        "report",
        "time",
        "--from",
        str(today - timedelta(days=1)),
        "--to",
        str(today + timedelta(days=1)),
    ]
    by_agent = await mailflow_cli(config, *args, "--by", "agent", "--csv")
    assert list(csv.DictReader(io.StringIO(by_agent.output))) == [
        {"by": "alice@staff.test", "minutes": "135", "billable_minutes": "45", "hours": "2.25"}
    ]
    by_customer = await mailflow_cli(config, *args, "--by", "customer")
    assert "bob@customer.test" in by_customer.output
    shown = await mailflow_cli(config, "ticket", "show", "1")
    assert "Time spent: 135 minutes, 45 of them billable" in shown.output


async def test_reminders_come_at_their_time_and_once(
    start_daemon: StartDaemon, relay_sink: RelaySink, clock: ManualClock
) -> None:
    running, _ = await _ticket_with_notice(start_daemon, relay_sink, clock)
    now = clock.now()
    async with running.app.db.transaction() as session:
        ticket = await session.get(Ticket, 1)
        alice = await session.scalar(select(Agent).where(Agent.email == "alice@staff.test"))
        assert ticket is not None
        assert alice is not None
        with pytest.raises(activities.ActivityProblem, match="still to come"):
            activities.plan(
                ticket,
                kind=ActivityKind.CALL,
                title="Too late",
                owner=alice,
                at=now - timedelta(hours=1),
                now=now,
                remind_at=now + timedelta(1),
            )
        session.add(
            activities.plan(
                ticket,
                kind=ActivityKind.CALL,
                title="Call Bob back",
                at=now + timedelta(hours=2),
                owner=alice,
                now=now,
                remind_at=now + timedelta(hours=1),
            )
        )
    before = len(relay_sink.received)
    clock.advance(timedelta(minutes=59))
    await sweep(running.app)
    assert len(relay_sink.received) == before, "not yet"
    clock.advance(timedelta(minutes=1))
    await sweep(running.app)
    await relay_sink.wait_for(before + 1)
    reminder = relay_sink.received[-1]
    assert reminder.rcpt_tos == ["alice@staff.test"]
    assert 'call "Call Bob back"' in reminder.text
    await running.daemon.stop()
    again = await start_daemon(clock=clock)
    clock.advance(timedelta(hours=1))
    assert await sweep(again.app) == 0, "not twice, also after a restart"
    (activity,) = await all_rows(again.app, Activity)
    assert activity.reminded_at is not None


async def test_attachments_are_listed_and_exported(
    start_daemon: StartDaemon, tmp_path: Path, database_url: str
) -> None:
    running = await start_daemon()
    message = build_message()
    message.add_attachment(b"log line 1\n", maintype="text", subtype="plain", filename="app.log")
    await smtp_send(running.port, message)
    config = tmp_path / "cli.toml"
    config.write_text(f'[database]\nurl = "{database_url}"\n')
    listed = (await mailflow_cli(config, "attachment", "list", "1", "--format", "csv")).output
    (row,) = list(csv.DictReader(io.StringIO(listed)))
    assert (row["filename"], row["content_type"], row["size"]) == ("app.log", "text/plain", "11")
    target = tmp_path / "out.log"
    got = await mailflow_cli(config, "attachment", "get", row["id"], "-o", str(target))
    assert got.exit_code == 0, got.output
    assert target.read_bytes() == b"log line 1\n"


async def test_the_history_of_a_scripted_ticket(
    start_daemon: StartDaemon, relay_sink: RelaySink, clock: ManualClock
) -> None:
    running, notice = await _ticket_with_notice(start_daemon, relay_sink, clock)
    await _answer(running, notice, "#priority high\n#time 10m\n\nLooking into it.")
    auto_reply = relay_sink.to("bob@customer.test")[0]  # the customer answers it
    await answer_notice(running, auto_reply, "bob@customer.test", "Thanks!")
    await _answer(running, notice, "#status resolved\n#resolution\n\nFixed the fuser.")
    history = [
        (h.actor_kind.value, h.actor, h.action) for h in await all_rows(running.app, History)
    ]
    expected_in_order = [
        ("customer", "bob@customer.test", "created"),
        ("automation", "rule: auto-reply to a new ticket", "mail_queued"),
        ("agent", "alice@staff.test", "message_added"),
        ("automation", "rule: the first agent to answer takes the ticket", "assigned"),
        ("automation", "rule: an agent's public reply waits for the customer", "status_changed"),
        ("agent", "alice@staff.test", "priority_changed"),
        ("agent", "alice@staff.test", "time_spent"),
        ("customer", "bob@customer.test", "message_added"),
        ("automation", "rule: the customer's answer waits for the agent", "status_changed"),
        ("agent", "alice@staff.test", "status_changed"),  # the commands, in their order
        ("agent", "alice@staff.test", "resolution_set"),
    ]
    position = -1
    for entry in expected_in_order:  # each one, after the one before it
        position = history.index(entry, position + 1)
    assert (await get_ticket(running.app, 1)).status == "resolved"
