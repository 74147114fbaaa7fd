"""classify(): which machine sent a message, from its structure and the signals it carries,
on the corpus samples and on the people's mail that must not be taken for a machine's."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailflow.mail.automatic import AutoKind, Known, classify, envelope_sender
from mailflow.mail.dsn import read_bounce, read_feedback, returned
from mailflow.mail.parse import parse
from tests.support import build_message

CORPUS = Path(__file__).parents[1] / "corpus"
OURS = Known(returns_ours="our outbox 1")
NOTHING = Known()


def _classified(kind: str, name: str, known: Known = NOTHING) -> AutoKind | None:
    parsed = parse((CORPUS / kind / name).read_bytes())
    verdict = classify(parsed, parsed.header("return-path") or "", known)
    return verdict.kind if verdict else None


def _names(kind: str) -> list[str]:
    return sorted(p.name for p in (CORPUS / kind).glob("*.eml"))


# Gateways that sign as themselves are bounces once they are seen to quote our mail.
@pytest.mark.parametrize("name", _names("bounce"))
def test_every_bounce_sample_is_a_bounce(name: str) -> None:
    assert _classified("bounce", name, OURS) is AutoKind.BOUNCE


@pytest.mark.parametrize("name", _names("feedback"))
def test_every_feedback_report_is_feedback(name: str) -> None:
    assert _classified("feedback", name) is AutoKind.FEEDBACK


@pytest.mark.parametrize("name", _names("challenge"))
def test_every_challenge_is_a_challenge(name: str) -> None:
    assert _classified("challenge", name) is AutoKind.CHALLENGE


@pytest.mark.parametrize("name", _names("list"))
def test_every_list_header_alone_marks_list_mail(name: str) -> None:
    assert _classified("list", name) is AutoKind.LIST


@pytest.mark.parametrize("name", _names("autoreply"))
def test_auto_replies_without_rfc3834_headers_are_auto_replies(name: str) -> None:
    known = Known(answers_automatic="our automatic mail (outbox 1)")
    assert _classified("autoreply", name, known) is AutoKind.AUTO_REPLY


@pytest.mark.parametrize(
    "kind", ["long-lines", "charsets", "text-parts", "damaged-headers", "own-id-shape"]
)
def test_peoples_samples_are_not_machines(kind: str) -> None:
    assert [n for n in _names(kind) if _classified(kind, n) is not None] == []


def test_bounce_words_from_a_person_are_a_bounce_only_when_they_quote_our_mail() -> None:
    raw = (CORPUS / "bounce" / "antivirus-gateway.eml").read_bytes()
    raw = raw.replace(b"mailguard@gw.customer.test", b"helpdesk@customer.test")
    parsed = parse(raw)

    assert classify(parsed, "helpdesk@customer.test") is None
    verdict = classify(parsed, "helpdesk@customer.test", OURS)
    assert verdict is not None
    assert verdict.kind is AutoKind.BOUNCE


def test_one_sign_of_an_auto_reply_is_a_ticket_without_an_answer() -> None:
    parsed = parse(build_message(subject="Absence request for May").as_bytes())

    verdict = classify(parsed, "bob@customer.test")

    assert verdict is not None
    assert verdict.kind is AutoKind.AUTO_GENERATED
    assert verdict.reason == "one sign of an automatic reply: subject 'Absence request for May'"


def test_answer_to_our_auto_reply_is_one_sign_more() -> None:
    parsed = parse(build_message(subject="Automatic reply: [#1] Printer").as_bytes())

    verdict = classify(parsed, "bob@customer.test", Known(answers_automatic="outbox 1"))

    assert verdict is not None
    assert verdict.kind is AutoKind.AUTO_REPLY
    assert verdict.reason == "subject 'Automatic reply: [#1] Printer'; answers outbox 1"


@pytest.mark.parametrize(
    ("subject", "body"),
    [
        ("Re: [#1] Printer", "I'm away next week, please call Carol instead."),
        ("Undeliverable parcel", "My parcel was not delivered, can you check?"),
        ("Please confirm my order", "Can you confirm the order went through?"),
        ("Complaint about the printer", "It is still broken."),
    ],
)
def test_a_persons_mail_that_uses_machine_words_is_a_persons_mail(subject: str, body: str) -> None:
    parsed = parse(build_message(subject=subject, body=body).as_bytes())

    verdict = classify(parsed, "bob@customer.test")

    assert verdict is None or verdict.kind is AutoKind.AUTO_GENERATED


def test_return_path_stands_in_for_a_missing_envelope_sender() -> None:
    parsed = parse(b"Return-Path: <>\r\nFrom: x@customer.test\r\nSubject: hi\r\n\r\nhi\r\n")

    assert envelope_sender(parsed, "") == "<>"
    assert envelope_sender(parsed, "bob@customer.test") == "bob@customer.test"


def test_feedback_report_names_the_complaining_address_and_our_mail() -> None:
    raw = (CORPUS / "feedback" / "yahoo-arf-headers-only.eml").read_bytes()
    raw = raw.replace(b"__MESSAGE_ID__", b"m1@example.com")
    raw = raw.replace(b"__RETURN_PATH__", b"support+bounce-7-abc@example.com")

    report = read_feedback(raw)

    assert report.recipients == ("bob@customer.test",)
    assert report.message_ids == ("m1@example.com",)
    assert report.return_paths == ("support+bounce-7-abc@example.com",)
    assert report.feedback_type == "abuse"


def test_microsoft_jmrp_names_the_recipient_in_its_own_header() -> None:
    report = read_feedback((CORPUS / "feedback" / "microsoft-jmrp-unlabelled.eml").read_bytes())

    assert report.recipients == ("bob@customer.test",)


def test_prose_bounce_finds_our_return_path_in_the_returned_message() -> None:
    raw = (CORPUS / "bounce" / "exim-prose.eml").read_bytes()
    raw = raw.replace(b"__RETURN_PATH__", b"support+bounce-3-xyz@example.com")

    report = read_bounce(raw)

    assert "support+bounce-3-xyz@example.com" in report.return_paths
    assert report.permanent
    assert "550 5.1.1" in report.diagnostic


def test_returned_reads_message_ids_from_returned_headers_only() -> None:
    headers = b"Message-ID: <ours@example.com>\r\nSubject: x\r\n\r\nMessage-ID: <body@x>\r\n"

    found = returned([headers], "text without ids")

    assert found.message_ids == ("ours@example.com",)


@pytest.mark.parametrize(
    "opening",
    [
        "The original message was received at Mon, 5 Jan 2026",
        "Ihre Nachricht wurde nicht zugestellt.",
        "Votre message n'a pas pu être remis.",
        "Il messaggio non è stato consegnato.",
        "Uw bericht kon niet worden afgeleverd.",
        "Não foi possível entregar a mensagem.",
        "Wiadomość nie została dostarczona.",
        "メッセージの配信に失敗しました。",
        "您的邮件无法投递。",
        "554 5.4.14 Hop count exceeded - possible mail loop",
    ],
)
def test_bounce_openings_in_many_languages_are_recognised(opening: str) -> None:
    raw = f"From: postmaster@mx.test\r\nSubject: x\r\n\r\n{opening}\r\n".encode()

    verdict = classify(parse(raw), "<>")

    assert verdict is not None
    assert verdict.kind is AutoKind.BOUNCE


@pytest.mark.parametrize(
    "opening",
    [
        "I am out of the office until Monday.",
        "Ich bin bis Montag nicht im Büro.",
        "Je suis absente jusqu'au 12.",
        "Jestem nieobecny do poniedziałku.",
        "Estoy de vacaciones hasta el lunes.",
        "Sono in ferie fino a lunedì.",
        "Ik ben met vakantie tot maandag.",
        "Estou de férias até segunda.",
        "只今不在にしております。",
    ],
)
def test_out_of_office_openings_are_a_sign_of_an_auto_reply(opening: str) -> None:
    raw = f"From: bob@customer.test\r\nSubject: x\r\n\r\n{opening}\r\n".encode()

    verdict = classify(parse(raw), "<>")

    assert verdict is not None
    assert verdict.kind is AutoKind.AUTO_REPLY, verdict.reason
