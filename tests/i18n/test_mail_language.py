"""The language of the mail a customer or a supervisor receives, through the real daemon over
SMTP, checked at the relay sink: their own setting, their usergroup's, the type's, the
language their first mail is written in, the instance's."""

from __future__ import annotations

from sqlalchemy import select

from mailflow.db.models import Customer
from tests.conftest import RelaySink, StartDaemon
from tests.i18n.conftest import Cli, write
from tests.support import add_usergroup, history_actions, wait_until

FRENCH = (
    "Bonjour,\n\nma facture de mars est fausse : vous m'avez débité deux fois. "
    "Pourriez-vous corriger cela rapidement ?\n\nMerci d'avance,\nMarie"
)
ENGLISH = "Hello,\n\nmy printer stopped printing this morning. Can you help?\n\nThanks"
POLISH = "Dzień dobry,\n\nod rana nie mogę się zalogować do panelu. Proszę o pomoc.\n\nJan"

TYPES = [
    {
        "name": "ticket",
        "addresses": ["support@example.com"],
        "statuses": ["open", "closed"],
        "closed": ["closed"],
        "default_status": "open",
        "language": "fr",
    },
    {
        "name": "pomoc",
        "addresses": ["pomoc@example.com"],
        "statuses": ["open", "closed"],
        "closed": ["closed"],
        "default_status": "open",
        "language": "pl",
    },
    {
        "name": "plain",
        "addresses": ["plain@example.com"],
        "statuses": ["open", "closed"],
        "closed": ["closed"],
        "default_status": "open",
    },
]


async def _customer(running_app: object, address: str) -> Customer:
    async with running_app.db.transaction() as session:  # type: ignore[attr-defined]
        found = await session.scalar(select(Customer).where(Customer.email == address))
        assert found is not None
        return found


async def test_a_customer_who_writes_in_french_gets_the_french_auto_reply(
    start_daemon: StartDaemon, relay_sink: RelaySink
) -> None:
    running = await start_daemon()

    reply = await write(running, relay_sink, "Marie Dupont <marie@client.test>", FRENCH)

    assert reply.text.startswith("Bonjour Marie Dupont,\r\n")
    assert (
        "Votre demande a bien été reçue et porte désormais le numéro de ticket [#1]" in reply.text
    )
    assert "Un conseiller vous répondra par e-mail." in reply.text
    assert "Hello" not in reply.text
    html = reply.html
    assert html is not None
    assert '<html lang="fr">' in html
    assert "Votre demande a bien été reçue" in html
    assert "Un conseiller vous répondra par e-mail." in html
    assert "Hello" not in html
    assert "language_detected" in await history_actions(running.app, 1)


async def test_the_language_of_a_first_mail_is_kept_for_the_customers_later_mail(
    start_daemon: StartDaemon, relay_sink: RelaySink
) -> None:
    running = await start_daemon()
    await write(running, relay_sink, "marie@client.test", FRENCH)

    later = await write(running, relay_sink, "marie@client.test", ENGLISH, subject="Printer")

    assert "Un conseiller vous répondra par e-mail." in later.text
    assert (await _customer(running.app, "marie@client.test")).detected_language == "fr"
    assert "language_detected" not in await history_actions(running.app, 2)


async def test_a_mail_too_short_to_tell_gets_the_instance_language(
    start_daemon: StartDaemon, relay_sink: RelaySink
) -> None:
    running = await start_daemon({"instance": {"language": "pl"}})

    reply = await write(running, relay_sink, "kim@client.test", "OK", subject="?")

    assert reply.text.startswith("Dzień dobry,")
    assert (await _customer(running.app, "kim@client.test")).detected_language is None


async def test_a_customer_set_to_polish_gets_polish_with_the_plural_their_count_needs(
    start_daemon: StartDaemon, relay_sink: RelaySink, admin: Cli
) -> None:
    running = await start_daemon()
    await admin("customer", "set", "jan@firma.test", "language=pl")
    address = "Jan Kowalski <jan@firma.test>"

    one = await write(running, relay_sink, address, ENGLISH, files=1)
    two = await write(running, relay_sink, address, ENGLISH, files=2)
    five = await write(running, relay_sink, address, ENGLISH, files=5)
    twenty_two = await write(running, relay_sink, address, ENGLISH, files=22)

    assert one.text.startswith("Dzień dobry,\r\n")
    assert "Zgłoszenie zostało przyjęte i otrzymało numer [#1]" in one.text
    assert "Otrzymaliśmy również załączony plik." in one.text
    assert "Otrzymaliśmy również 2 załączone pliki." in two.text
    assert "Otrzymaliśmy również 5 załączonych plików." in five.text
    assert "Otrzymaliśmy również 22 załączone pliki." in twenty_two.text
    assert "5 załączonych plików" in (five.html or "")
    customer = await _customer(running.app, "jan@firma.test")
    assert (customer.language, customer.detected_language) == ("pl", None)


async def test_a_type_speaks_its_language_unless_the_customer_has_one(
    start_daemon: StartDaemon, relay_sink: RelaySink, admin: Cli
) -> None:
    running = await start_daemon({"types": TYPES})
    await admin("customer", "set", "ola@firma.test", "language=pl")

    french = await write(running, relay_sink, "ann@client.test", ENGLISH)
    polish = await write(running, relay_sink, "ann@client.test", ENGLISH, to="pomoc@example.com")
    own = await write(running, relay_sink, "ola@firma.test", ENGLISH)
    detected = await write(running, relay_sink, "jan@firma.test", POLISH, to="plain@example.com")

    assert "Votre demande a bien été reçue" in french.text
    assert "Otrzymaliśmy wiadomość i utworzyliśmy zgłoszenie [#2]" in polish.text
    assert "Zgłoszenie zostało przyjęte i otrzymało numer [#3]" in own.text
    assert "Otrzymaliśmy wiadomość i utworzyliśmy zgłoszenie [#4]" in detected.text


async def test_a_usergroup_speaks_for_its_members_and_supervisors(
    start_daemon: StartDaemon, relay_sink: RelaySink, admin: Cli
) -> None:
    running = await start_daemon()
    await add_usergroup(
        running.app,
        "acme",
        {"boss@acme.test": True, "mia@acme.test": False, "leo@acme.test": False},
    )
    await admin("usergroup", "set", "acme", "language=pl", "timezone=Europe/Warsaw")
    await admin("customer", "set", "leo@acme.test", "language=fr")

    member = await write(running, relay_sink, "mia@acme.test", FRENCH)
    own = await write(running, relay_sink, "leo@acme.test", POLISH)

    assert member.text.startswith("Dzień dobry,")
    assert "otrzymało numer [#1]" in member.text
    assert own.text.startswith("Bonjour,")

    async def supervisor_told() -> bool:
        return len(relay_sink.to("boss@acme.test")) >= 2

    await wait_until(supervisor_told)
    notice = relay_sink.to("boss@acme.test")[0]
    assert "Nowe zgłoszenie [#1]: „Help”, od: mia@acme.test (Acme)." in notice.text
    assert "Tę wiadomość otrzymują osoby nadzorujące grupę Acme." in notice.text
    assert "#status resolved (zamknięcie), #status open (ponowne otwarcie)" in notice.text


async def test_a_language_set_by_a_person_outranks_the_detected_one_and_is_recorded(
    start_daemon: StartDaemon, relay_sink: RelaySink, admin: Cli
) -> None:
    running = await start_daemon()
    await write(running, relay_sink, "marie@client.test", FRENCH)

    result = await admin("customer", "set", "marie@client.test", "language=pl")
    later = await write(running, relay_sink, "marie@client.test", FRENCH, subject="Encore")

    assert "customer marie@client.test: language pl" in result.output
    assert later.text.startswith("Dzień dobry,")
    assert "language_set" in await history_actions(running.app, 1), "its open ticket says so"
