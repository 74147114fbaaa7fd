"""A stranger never changes a ticket. Mail that claims an agent's or a participant's address
without proof, or replays a signed address given to someone else, or comes from someone who
takes no part in the ticket, is kept as a note flagged as from an unverified sender: the
agents are told (never the address it claims), and it moves no status, joins no Cc, and
reaches no customer. The same holds for an agent's own mail that looks automatic."""

from __future__ import annotations

from email.message import EmailMessage

from mailflow.db.models import ActorKind, History, Message, Participant
from tests.conftest import Received, RelaySink, Running, StartDaemon
from tests.support import (
    add_agent,
    all_rows,
    answer_notice,
    build_message,
    get_ticket,
    queued,
    reply_address,
    smtp_send,
)

ALICE = "alice@staff.test"
CAROL = "carol@staff.test"
CUSTOMER = "bob@customer.test"
STRANGER = "eve@evil.test"


async def _answered(
    start_daemon: StartDaemon, relay_sink: RelaySink, **settings: object
) -> Running:
    """Agents Alice and Carol; ticket 1 from Bob, which Alice has answered (so it is hers,
    and waits for the customer)."""
    running = await start_daemon(settings)
    await add_agent(running.app, ALICE, "Alice")
    await add_agent(running.app, CAROL, "Carol")
    assert (await smtp_send(running.port, build_message(message_id="<t1@customer.test>")))[0] == 250
    await relay_sink.wait_for(3)
    await answer_notice(running, _notice(relay_sink, ALICE), ALICE, "Unplug it, please.")
    await relay_sink.wait_for(4)
    return running


def _notice(relay_sink: RelaySink, address: str) -> Received:
    return relay_sink.to(address)[0]


async def _state(running: Running) -> tuple[str, str, int | None]:
    ticket = await get_ticket(running.app, 1)
    return ticket.status, ticket.priority, ticket.assignee_id


async def _send(running: Running, message: EmailMessage, mail_from: str) -> None:
    assert (await smtp_send(running.port, message, mail_from=mail_from))[0] == 250


async def _unverified(running: Running) -> list[tuple[str, str]]:
    return [
        (h.details["sender"], h.details["reason"])
        for h in await all_rows(running.app, History)
        if h.action == "unverified_sender"
    ]


async def test_forgeries_with_the_assignees_from_change_nothing_and_are_told_to_the_others(
    start_daemon: StartDaemon, relay_sink: RelaySink
) -> None:
    running = await _answered(start_daemon, relay_sink)
    before = await _state(running)
    alices_notice = _notice(relay_sink, ALICE)
    carols_notice = _notice(relay_sink, CAROL)
    forged = "Alice <alice@staff.test>"
    forgeries = [
        build_message(sender=forged, subject="Re: [#1] Printer", body="#status closed"),
        build_message(sender=forged, to="support+1@example.com", body="#assign carol"),
        build_message(
            sender=forged, body="#priority urgent", in_reply_to=alices_notice.message["Message-ID"]
        ),
        build_message(
            sender=forged,
            body="Refund approved: send your card number.",
            in_reply_to="<t1@customer.test>",
        ),
        build_message(sender=forged, subject="Re: [#1]", body="#cc eve@evil.test\n\nSee Eve."),
        build_message(
            sender=forged,
            subject="Re: [#1]",
            body="#status resolved",
            headers={"Authentication-Results": "mx.evil.test; dkim=pass header.d=staff.test"},
        ),
        build_message(sender=forged, to=reply_address(carols_notice), body="#assign nobody"),
    ]
    for message in forgeries:
        await _send(running, message, ALICE)

    assert await _state(running) == before == ("customer waiting", "normal", 1)
    notes = (await all_rows(running.app, Message))[-len(forgeries) :]
    assert {(m.author_kind, m.public, m.from_address) for m in notes} == {
        (ActorKind.UNVERIFIED, False, ALICE)
    }
    assert len(await _unverified(running)) == len(forgeries)
    assert STRANGER not in {p.address for p in await all_rows(running.app, Participant)}
    assert (await queued(running.app))[4:] == [[CAROL]] * len(forgeries), (
        "Carol hears of each; Alice, whose address they claim, and the customer hear nothing"
    )
    told = (await relay_sink.wait_for(4 + len(forgeries)))[-1]
    assert f"from Alice <{ALICE}>, who could not be verified" in told.text


async def test_a_stranger_replaying_the_customers_signed_address_joins_no_cc(
    start_daemon: StartDaemon, relay_sink: RelaySink
) -> None:
    """Eve got hold of Bob's mail: her answer on its signed address is a note, and the next
    agent reply still goes to Bob alone."""
    running = await _answered(start_daemon, relay_sink)
    auto_reply = _notice(relay_sink, CUSTOMER)
    await answer_notice(running, auto_reply, STRANGER, "Send the refund to my account instead.")

    assert (await _state(running))[0] == "customer waiting"
    note = (await all_rows(running.app, Message))[-1]
    assert (note.author_kind, note.public) == (ActorKind.UNVERIFIED, False)
    assert await _unverified(running) == [
        (STRANGER, f"{STRANGER} wrote to the signed reply address of {CUSTOMER}")
    ]
    assert (await queued(running.app))[4:] == [[ALICE]], "the assignee hears of it"
    told = (await relay_sink.wait_for(5))[-1]
    assert f"from {STRANGER}, who could not be verified" in told.text

    await answer_notice(running, _notice(relay_sink, ALICE), ALICE, "Which account, Bob?")
    answer = (await relay_sink.wait_for(6))[-1]
    assert answer.rcpt_tos == [CUSTOMER]
    assert answer.message["Cc"] is None


async def test_a_stranger_quoting_the_tickets_message_ids_takes_no_part(
    start_daemon: StartDaemon, relay_sink: RelaySink
) -> None:
    running = await _answered(start_daemon, relay_sink)
    message = build_message(
        sender=f"Eve <{STRANGER}>",
        subject="Re: Printer is on fire",
        body="I am Bob's manager; close this.",
        in_reply_to="<t1@customer.test>",
    )
    await _send(running, message, STRANGER)

    assert (await _state(running))[0] == "customer waiting"
    assert await _unverified(running) == [(STRANGER, f"{STRANGER} takes no part in ticket 1")]
    assert STRANGER not in {p.address for p in await all_rows(running.app, Participant)}


async def test_a_participants_address_is_taken_on_a_subject_tag_only_with_our_mtas_word(
    start_daemon: StartDaemon, relay_sink: RelaySink
) -> None:
    """Bob's From and [#1] in the subject are what anyone can type; with an aligned DKIM
    pass from our own MTA they are Bob's reply."""
    running = await _answered(start_daemon, relay_sink, identity={"trusted_authserv_ids": ["mx"]})
    typed = build_message(subject="[#1] one more thing", body="It smells of smoke, too.")
    await _send(running, typed, CUSTOMER)
    assert (await _state(running))[0] == "customer waiting"
    assert await _unverified(running) == [
        (CUSTOMER, f"{CUSTOMER} named ticket 1 by subject tag only, which anyone can write")
    ]

    signed = build_message(
        subject="[#1] one more thing",
        body="And it beeps.",
        headers={"Authentication-Results": "mx; dkim=pass header.d=customer.test"},
    )
    await _send(running, signed, CUSTOMER)
    assert (await _state(running))[0] == "agent waiting"
    last = (await all_rows(running.app, Message))[-1]
    assert (last.author_kind, last.public) == (ActorKind.CUSTOMER, True)


async def test_an_agents_own_address_writing_to_support_is_not_told_of_it(
    start_daemon: StartDaemon, relay_sink: RelaySink
) -> None:
    """Alice writes to support@ from her own address, unauthenticated (or her responder
    does): the ticket opens, Carol is told, Alice gets neither the auto-reply nor the
    notice, which her responder could answer again."""
    running = await _answered(start_daemon, relay_sink)
    message = build_message(sender=f"Alice <{ALICE}>", subject="New laptop for Dan")
    await _send(running, message, ALICE)

    assert (await queued(running.app))[4:] == [[CAROL]]
    told = (await relay_sink.wait_for(5))[-1]
    assert "[#2]" in str(told.message["Subject"])
    actions = [h.action for h in await all_rows(running.app, History) if h.ticket_id == 2]
    assert "agent_identity_refused" in actions


async def test_an_agents_automatic_answer_on_the_signed_address_is_never_relayed(
    start_daemon: StartDaemon, relay_sink: RelaySink
) -> None:
    """From Alice's own address to her signed address, but marked as a machine's (a filter
    that forwards, a list): kept between the agents, sent to no customer, acts on nothing."""
    running = await _answered(start_daemon, relay_sink)
    notice = _notice(relay_sink, ALICE)
    for n, header in enumerate(({"Auto-Submitted": "auto-generated"}, {"Precedence": "bulk"})):
        message = build_message(
            message_id=f"<auto{n}@staff.test>",
            sender=f"Alice <{ALICE}>",
            to=reply_address(notice),
            subject="Re: " + str(notice.message["Subject"]),
            body="#status closed\n\nThis mailbox is not monitored.",
            in_reply_to=notice.message["Message-ID"],
            headers=header,
        )
        await _send(running, message, ALICE)

    assert await _state(running) == ("customer waiting", "normal", 1)
    kept = (await all_rows(running.app, Message))[-2:]
    assert {(m.author_kind, m.public) for m in kept} == {(ActorKind.AGENT, False)}
    assert (await queued(running.app))[4:] == [], "no customer, no agent hears of it"
