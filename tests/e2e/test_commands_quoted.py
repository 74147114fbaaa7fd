"""Commands take only what the agent wrote now. An agent answers the internal notice with
#cc, #note, #approval and #resolution, quoting it the way Gmail, Outlook (both styles), Apple
Mail and Thunderbird do, in English, French, Polish and German, as plain text and as the HTML
those clients send; over SMTP into the daemon. What the customer, the Cc, the other agent, the
approver and the help centre receive holds the agent's new words and nothing of the quote."""

from __future__ import annotations

from email.message import EmailMessage
from html import unescape

import aiohttp
import pytest
from sqlalchemy import update

from mailflow.db.models import OutboxMessage
from mailflow.db.people import AgentRole, Usergroup
from tests.conftest import Received, RelaySink, Running, StartDaemon
from tests.mail.clients import CLIENTS, LANGUAGES, Client, Quoted
from tests.support import (
    add_agent,
    add_usergroup,
    all_rows,
    build_message,
    reply_address,
    smtp_send,
    wait_until,
)

CUSTOMER = "bob@customer.test"
PHONE, POSTAL = "+44 20 7946 0000", "1 Acme Road, Leeds LS1 4AP"
# What the quoted notice holds that must reach nobody but agents: the customer's address,
# their usergroup's phone and postal address, and the notice's own words.
SECRETS = (CUSTOMER, PHONE, POSTAL, "Reply to this email to answer the customer")

TEXTS = {
    "en": {
        "cc": "Dave from our partner joins us here.\n\nWe will call you tomorrow at 9.",
        "note": "Carol, please check the fuser stock.\n\nThe customer is in a hurry.",
        "approval": "The customer was charged twice.\n\nPlease approve the refund.",
        "resolution": "The fuser was replaced under warranty.\n\nSwitch it off before opening.",
    },
    "fr": {
        "cc": "Dave, notre partenaire, nous rejoint ici.\n\nNous vous appellerons demain à 9 h.",
        "note": "Carol, vérifie le stock d'unités de fusion.\n\nLe client est pressé.",
        "approval": "Le client a été débité deux fois.\n\nMerci d'approuver le remboursement.",
        "resolution": "L'unité de fusion a été remplacée.\n\nÉteignez l'imprimante avant.",
    },
    "pl": {
        "cc": "Dave od naszego partnera dołącza do rozmowy.\n\nZadzwonimy jutro o 9.",
        "note": "Carol, sprawdź zapas utrwalaczy.\n\nKlientowi się spieszy.",
        "approval": "Klient został obciążony dwa razy.\n\nProszę zatwierdzić zwrot.",
        "resolution": "Utrwalacz wymieniono na gwarancji.\n\nWyłącz drukarkę przed otwarciem.",
    },
    "de": {
        "cc": "Dave von unserem Partner ist jetzt dabei.\n\nWir rufen Sie morgen um 9 Uhr an.",
        "note": "Carol, bitte prüf den Bestand an Fixiereinheiten.\n\nDer Kunde hat es eilig.",
        "approval": "Dem Kunden wurde zweimal abgebucht.\n\nBitte genehmige die Erstattung.",
        "resolution": "Die Fixiereinheit wurde ersetzt.\n\nSchalten Sie den Drucker vorher aus.",
    },
}
COMMANDS = {
    "cc": "#cc dave@partner.test",
    "note": "#note\n#assign carol@staff.test",
    "approval": "#approval boss@partner.test Refund of 40 EUR",
    "resolution": "#resolution notify publish",
}


async def _ticket(start_daemon: StartDaemon, relay_sink: RelaySink) -> tuple[Running, Received]:
    """Alice and Carol; Bob Customer of Acme (with a phone and a postal address) opens ticket
    1; Alice's new-ticket notice, which says who Bob is."""
    fields = [{"name": "phone", "type": "phone"}, {"name": "address", "type": "address"}]
    running = await start_daemon({"people": {"usergroup_fields": fields}})
    app = running.app
    await add_agent(app, "alice@staff.test", "Alice", role=AgentRole.ADMIN)
    await add_agent(app, "carol@staff.test", "Carol")
    await add_usergroup(app, "acme", {CUSTOMER: False})
    async with app.db.transaction() as session:
        await session.execute(update(Usergroup).values(fields={"phone": PHONE, "address": POSTAL}))
    await smtp_send(running.port, build_message(message_id="<t1@customer.test>"))
    await relay_sink.wait_for(3)
    (notice,) = relay_sink.to("alice@staff.test")
    assert CUSTOMER in notice.text
    return running, notice


def _quoted(notice: Received) -> Quoted:
    sender = notice.message["From"].addresses[0]
    subject = str(notice.message["Subject"])
    return Quoted(
        sender.display_name,
        sender.addr_spec,
        "Alice <alice@staff.test>",
        subject,
        notice.text,
        notice.html,
    )


async def _answer(
    running: Running, notice: Received, client: Client, lang: str, command: str
) -> None:
    """Alice answers the notice from her client, commands on the first lines."""
    message = EmailMessage()
    message["From"] = "Alice <alice@staff.test>"
    message["To"] = reply_address(notice)
    message["Subject"] = "Re: " + str(notice.message["Subject"])
    message["Message-ID"] = f"<{command}-{client.name}-{lang}@staff.test>"
    message["In-Reply-To"] = message["References"] = str(notice.message["Message-ID"])
    client.body(message, lang, f"{COMMANDS[command]}\n\n{TEXTS[lang][command]}", _quoted(notice))
    assert (await smtp_send(running.port, message, mail_from="alice@staff.test"))[0] == 250


def _readable(text: str | None) -> str:
    return " ".join(unescape(text or "").split())


def assert_only_new_text(text: str | None, lang: str, command: str) -> None:
    """The agent's paragraphs are there, nothing of the quoted notice is."""
    readable = _readable(text)
    for paragraph in TEXTS[lang][command].split("\n\n"):
        assert paragraph in readable, readable
    for secret in SECRETS:
        assert secret not in readable, readable


async def _mail_to(running: Running, relay_sink: RelaySink, address: str, purpose: str) -> Received:
    """The one mail of this purpose to this address, once the relay has it."""
    rows = [
        r
        for r in await all_rows(running.app, OutboxMessage)
        if r.purpose == purpose and address in r.rcpt_tos
    ]
    assert len(rows) == 1, f"{len(rows)} {purpose} mails to {address}"
    wanted = rows[0].message_id

    async def arrived() -> bool:
        return any(wanted in str(r.message["Message-ID"]) for r in relay_sink.received)

    await wait_until(arrived)
    return next(r for r in relay_sink.received if wanted in str(r.message["Message-ID"]))


async def _sent_to(running: Running, address: str) -> int:
    return sum(address in r.rcpt_tos for r in await all_rows(running.app, OutboxMessage))


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("client", CLIENTS, ids=[c.name for c in CLIENTS])
async def test_each_command_takes_only_the_text_written_above_the_quote(
    client: Client,
    lang: str,
    start_daemon: StartDaemon,
    relay_sink: RelaySink,
) -> None:
    running, notice = await _ticket(start_daemon, relay_sink)

    await _answer(running, notice, client, lang, "cc")
    for address in (CUSTOMER, "dave@partner.test"):
        answer = await _mail_to(running, relay_sink, address, "agent_reply")
        assert_only_new_text(answer.text, lang, "cc")
        assert_only_new_text(answer.html, lang, "cc")

    await _answer(running, notice, client, lang, "note")
    note = await _mail_to(running, relay_sink, "carol@staff.test", "agent/note")
    assert_only_new_text(note.text, lang, "note")
    assert_only_new_text(note.html, lang, "note")

    customer_mails = await _sent_to(running, CUSTOMER)
    await _answer(running, notice, client, lang, "approval")
    request = await _mail_to(running, relay_sink, "boss@partner.test", "approval_request")
    for part in (request.text, request.html):
        assert_only_new_text(part, lang, "approval")
        assert "Refund of 40 EUR" in _readable(part)
    assert await _sent_to(running, CUSTOMER) == customer_mails, "the approver's text is theirs"
    link = _readable(request.text).split("Approve: ")[1].split()[0]
    async with aiohttp.ClientSession() as http, http.get(link) as page:
        assert_only_new_text(await page.text(), lang, "approval")

    await _answer(running, notice, client, lang, "resolution")
    told = await _mail_to(running, relay_sink, CUSTOMER, "resolution")
    assert_only_new_text(told.text, lang, "resolution")
    assert_only_new_text(told.html, lang, "resolution")
    url = f"{running.app.config.web.base_url}/kb/1-printer-is-on-fire"
    async with aiohttp.ClientSession() as http, http.get(url) as page:
        assert page.status == 200
        assert_only_new_text(await page.text(), lang, "resolution")
