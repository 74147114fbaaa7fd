"""What choosing a customer's language costs: loading the language model once, recognising
the language of a 3 KB mail, and rendering an auto-reply in each language. CPU time of this
process (time.process_time), the best of several rounds, so a busy machine inflates it less.

    .venv/bin/python bench/language.py [--rounds 5] [--calls 500] [--json]"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

from mailflow.cli.check import sample_context, sample_message, sample_ticket
from mailflow.config import from_mapping
from mailflow.i18n import detect
from mailflow.i18n.choice import Speech
from mailflow.mail.addresses import Mailbox
from mailflow.outbox.mailer import Mailer, Recipient, TemplateMail
from mailflow.render import Renderer
from mailflow.resources import templates_dir
from mailflow.tickets.ops import Actor
from mailflow.tokens import Role, Signer

PARAGRAPHS = {
    "en": "Hello, since the update yesterday our invoices show the wrong tax rate and the "
    "totals no longer match the orders. Could you check what changed and tell us how to fix "
    "the invoices we have already sent to our own customers? ",
    "fr": "Bonjour, depuis la mise à jour d'hier nos factures affichent un mauvais taux de TVA "
    "et les totaux ne correspondent plus aux commandes. Pourriez-vous vérifier ce qui a changé "
    "et nous dire comment corriger les factures déjà envoyées à nos clients ? ",
    "pl": "Dzień dobry, od wczorajszej aktualizacji nasze faktury pokazują złą stawkę VAT, a "
    "sumy nie zgadzają się z zamówieniami. Czy mogą Państwo sprawdzić, co się zmieniło, i "
    "podpowiedzieć, jak poprawić faktury wysłane już do naszych klientów? ",
    "de": "Hallo, seit dem gestrigen Update zeigen unsere Rechnungen den falschen Steuersatz "
    "und die Summen stimmen nicht mehr mit den Bestellungen überein. Können Sie prüfen, was "
    "sich geändert hat, und uns sagen, wie wir die Rechnungen korrigieren? ",
}
SIZE = 3 * 1024


def cpu_ms_per_call(work: Callable[[], object], calls: int, rounds: int) -> float:
    """The best round's CPU milliseconds per call."""
    work()
    best = float("inf")
    for _ in range(rounds):
        start = time.process_time()
        for _ in range(calls):
            work()
        best = min(best, (time.process_time() - start) / calls)
    return best * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    start = time.process_time()
    detect.load()
    results: dict[str, float] = {
        "model load (once per process), ms": 1000 * (time.process_time() - start)
    }
    for language, paragraph in PARAGRAPHS.items():
        text = (paragraph * (SIZE // len(paragraph) + 1))[:SIZE]
        found = detect.recognise(text)
        if found is None or found.language != language:
            raise SystemExit(f"{language}: recognised as {found}")
        cost = cpu_ms_per_call(lambda t=text: detect.recognise(t), args.calls, args.rounds)
        results[f"recognise a 3 KB {language} mail, ms"] = cost

    config = from_mapping({}, "bench", Path.cwd())
    renderer = Renderer([templates_dir()])
    mailer = Mailer(config, renderer, Signer(lambda: b"x" * 32))
    ticket = sample_ticket("ticket", "open")
    mail = TemplateMail(
        template="customer/auto_reply",
        to=Recipient(Mailbox("Sam", "sam@example.org"), Role.CUSTOMER, 1),
        purpose="bench",
        actor=Actor.system(),
        message=sample_message(),
        context=sample_context(),
    )
    context = mailer.context(ticket, mail)
    for language in renderer.languages:
        speech = Speech(language, "Europe/Warsaw")
        cost = cpu_ms_per_call(
            lambda s=speech: renderer.render("customer/auto_reply", "ticket", context, s),
            args.calls // 5,
            args.rounds,
        )
        results[f"render the auto-reply (text and HTML) in {language}, ms"] = cost

    if args.json:
        print(json.dumps(results, indent=2))
        return
    for name, value in results.items():
        print(f"{name:58} {value:8.3f}")


if __name__ == "__main__":
    main()
