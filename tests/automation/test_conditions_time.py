"""Conditions about time and about the ticket's own data: business hours in a time zone with
holidays and weekends, ticket ages with older_than / newer_than, custom fields, and the
customer's domain. Pure where it can be, and over SMTP where a customer sees the outcome."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mailflow.automation.conditions import Facts, parse_condition
from mailflow.automation.schema import RuleError, load_rules
from mailflow.clock import ManualClock
from mailflow.config import BusinessHoursConfig, from_mapping
from mailflow.db.models import Customer, Message, Ticket
from mailflow.render import Renderer
from mailflow.tickets.events import TicketCreated
from tests.conftest import RelaySink, Running, StartDaemon
from tests.support import all_rows, build_message, get_ticket, smtp_send

BERLIN = {
    "timezone": "Europe/Berlin",
    "days": ["mon", "tue", "wed", "thu", "fri"],
    "start": "09:00",
    "end": "17:00",
    "holidays": ["2026-01-06"],  # Epiphany, a Tuesday
}
HOURS = BusinessHoursConfig.model_validate(BERLIN)


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _ticket(now: datetime, **moments: datetime | None) -> Ticket:
    values: dict[str, Any] = {
        "created_at": now,
        "updated_at": now,
        "status_since": now,
        "last_customer_at": now,
        "last_agent_at": None,
        "due_at": None,
        **moments,
    }
    return Ticket(
        id=1,
        type="ticket",
        status="open",
        subject="Printer",
        priority="normal",
        customer=Customer(email="bob@customer.test", name="Bob"),
        fields={},
        **values,
    )


def _holds(
    condition: Any, now: datetime, hours: BusinessHoursConfig = HOURS, **moments: Any
) -> bool:
    facts = Facts(
        ticket=_ticket(now, **moments),
        event=TicketCreated(ticket_id=1, message_id=1),
        now=now,
        hours=hours,
    )
    return parse_condition(condition).holds(facts)


# ---------------------------------------------------------------------------- business hours


@pytest.mark.parametrize(
    ("moment", "inside", "why"),
    [
        ("2026-01-05T08:15", True, "Monday 09:15 in Berlin (08:15 UTC, before 9 in UTC)"),
        ("2026-01-05T07:59", False, "Monday 08:59 in Berlin"),
        ("2026-01-05T15:59", True, "Monday 16:59 in Berlin"),
        ("2026-01-05T16:00", False, "Monday 17:00 in Berlin: the end is not inside"),
        ("2026-01-05T16:30", False, "Monday 17:30 in Berlin (16:30 UTC, inside in UTC)"),
        ("2026-07-06T07:30", True, "summer time: Monday 09:30 CEST is 07:30 UTC"),
        ("2026-07-06T15:30", False, "summer time: Monday 17:30 CEST"),
        ("2026-01-06T10:00", False, "Tuesday, but a holiday"),
        ("2026-01-07T10:00", True, "the Wednesday after"),
        ("2026-01-10T10:00", False, "Saturday"),
        ("2026-01-11T10:00", False, "Sunday"),
        ("2026-01-09T23:30", False, "Friday in UTC, Saturday 00:30 in Berlin"),
    ],
)
def test_now_business_hours_in_berlin(moment: str, inside: bool, why: str) -> None:
    now = _at(moment)
    assert _holds({"now.business_hours": True}, now) is inside, why
    assert _holds({"now.business_hours": False}, now) is not inside, why


@pytest.mark.parametrize(
    ("moment", "day"),
    [("2026-01-10T22:59", "sat"), ("2026-01-10T23:00", "sun"), ("2026-01-05T00:30", "mon")],
)
def test_now_weekday_is_the_local_day(moment: str, day: str) -> None:
    assert _holds({"now.weekday": day}, _at(moment))
    assert _holds({"now.weekday": day.upper()}, _at(moment)), "text compares ignoring case"


def test_a_holiday_is_a_date_in_the_local_time_zone() -> None:
    all_day = BusinessHoursConfig.model_validate(
        {**BERLIN, "start": "00:00", "end": "23:59", "holidays": ["2026-01-07"]}
    )
    # 23:30 UTC on the 6th is 00:30 on the 7th, the holiday, in Berlin; and 23:30 UTC on the
    # 7th is already the 8th there.
    assert not _holds({"now.business_hours": True}, _at("2026-01-06T23:30"), all_day)
    assert _holds({"now.business_hours": True}, _at("2026-01-07T23:30"), all_day)
    assert _holds({"now.business_hours": True}, _at("2026-01-06T22:30"), all_day)


def test_opened_in_business_hours_looks_at_the_creation_time() -> None:
    now = _at("2026-01-05T10:00")  # Monday 11:00 in Berlin
    assert _holds({"ticket.opened_in_business_hours": True}, now)
    saturday = _at("2026-01-03T10:00")
    assert _holds({"ticket.opened_in_business_hours": False}, now, created_at=saturday)
    assert _holds({"now.business_hours": True}, now, created_at=saturday)


TWO_REPLIES = """rules:
  - name: after-hours auto-reply
    trigger: ticket_created
    if: {now.business_hours: false}
    do:
      - send: {template: customer/after_hours, to: customer}
      - stop: true
  - name: auto-reply
    trigger: ticket_created
    do: [send: {template: customer/auto_reply, to: customer}]
"""


def _workflow(tmp_path: Path, rules: str, templates: dict[str, str]) -> dict[str, Any]:
    """Daemon settings: this rules file, these templates over the shipped ones, Berlin hours."""
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "rules.yaml").write_text(rules)
    (tmp_path / "templates").mkdir()
    for name, text in templates.items():
        path = tmp_path / "templates" / f"{name}.txt.j2"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return {
        "rules": {"dir": str(tmp_path / "rules")},
        "templates": {"dir": str(tmp_path / "templates")},
        "business_hours": BERLIN,
    }


async def _write(running: Running, sender: str, name: str = "") -> None:
    message = build_message(sender=f"{name} <{sender}>" if name else sender, subject="Help")
    assert (await smtp_send(running.port, message, mail_from=sender))[0] == 250


async def test_outside_business_hours_the_customer_gets_the_after_hours_reply(
    start_daemon: StartDaemon, relay_sink: RelaySink, tmp_path: Path
) -> None:
    # Both override the shipped ones, also the shipped types/ticket/customer/auto_reply: the
    # configured directory wins over everything shipped.
    templates = {
        "customer/auto_reply": "IN HOURS {{ tag }}: an agent answers soon.",
        "customer/after_hours": (
            "AFTER HOURS {{ tag }}: back {{ business_hours.start }} {{ business_hours.timezone }}."
        ),
    }
    clock = ManualClock(_at("2026-01-05T08:15"))  # Monday 09:15 in Berlin
    running = await start_daemon(_workflow(tmp_path, TWO_REPLIES, templates), clock=clock)
    moments = [  # (advance to, in hours?)
        ("2026-01-05T08:15", True),
        ("2026-01-05T16:30", False),  # 17:30 in Berlin, still in hours in UTC
        ("2026-01-06T10:00", False),  # the holiday
        ("2026-01-07T10:00", True),
        ("2026-01-10T10:00", False),  # Saturday
    ]
    for number, (moment, _) in enumerate(moments, start=1):
        clock.advance(_at(moment) - clock.now())
        await _write(running, f"c{number}@customer.test")

    received = await relay_sink.wait_for(len(moments))
    for number, (moment, inside) in enumerate(moments, start=1):
        (mail,) = [r for r in received if r.rcpt_tos == [f"c{number}@customer.test"]]
        expected = f"IN HOURS [#{number}]" if inside else f"AFTER HOURS [#{number}]"
        assert mail.text.startswith(expected), moment
    assert "back 09:00 Europe/Berlin." in relay_sink.to("c2@customer.test")[0].text


async def test_the_shipped_after_hours_template_names_the_hours(
    start_daemon: StartDaemon, relay_sink: RelaySink, tmp_path: Path
) -> None:
    clock = ManualClock(_at("2026-01-10T10:00"))  # Saturday
    running = await start_daemon(_workflow(tmp_path, TWO_REPLIES, {}), clock=clock)

    await _write(running, "kim@customer.test")

    (mail,) = await relay_sink.wait_for(1)
    assert "Our team is away at the moment" in mail.text
    hours = "09:00–17:00, Monday, Tuesday, Wednesday, Thursday, and Friday, Central European Time"
    assert hours in mail.text


VIP = """rules:
  - name: VIP auto-reply
    trigger: ticket_created
    if: {customer.domain: {in: [VIP.test, bigclient.test]}}
    do:
      - send: {template: customer/vip_reply, to: customer}
      - set_priority: high
      - stop: true
  - name: auto-reply
    trigger: ticket_created
    do: [send: {template: customer/auto_reply, to: customer}]
"""


async def test_a_vip_domain_gets_its_own_auto_reply_and_no_other(
    start_daemon: StartDaemon, relay_sink: RelaySink, tmp_path: Path
) -> None:
    templates = {
        "customer/vip_reply": "Dear valued customer, {{ tag }} is with our second line.",
        "customer/auto_reply": "Thanks, {{ tag }} is open.",
    }
    running = await start_daemon(_workflow(tmp_path, VIP, templates))

    await _write(running, "Zoe@Vip.TEST", "Zoe")
    await _write(running, "kim@sub.vip.test")  # another domain
    await _write(running, "ann@bigclient.test")

    await relay_sink.wait_for(3)
    (zoe,) = relay_sink.to("zoe@vip.test")
    assert zoe.text.startswith("Dear valued customer, [#1]")
    (kim,) = relay_sink.to("kim@sub.vip.test")
    assert kim.text.startswith("Thanks, [#2] is open.")
    (ann,) = relay_sink.to("ann@bigclient.test")
    assert ann.text.startswith("Dear valued customer, [#3]")
    priorities = [t.priority for t in await all_rows(running.app, Ticket)]
    assert priorities == ["high", "normal", "high"]


# ---------------------------------------------------------------------------- ages

NOW = _at("2026-03-02T12:00")


@pytest.mark.parametrize(
    ("condition", "moments", "holds"),
    [
        ({"ticket.age": {"older_than": "2d"}}, {"created_at": NOW - timedelta(days=3)}, True),
        ({"ticket.age": {"older_than": "2d"}}, {"created_at": NOW - timedelta(days=2)}, False),
        ({"ticket.age": {"newer_than": "2d"}}, {"created_at": NOW - timedelta(days=2)}, True),
        ({"ticket.age": {"newer_than": "90m"}}, {"created_at": NOW - timedelta(hours=2)}, False),
        ({"ticket.idle": {"older_than": "4h"}}, {"updated_at": NOW - timedelta(hours=5)}, True),
        (
            {"ticket.in_status_for": {"older_than": "1d", "newer_than": "3d"}},
            {"status_since": NOW - timedelta(days=2)},
            True,
        ),
        (
            {"ticket.customer_silent_for": {"older_than": "1h"}},
            {"last_customer_at": NOW - timedelta(minutes=59)},
            False,
        ),
        ({"ticket.agent_silent_for": {"older_than": "1s"}}, {"last_agent_at": None}, False),
        ({"ticket.agent_silent_for": {"newer_than": "1d"}}, {"last_agent_at": None}, False),
        ({"ticket.overdue_by": {"older_than": "0s"}}, {"due_at": NOW - timedelta(hours=1)}, True),
        ({"ticket.overdue_by": {"older_than": "0s"}}, {"due_at": NOW + timedelta(hours=1)}, False),
        ({"ticket.overdue_by": {"newer_than": "1h"}}, {"due_at": None}, False),
        ({"ticket.age": {"older_than": 3600}}, {"created_at": NOW - timedelta(hours=2)}, True),
    ],
)
def test_ages_compare_with_older_than_and_newer_than(
    condition: dict[str, Any], moments: dict[str, Any], holds: bool
) -> None:
    assert _holds(condition, NOW, **moments) is holds


def test_an_age_without_a_clock_is_neither_older_nor_newer() -> None:
    facts = Facts(
        ticket=_ticket(NOW),
        event=TicketCreated(ticket_id=1, message_id=1),
    )
    assert not parse_condition({"ticket.age": {"older_than": "0s"}}).holds(facts)
    assert not parse_condition({"ticket.age": {"newer_than": "100d"}}).holds(facts)


AGES = """rules:
  - name: stale tickets are escalated
    trigger: customer_replied
    if: {ticket.age: {older_than: 2d}}
    do: [set_priority: urgent]
  - name: a quick follow-up is calm
    trigger: customer_replied
    if: {ticket.age: {newer_than: 1h}}
    do: [set_priority: low]
"""


async def test_a_customer_reply_escalates_only_an_old_ticket(
    start_daemon: StartDaemon, tmp_path: Path, clock: ManualClock
) -> None:
    running = await start_daemon(_workflow(tmp_path, AGES, {}), clock=clock)
    first = build_message(message_id="<t1@customer.test>")
    assert (await smtp_send(running.port, first))[0] == 250
    seen = []
    for step, after in enumerate(
        [timedelta(minutes=30), timedelta(days=1), timedelta(days=1, hours=1)]
    ):
        clock.advance(after)
        reply = build_message(
            subject="Re: [#1] Printer",
            body=f"Reply {step}",
            message_id=f"<r{step}@customer.test>",
            in_reply_to="<t1@customer.test>",
        )
        assert (await smtp_send(running.port, reply))[0] == 250
        seen.append((await get_ticket(running.app, 1)).priority)
    # 30 minutes old: low; a day and a half: unchanged; past two days: urgent.
    assert seen == ["low", "low", "urgent"]


# ---------------------------------------------------------------------------- custom fields

FIELD_RULES = """rules:
  - name: outages are severity 1
    trigger: ticket_created
    if: {message.subject: {matches: '\\b(down|outage)\\b'}}
    do: [set_field: {name: severity, value: s1}]
  - name: severity 1 answers are urgent
    trigger: customer_replied
    if: {ticket.fields.severity: S1}
    do: [set_priority: urgent]
  - name: no severity, no hurry
    trigger: customer_replied
    if: {ticket.fields.severity: {equals: null}}
    do: [set_priority: low]
"""


async def test_conditions_on_custom_ticket_fields(
    start_daemon: StartDaemon, tmp_path: Path
) -> None:
    settings = _workflow(tmp_path, FIELD_RULES, {})
    settings["ticket_fields"] = [{"name": "severity", "type": "choice", "choices": ["s1", "s2"]}]
    running = await start_daemon(settings)
    for number, subject in ((1, "The site is down"), (2, "A question about downloads")):
        message = build_message(subject=subject, message_id=f"<t{number}@customer.test>")
        assert (await smtp_send(running.port, message))[0] == 250
        reply = build_message(
            subject=f"Re: [#{number}]",
            body="Any news?",
            message_id=f"<r{number}@customer.test>",
            in_reply_to=f"<t{number}@customer.test>",
        )
        assert (await smtp_send(running.port, reply))[0] == 250

    down, downloads = await all_rows(running.app, Ticket)
    assert (down.fields, down.priority) == ({"severity": "s1"}, "urgent")
    assert (downloads.fields, downloads.priority) == ({}, "low")
    assert len(await all_rows(running.app, Message)) == 4


@pytest.mark.parametrize(
    ("operand", "problem"),
    [
        ("[2d]", "ticket.age: older_than expects a duration such as 90m, 4h or 2d, got ['2d']"),
        ("true", "ticket.age: older_than expects a duration such as 90m, 4h or 2d, got True"),
        ("soon", "ticket.age: older_than expects a duration"),
    ],
)
def test_an_age_compared_with_no_duration_is_refused_at_load(
    tmp_path: Path, operand: str, problem: str
) -> None:
    path = tmp_path / "rules"
    path.mkdir()
    (path / "ages.yaml").write_text(
        "rules:\n  - name: old\n    trigger: customer_replied\n"
        f"    if: {{ticket.age: {{older_than: {operand}}}}}\n    do: [set_priority: high]\n"
    )
    config = from_mapping({"rules": {"dir": str(path)}}, "test.toml", tmp_path)

    with pytest.raises(RuleError) as caught:
        load_rules(config, Renderer.from_config(config))

    assert (caught.value.file, caught.value.rule) == (str(path / "ages.yaml"), "old")
    assert problem in caught.value.problem
