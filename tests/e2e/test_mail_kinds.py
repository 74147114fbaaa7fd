"""Every kind of mail a person reads, provoked over SMTP through the daemon and received at
the relay: each has a text and an HTML part saying the same, greets a person by name or with
a plain "Hello,", and puts "-- " (RFC 3676 §4.3) before its signature."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape
from pathlib import Path

from sqlalchemy import select

from mailflow.automation.sweep import sweep
from mailflow.clock import ManualClock
from mailflow.db.models import Agent, OutboxMessage, Ticket
from mailflow.db.record import ActivityKind
from mailflow.tickets import activities
from tests.conftest import Received, RelaySink, Running, StartDaemon
from tests.support import (
    add_agent,
    add_usergroup,
    all_rows,
    answer_notice,
    build_message,
    rules_dir,
    smtp_send,
    wait_until,
)

AFTER_HOURS = """rules:
  - name: after hours
    trigger: ticket_created
    types: [ticket]
    do:
      - send: {template: customer/after_hours, to: customer}
"""
KINDS = {
    "customer/auto_reply",
    "customer/after_hours",
    "agent/new_ticket",
    "supervisor/new_ticket",
    "agent_reply",
    "agent/assigned",
    "agent/customer_replied",
    "agent/note",
    "command_error",
    "approval_request",
    "approval_decided",
    "resolution",
    "activity_reminder",
    "agent/delivery_failed",
}


def html_lines(html: str) -> str:
    """What a person reads in the HTML part, one space between words."""
    body = html.split("<body", 1)[1].split(">", 1)[1]
    blocks = re.sub(r"<(?:br|/?p|/?li|/?ul|/?div)\b[^>]*>", " ", body)
    return " ".join(unescape(re.sub(r"<[^>]+>", "", blocks)).split())


def assert_reads_well(mail: Received) -> None:
    text = mail.text.replace("\r\n", "\n")
    assert mail.html is not None, f"no HTML part: {text[:80]!r}"
    shown = html_lines(mail.html)
    for line in text.splitlines():
        words = " ".join(line.strip().removeprefix("- ").split())
        if words and line.strip() != "--":
            assert words in shown, f"{words!r} is not in the HTML part"
    assert not re.search(r"^--$", text, re.MULTILINE), "a signature starts with '-- '"
    assert not re.search(r"Hello [^\s,]+@", text), "greeted by address"


async def _arrived(relay_sink: RelaySink, address: str, count: int) -> bool:
    return len(relay_sink.to(address)) >= count


async def _outbox(running: Running) -> list[OutboxMessage]:
    return await all_rows(running.app, OutboxMessage)


async def _all_sent(running: Running, relay_sink: RelaySink) -> list[OutboxMessage]:
    """Wait until the relay has every mail queued so far."""
    rows = await _outbox(running)
    await relay_sink.wait_for(len(rows))
    return rows


async def test_every_kind_of_mail_has_both_parts_a_greeting_and_a_signature_separator(
    start_daemon: StartDaemon, relay_sink: RelaySink, clock: ManualClock, tmp_path: Path
) -> None:
    extra = rules_dir(tmp_path, {"after_hours.yaml": AFTER_HOURS})["rules"]["dir"]
    running = await start_daemon({"rules": {"extra_dir": extra}}, clock=clock)
    app = running.app
    await add_agent(app, "alice@staff.test", "Alice")
    await add_agent(app, "carol@staff.test", "Carol")
    await add_usergroup(app, "acme", {"mia@acme.test": False, "sam@acme.test": True})
    # Mia writes with no name: she is greeted "Hello,".
    first = build_message(sender="mia@acme.test", message_id="<m1@acme.test>")
    await smtp_send(running.port, first, mail_from="mia@acme.test")
    await relay_sink.wait_for(5)
    (notice,) = relay_sink.to("alice@staff.test")
    for mail in relay_sink.to("mia@acme.test"):
        assert mail.text.startswith("Hello,\r\n")

    await answer_notice(running, notice, "alice@staff.test", "#assign carol\n\nWe are on it.")
    await wait_until(lambda: _arrived(relay_sink, "mia@acme.test", 2))
    answer = relay_sink.to("mia@acme.test")[-1]
    await answer_notice(running, answer, "mia@acme.test", "It is still smoking.")
    await answer_notice(running, notice, "alice@staff.test", "#note\n\nCheck the stock.")
    await answer_notice(running, notice, "alice@staff.test", "#frobnicate")
    await answer_notice(
        running, notice, "alice@staff.test", "#approval boss@partner.test Refund\n\nTwice."
    )
    await _all_sent(running, relay_sink)
    (request,) = relay_sink.to("boss@partner.test")
    await answer_notice(running, request, "boss@partner.test", "APPROVE")
    await answer_notice(running, notice, "alice@staff.test", "#resolution notify\n\nReplaced.")
    async with app.db.transaction() as session:
        ticket = await session.get(Ticket, 1)
        alice = await session.scalar(select(Agent).where(Agent.email == "alice@staff.test"))
        assert ticket is not None
        assert alice is not None
        now = clock.now()
        session.add(
            activities.plan(
                ticket,
                kind=ActivityKind.CALL,
                title="Call Mia",
                owner=alice,
                at=now + timedelta(hours=2),
                now=now,
                remind_at=now + timedelta(hours=1),
            )
        )
    clock.advance(timedelta(hours=1))
    await sweep(app)
    await _all_sent(running, relay_sink)
    relay_sink.replies.append("550 5.1.1 no such user")  # the next mail, to Mia, bounces
    await answer_notice(running, notice, "alice@staff.test", "Are you still there?")

    async def told_of_the_bounce() -> bool:
        return any(r.purpose == "agent/delivery_failed" for r in await _outbox(running))

    await wait_until(told_of_the_bounce)
    rows = await _outbox(running)
    await relay_sink.wait_for(len(rows) - 1)  # all but the bounced one
    purposes = {row.message_id: row.purpose for row in rows}
    for mail in relay_sink.received:
        assert_reads_well(mail)
    kinds = {purposes[str(mail.message["Message-ID"]).strip("<>")] for mail in relay_sink.received}
    assert kinds == KINDS


async def test_a_named_customer_is_greeted_by_name_and_a_suggestion_too(
    start_daemon: StartDaemon, relay_sink: RelaySink
) -> None:
    running = await start_daemon()
    await smtp_send(running.port, build_message())
    await smtp_send(
        running.port, build_message(to="suggestion@example.com", subject="Dark mode please")
    )
    await relay_sink.wait_for(2)
    for mail in relay_sink.to("bob@customer.test"):
        assert mail.text.startswith("Hello Bob Customer,\r\n")
        assert_reads_well(mail)
