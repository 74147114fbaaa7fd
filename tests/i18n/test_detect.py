"""Recognising the language of a customer's first mail: right or silent, never wrong, on the
short mails support receives in English, French, Polish and German."""

from __future__ import annotations

import pytest

from mailflow.i18n.detect import detect, recognise, sample

SUPPORT_MAIL = {
    "en": [
        "Hi, I can't log in since this morning. Could you reset my password?",
        "The invoice for March is wrong: we were charged twice.",
        "Please cancel my subscription.",
        "Where is my order? It was due last Friday.",
        "Thanks, that fixed it!",
        "The VPN drops every ten minutes on my laptop.",
        "Can you send me a copy of the contract?",
        "Our Outlook stopped syncing after the update yesterday.",
        "Hello,\n\nthe app crashes when I open the settings page. I'm on Android 14.\n\nTom",
        "I need a refund for order 4471.",
    ],
    "fr": [
        "Bonjour, mon imprimante ne fonctionne plus.",
        "Je n'arrive plus à me connecter depuis ce matin. Pouvez-vous réinitialiser mon mot "
        "de passe ?",
        "La facture de mars est erronée : nous avons été débités deux fois.",
        "Merci d'annuler mon abonnement.",
        "Où en est ma commande ? Elle devait arriver vendredi dernier.",
        "Merci, c'est réglé !",
        "Le VPN se déconnecte toutes les dix minutes sur mon portable.",
        "Pourriez-vous m'envoyer une copie du contrat ?",
        "Bonjour,\n\nl'application plante quand j'ouvre les paramètres.\n\nCordialement,\nMarie",
        "Je souhaite être remboursé pour la commande 4471.",
    ],
    "pl": [
        "Dzień dobry, drukarka przestała działać.",
        "Od rana nie mogę się zalogować. Czy mogą Państwo zresetować moje hasło?",
        "Faktura za marzec jest błędna: obciążono nas dwa razy.",
        "Proszę anulować moją subskrypcję.",
        "Gdzie jest moje zamówienie? Miało dotrzeć w zeszły piątek.",
        "Dziękuję, już działa!",
        "VPN rozłącza się co dziesięć minut na moim laptopie.",
        "Czy mogę prosić o kopię umowy?",
        "Dzień dobry,\n\naplikacja się zawiesza, gdy otwieram ustawienia.\n\nPozdrawiam,\nKasia",
        "Proszę o zwrot pieniędzy za zamówienie 4471.",
    ],
    "de": [
        "Hallo, mein Drucker funktioniert nicht mehr.",
        "Ich kann mich seit heute morgen nicht anmelden. Können Sie mein Passwort zurücksetzen?",
        "Die Rechnung für März ist falsch: Wir wurden doppelt belastet.",
        "Bitte kündigen Sie mein Abonnement.",
        "Wo ist meine Bestellung? Sie sollte letzten Freitag ankommen.",
        "Das VPN bricht auf meinem Laptop alle zehn Minuten ab.",
        "Können Sie mir eine Kopie des Vertrags schicken?",
        "Hallo,\n\ndie App stürzt ab, wenn ich die Einstellungen öffne.\n\nGrüße,\nJonas",
        "Ich möchte eine Erstattung für Bestellung 4471.",
    ],
}


@pytest.mark.parametrize(
    ("language", "text"),
    [(language, text) for language, texts in SUPPORT_MAIL.items() for text in texts],
)
def test_a_short_support_mail_is_recognised_right_or_not_at_all(language: str, text: str) -> None:
    found = recognise(text)
    assert found is None or found.language == language, found


def test_nearly_every_short_support_mail_is_recognised() -> None:
    texts = [(language, t) for language, ts in SUPPORT_MAIL.items() for t in ts]
    right = [t for language, t in texts if (found := recognise(t)) and found.language == language]
    assert len(right) >= len(texts) - 2, set(t for _, t in texts) - set(right)


@pytest.mark.parametrize(
    "text",
    [
        "OK",
        "Merci",
        "???",
        "https://example.com/invoice/4471",
        "Printer HP LaserJet 4000 error 49.4C02",
        "+1",
        "",
    ],
)
def test_what_says_too_little_is_no_language(text: str) -> None:
    assert recognise(text) is None


def test_a_language_without_a_catalog_is_still_recognised_as_itself() -> None:
    """Spanish is not taken for French: it is kept as Spanish, which no catalog serves."""
    found = recognise("Hola, mi impresora no funciona desde ayer. ¿Pueden ayudarme, por favor?")
    assert found is not None
    assert found.language == "es"


def test_links_addresses_and_numbers_are_not_read() -> None:
    assert sample("See https://x.test/a?b=1 and mail bob@x.test, order 4471 [#12] #status") == (
        "See and mail order"
    )


def test_a_long_mail_is_read_only_as_far_as_its_first_lines() -> None:
    assert len(sample("Bonjour, ma commande n'est pas arrivée. " * 500)) <= 1000


async def test_detection_in_the_event_loop_gives_the_same_answer() -> None:
    found = await detect("Dzień dobry, drukarka przestała działać.")
    assert found is not None
    assert found.language == "pl"
    assert found.confidence >= 0.8
