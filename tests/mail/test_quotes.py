"""split_reply(): the words a person wrote now, without the history their client quoted."""

from __future__ import annotations

import pytest

from mailflow.mail.quotes import Reply, split_reply, written_now

REPLIES = {
    "gmail-en": (
        "Thanks, that fixed it.\n\n"
        "On Mon, Jan 1, 2024 at 10:00 AM Support <support@example.com> wrote:\n"
        "> Please restart the printer.\n>\n> Support\n",
        "Thanks, that fixed it.",
    ),
    "gmail-en-wrapped-attribution": (
        "Thanks, that fixed it.\n\n"
        "On Mon, Jan 1, 2024 at 10:00 AM Support Team of Example <\n"
        "support@example.com> wrote:\n\n"
        "> Please restart the printer.\n",
        "Thanks, that fixed it.",
    ),
    "apple-mail-en": (
        "Works now.\n\n"
        "> On 1 Jan 2024, at 10:00, Support <support@example.com> wrote:\n>\n"
        "> Please restart the printer.\n",
        "Works now.",
    ),
    "thunderbird-en": (
        "Works now.\n\nOn 01.01.24 10:00, Support wrote:\n> Please restart the printer.\n",
        "Works now.",
    ),
    "outlook-original-message-en": (
        "Works now.\n\n-----Original Message-----\n"
        "From: Support <support@example.com>\nSent: Monday, January 1, 2024 10:00 AM\n"
        "To: Bob <bob@example.org>\nSubject: RE: printer\n\nPlease restart the printer.\n",
        "Works now.",
    ),
    "outlook-underscores-en": (
        "Works now.\n\n________________________________\n"
        "From: Support <support@example.com>\nSent: Monday, January 1, 2024 10:00 AM\n"
        "To: Bob\nSubject: RE: printer\n\nPlease restart the printer.\n",
        "Works now.",
    ),
    "gmail-fr": (
        "Merci, c'est réglé.\n\n"
        "Le lun. 1 janv. 2024 à 10:00, Support <support@example.com> a écrit :\n"
        "> Veuillez redémarrer l'imprimante.\n",
        "Merci, c'est réglé.",
    ),
    "apple-mail-fr": (
        "Merci.\n\n"
        "> Le 1 janv. 2024 à 10:00, Support <support@example.com> a écrit :\n>\n"
        "> Redémarrez.\n",
        "Merci.",
    ),
    "thunderbird-fr": (
        "Merci.\n\nLe 01/01/2024 à 10:00, Support a écrit :\n> Redémarrez.\n",
        "Merci.",
    ),
    "outlook-fr": (
        "Merci.\n\n-----Message d'origine-----\n"
        "De : Support <support@example.com>\nEnvoyé : lundi 1 janvier 2024 10:00\n"
        "À : Bob <bob@example.org>\nObjet : RE: imprimante\n\nRedémarrez.\n",
        "Merci.",
    ),
    "gmail-de": (
        "Danke, jetzt geht es.\n\n"
        "Am Mo., 1. Jan. 2024 um 10:00 Uhr schrieb Support <support@example.com>:\n"
        "> Bitte starten Sie den Drucker neu.\n",
        "Danke, jetzt geht es.",
    ),
    "thunderbird-de": (
        "Danke.\n\nAm 01.01.24 um 10:00 schrieb Support:\n> Neu starten.\n",
        "Danke.",
    ),
    "outlook-de": (
        "Danke.\n\n-----Ursprüngliche Nachricht-----\n"
        "Von: Support <support@example.com>\nGesendet: Montag, 1. Januar 2024 10:00\n"
        "An: Bob <bob@example.org>\nBetreff: AW: Drucker\n\nBitte neu starten.\n",
        "Danke.",
    ),
    "outlook-de-without-separator": (
        "Danke.\n\n"
        "Von: Support <support@example.com>\nGesendet: Montag, 1. Januar 2024 10:00\n"
        "An: Bob <bob@example.org>\nBetreff: AW: Drucker\n\nBitte neu starten.\n",
        "Danke.",
    ),
    "gmail-pl": (
        "Dziękuję, działa.\n\n"
        "pon., 1 sty 2024 o 10:00 Support <support@example.com> napisał(a):\n"
        "> Proszę zrestartować drukarkę.\n",
        "Dziękuję, działa.",
    ),
    "thunderbird-pl": (
        "Dzięki.\n\nW dniu 1.01.2024 o 10:00, Support pisze:\n> Proszę zrestartować.\n",
        "Dzięki.",
    ),
    "outlook-pl": (
        "Dzięki.\n\n-----Wiadomość oryginalna-----\n"
        "Od: Support <support@example.com>\nWysłano: poniedziałek, 1 stycznia 2024 10:00\n"
        "Do: Bob <bob@example.org>\nTemat: RE: drukarka\n\nProszę zrestartować.\n",
        "Dzięki.",
    ),
    "unknown-language-attribution": (
        "Díky, funguje to.\n\nDne 1. 1. 2024 v 10:00 Support napsal(a):\n> Restartujte.\n",
        "Díky, funguje to.",
    ),
}


@pytest.mark.parametrize(("text", "new"), REPLIES.values(), ids=REPLIES.keys())
def test_quoted_history_is_cut_from_the_reply(text: str, new: str) -> None:
    assert split_reply(text).new == new


def test_inline_answers_between_quotes_are_kept() -> None:
    text = "> Did you restart it?\nYes, twice.\n> And the cable?\nAlso replaced.\n"

    assert split_reply(text).new == text.strip()


def test_answer_below_a_quote_introduced_by_a_colon_is_kept() -> None:
    text = (
        "Hi,\n\nyour instructions said:\n\n> Restart the printer\n\n"
        "I did that twice and it still burns.\n\nBob"
    )

    assert split_reply(text).new == text


def test_attribution_of_an_inline_reply_is_kept_with_the_answers() -> None:
    text = "You wrote:\n> Restart the printer\nI did, it still burns.\n"

    assert split_reply(text).new == text.strip()


@pytest.mark.parametrize(
    "marker",
    [
        "---------- Forwarded message ---------",
        "-------- Forwarded Message --------",
        "---------- Weitergeleitete Nachricht ---------",
        "-------- Message transféré --------",
        "-------- Przekazana wiadomość --------",
        "Begin forwarded message:",
    ],
)
def test_forwarded_mail_is_new_to_us_and_kept(marker: str) -> None:
    text = (
        f"Please see below.\n\n{marker}\n\n"
        "From: Alice <alice@example.org>\nDate: Mon, Jan 1, 2024 at 10:00 AM\n"
        "Subject: broken\nTo: Bob <bob@example.org>\n\nThe printer is broken.\n"
    )

    new = split_reply(text).new

    assert new.startswith("Please see below.")
    assert new.endswith("The printer is broken.")


def test_forward_quoted_in_history_does_not_keep_the_history() -> None:
    text = (
        "Thanks!\n\nOn Mon, Jan 1, 2024 at 10:00 AM Support <support@example.com> wrote:\n"
        "> ---------- Forwarded message ---------\n> From: Alice <alice@example.org>\n"
        ">\n> Old text.\n"
    )

    assert split_reply(text).new == "Thanks!"


def test_signature_is_split_from_the_new_text() -> None:
    reply = split_reply("Works now.\n\n-- \nBob Smith\nACME Corp\n")

    assert reply.new == "Works now."
    assert "Bob Smith\nACME Corp" in reply.signature
    assert reply.with_signature.startswith("Works now.\n\n")
    assert reply.with_signature.endswith("Bob Smith\nACME Corp")


def test_mobile_sent_from_line_is_a_signature() -> None:
    reply = split_reply("Works now.\n\nSent from my iPhone\n")

    assert reply == Reply("Works now.", "Sent from my iPhone")


def test_text_with_nothing_quoted_is_kept_whole() -> None:
    text = "Hello,\n\nmy printer is on fire.\nHere is what I tried:\n1. Water\n2. Sand\n\nBob"

    assert split_reply(text) == Reply(text, "")


def test_reply_without_a_signature_is_its_own_with_signature() -> None:
    assert split_reply("Just this.").with_signature == "Just this."


@pytest.mark.parametrize("text", ["", "   \n\t\n"])
def test_blank_text_has_no_new_text(text: str) -> None:
    assert split_reply(text) == Reply("", "")


def test_message_that_is_only_a_quote_is_kept_rather_than_emptied() -> None:
    text = "> quoted only\n> more quoted\n"

    assert split_reply(text).new == text.strip()


@pytest.mark.parametrize(
    "text",
    [
        "On Mon, Jan 1, 2024 at 10:00 AM Support <support@example.com> wrote:\n> Refund.\n",
        "> Internal: the customer owes us 40 EUR.\n>\n> Carol\n",
        "\n\n-----Original Message-----\nFrom: Support <support@example.com>\n\nOwes us 40 EUR.\n",
        "Le lun. 1 janv. 2024 à 10:00, Support <support@example.com> a écrit :\n> Note.\n",
        "   \n",
    ],
)
def test_a_text_that_is_only_a_quote_says_nothing_now(text: str) -> None:
    """Under an agent's commands: a quote alone is no answer to send to the customer."""
    assert written_now(text) == ""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Done.\n\nOn Mon, Support wrote:\n> Please restart.\n", "Done."),
        ("No quote at all.", "No quote at all."),
        ("See below.\n\n---------- Forwarded message ---------\nFrom: x\n\nHi", "See below."),
    ],
)
def test_what_is_written_above_a_quote_is_kept(text: str, expected: str) -> None:
    assert written_now(text).startswith(expected)
