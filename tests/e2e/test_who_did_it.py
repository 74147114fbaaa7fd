"""Who did it: the agents' notices and the ticket's history name the real author and their
role (customer, in Cc, supervisor, approver, unverified sender, agent, rule), and what an
approver writes goes on the ticket for the agents, whatever it decides."""

from __future__ import annotations

from datetime import timedelta

from mailflow.clock import ManualClock
from mailflow.db.models import ActorKind, History, Message
from mailflow.db.record import Approval, ApprovalState
from tests.conftest import Received, RelaySink, Running, StartDaemon
from tests.support import (
    add_agent,
    add_usergroup,
    all_rows,
    answer_notice,
    build_message,
    get_ticket,
    queued,
    smtp_send,
)

ALICE = "alice@staff.test"
CUSTOMER = "bob@customer.test"
BOSS = "boss@corp.test"


async def _history(running: Running) -> list[tuple[str, str, str]]:
    return [(h.actor_kind.value, h.actor, h.action) for h in await all_rows(running.app, History)]


async def _last_to(relay_sink: RelaySink, address: str, count: int) -> Received:
    """The `count`th mail to `address`, once it has arrived."""
    while len(relay_sink.to(address)) < count:
        await relay_sink.wait_for(len(relay_sink.received) + 1)
    return relay_sink.to(address)[count - 1]


async def test_a_supervisors_answer_is_told_and_recorded_as_the_supervisors(
    start_daemon: StartDaemon, relay_sink: RelaySink
) -> None:
    running = await start_daemon()
    await add_agent(running.app, ALICE, "Alice")
    await add_usergroup(running.app, "acme", {"mia@acme.test": False, "sam@acme.test": True})
    first = build_message(sender="Mia Member <mia@acme.test>", message_id="<t1@acme.test>")
    assert (await smtp_send(running.port, first, mail_from="mia@acme.test"))[0] == 250
    await relay_sink.wait_for(3)
    (told,) = relay_sink.to("sam@acme.test")
    await answer_notice(running, told, "sam@acme.test", "#priority high\n\nThis stops our floor.")

    notice = await _last_to(relay_sink, ALICE, 2)
    assert notice.text.startswith("sam@acme.test (supervisor) replied on [#1]")
    assert "Mia" not in notice.text.splitlines()[0]
    history = await _history(running)
    assert ("supervisor", "sam@acme.test", "message_added") in history
    assert ("supervisor", "sam@acme.test", "priority_changed") in history
    assert ("customer", "mia@acme.test", "created") in history


async def test_someone_in_cc_answering_the_customers_mail_is_named_as_in_cc(
    start_daemon: StartDaemon, relay_sink: RelaySink
) -> None:
    running = await start_daemon()
    await add_agent(running.app, ALICE, "Alice")
    first = build_message(
        message_id="<t1@customer.test>", headers={"Cc": "Mia <mia@customer.test>"}
    )
    assert (await smtp_send(running.port, first))[0] == 250
    await relay_sink.wait_for(2)
    await answer_notice(running, relay_sink.to(ALICE)[0], ALICE, "Unplug it, please.")
    answer = await _last_to(relay_sink, CUSTOMER, 2)
    assert answer.rcpt_tos == [CUSTOMER, "mia@customer.test"]

    await answer_notice(running, answer, "mia@customer.test", "Unplugged; it still smokes.")

    assert (await get_ticket(running.app, 1)).status == "agent waiting"
    notice = await _last_to(relay_sink, ALICE, 2)
    assert notice.text.startswith("mia@customer.test (in Cc) replied on [#1]")
    assert "answer the customer, Bob Customer." in notice.text


async def _asked(
    start_daemon: StartDaemon, relay_sink: RelaySink, clock: ManualClock
) -> tuple[Running, Received]:
    """Ticket 1 from Bob; Alice answers him, then asks the boss to approve a refund. Returns
    the boss's request (its Reply-To is the approval's signed address)."""
    running = await start_daemon(clock=clock)
    await add_agent(running.app, ALICE, "Alice")
    assert (await smtp_send(running.port, build_message(message_id="<t1@customer.test>")))[0] == 250
    await relay_sink.wait_for(2)
    notice = relay_sink.to(ALICE)[0]
    await answer_notice(running, notice, ALICE, "We are looking into it.")
    await _last_to(relay_sink, CUSTOMER, 2)
    body = f"#approval {BOSS} Refund of 40 EUR\n\nWe are asking for a refund."
    await answer_notice(running, notice, ALICE, body)
    request = await _last_to(relay_sink, BOSS, 1)
    assert (await get_ticket(running.app, 1)).status == "customer waiting"
    return running, request


async def _approval(running: Running) -> Approval:
    (approval,) = await all_rows(running.app, Approval)
    return approval


async def test_a_stranger_on_the_approval_address_leaves_a_note_and_no_customer_answer(
    start_daemon: StartDaemon, relay_sink: RelaySink, clock: ManualClock
) -> None:
    running, request = await _asked(start_daemon, relay_sink, clock)
    before = len(await queued(running.app))
    await answer_notice(running, request, "mallory@evil.test", "APPROVE\nI am the boss now.")

    assert (await _approval(running)).state is ApprovalState.PENDING
    assert (await get_ticket(running.app, 1)).status == "customer waiting"
    note = (await all_rows(running.app, Message))[-1]
    assert (note.author_kind, note.public) == (ActorKind.UNVERIFIED, False)
    assert (await queued(running.app))[before:] == [[ALICE]]
    told = await _last_to(relay_sink, ALICE, 2)
    assert told.text.startswith('Mail on [#1] "Printer is on fire" from mallory@evil.test,')
    assert "Bob Customer" not in told.text.splitlines()[0]


async def test_an_approvers_question_goes_on_the_ticket_and_the_requester_is_told(
    start_daemon: StartDaemon, relay_sink: RelaySink, clock: ManualClock
) -> None:
    running, request = await _asked(start_daemon, relay_sink, clock)
    before = len(await queued(running.app))
    await answer_notice(running, request, BOSS, "Approve? What is this for?")

    assert (await _approval(running)).state is ApprovalState.PENDING
    assert (await get_ticket(running.app, 1)).status == "customer waiting"
    note = (await all_rows(running.app, Message))[-1]
    assert (note.author_kind, note.public, note.from_address) == (ActorKind.APPROVER, False, BOSS)
    assert note.text == "Approve? What is this for?"
    assert (await queued(running.app))[before:] == [[ALICE]]
    told = await _last_to(relay_sink, ALICE, 2)
    assert told.text.startswith(f"{BOSS} (approver) answered your approval request on [#1]")
    assert "decides nothing: it says neither APPROVE nor REJECT" in told.text
    assert "What is this for?" in told.text
    assert ("approver", BOSS, "approval_answered") in await _history(running)


async def test_an_approve_after_the_decision_goes_on_the_ticket_and_the_requester_is_told(
    start_daemon: StartDaemon, relay_sink: RelaySink, clock: ManualClock
) -> None:
    running, request = await _asked(start_daemon, relay_sink, clock)
    await answer_notice(running, request, BOSS, "REJECT\nToo expensive this month.")
    assert (await _approval(running)).state is ApprovalState.REJECTED
    decided = await _last_to(relay_sink, ALICE, 2)
    assert "is rejected" in decided.text

    clock.advance(timedelta(minutes=11))  # past the change window
    await answer_notice(running, request, BOSS, "APPROVE\nOn second thought, fine.")

    assert (await _approval(running)).state is ApprovalState.REJECTED
    notes = [m for m in await all_rows(running.app, Message) if m.author_kind is ActorKind.APPROVER]
    assert [n.public for n in notes] == [False, False], "both answers are on the ticket"
    told = await _last_to(relay_sink, ALICE, 3)
    assert "decides nothing: approval 1 is rejected already" in told.text
    history = await _history(running)
    assert ("approver", BOSS, "approval_decided") in history
    assert ("approver", BOSS, "approval_answered") in history
    assert not any(kind == "customer" and who == BOSS for kind, who, _ in history)
