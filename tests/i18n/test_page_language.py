"""The language of the approval pages and the help centre, over real HTTP from the daemon:
the browser's Accept-Language first, then the approver's own language."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import aiohttp
import pytest

from mailflow.clock import ManualClock
from tests.conftest import Received, RelaySink, StartDaemon
from tests.i18n.conftest import Cli, write
from tests.support import add_agent, answer_notice, page_nonce, wait_until

APPROVER = "szef@firma.test"
AGENT = "alice@staff.test"
ENGLISH = "Hello,\n\nmy printer stopped printing this morning. Can you help?\n\nThanks"


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def _mail_to(sink: RelaySink, address: str, count: int) -> Received:
    async def arrived() -> bool:
        return len(sink.to(address)) >= count

    await wait_until(arrived)
    return sink.to(address)[count - 1]


async def _get(http: aiohttp.ClientSession, url: str, language: str | None = None) -> str:
    headers = {"Accept-Language": language} if language else {}
    async with http.get(url, headers=headers) as response:
        assert response.status == 200
        assert response.headers["Vary"] == "Accept-Language"
        return await response.text()


@dataclass
class Asking:
    """A daemon on a manual clock; Alice asks the approver about Bob's ticket."""

    start_daemon: StartDaemon
    sink: RelaySink
    clock: ManualClock
    admin: Cli
    http: aiohttp.ClientSession

    async def request(self, *settings: str) -> Received:
        """The approver's mail, the approver set up first with `settings`."""
        running = await self.start_daemon(clock=self.clock)
        await add_agent(running.app, AGENT, "Alice")
        if settings:
            await self.admin("customer", "set", APPROVER, *settings)
        await write(running, self.sink, "bob@customer.test", ENGLISH)
        notice = await _mail_to(self.sink, AGENT, 1)
        body = f"#approval {APPROVER} Zwrot 40 EUR\n\nProszę."
        await answer_notice(running, notice, AGENT, body)
        return await _mail_to(self.sink, APPROVER, 1)

    async def page(self, *settings: str, link_word: str = "Zatwierdź") -> str:
        """The approval page's address, from the link after `link_word` in the mail."""
        request = await self.request(*settings)
        found = re.search(rf"{link_word}: (\S+)", request.text)
        assert found, request.text
        return found.group(1).split("?")[0]

    async def get(self, url: str, language: str | None = None) -> str:
        return await _get(self.http, url, language)


@pytest.fixture
def asking(
    start_daemon: StartDaemon,
    relay_sink: RelaySink,
    clock: ManualClock,
    admin: Cli,
    http: aiohttp.ClientSession,
) -> Asking:
    return Asking(start_daemon, relay_sink, clock, admin, http)


async def test_a_polish_approver_gets_the_request_and_the_page_in_polish(asking: Asking) -> None:
    request = await asking.request("language=pl", "timezone=Europe/Warsaw")

    assert request.text.startswith("Alice prosi o zatwierdzenie w sprawie zgłoszenia [#1]")
    valid = "Prośba jest ważna do 12 stycznia 2026 10:00 CET (czas na decyzję: 7 dni)."
    assert valid in request.text
    found = re.search(r"Zatwierdź: (\S+)", request.text)
    assert found, request.text
    page = await asking.get(found.group(1))
    assert '<html lang="pl">' in page
    assert "<h1>Prosimy o decyzję</h1>" in page
    assert ">Zatwierdź</button>" in page
    assert "Termin ważności prośby: 12 stycznia 2026 10:00 CET." in page


async def test_a_refusal_on_a_polish_page_counts_in_polish(asking: Asking) -> None:
    url = await asking.page("language=pl")

    too_quick = {"nonce": page_nonce(await asking.get(url)), "decision": "approve"}
    async with asking.http.post(url, data=too_quick) as response:
        quick = await response.text()
    too_old = {"nonce": page_nonce(quick), "decision": "approve"}
    asking.clock.advance(timedelta(minutes=31))
    async with asking.http.post(url, data=too_old) as response:
        old = await response.text()

    assert "(wymagany odstęp: 2 sekundy)" in quick
    assert "Decyzja nie została jeszcze podjęta." in quick
    assert "(dopuszczalny czas: 30 minut)" in old


async def test_the_browsers_language_comes_before_the_approvers(asking: Asking) -> None:
    url = await asking.page("language=pl", "timezone=Europe/Warsaw")

    french = await asking.get(url, "fr-CH, fr;q=0.9, pl;q=0.8")
    unserved = await asking.get(url, "de-DE, de;q=0.9")

    assert '<html lang="fr">' in french
    assert "<h1>Votre décision, s’il vous plaît</h1>" in french
    assert "Cette demande expire le 12 janvier 2026, 10:00 UTC+01:00." in french
    assert '<html lang="pl">' in unserved, "no German: the approver's own language"


async def test_an_approver_we_know_nothing_of_reads_the_page_their_browser_asks_for(
    asking: Asking,
) -> None:
    url = await asking.page(link_word="Approve")

    polish = await asking.get(url, "pl-PL,pl;q=0.9,en-US;q=0.8")
    english = await asking.get(url)

    assert "<h1>Prosimy o decyzję</h1>" in polish
    assert "Termin ważności prośby: 12 stycznia 2026 09:00 UTC." in polish
    assert "<h1>Your decision, please</h1>" in english


async def test_the_help_centre_speaks_the_browsers_language(
    start_daemon: StartDaemon,
    relay_sink: RelaySink,
    clock: ManualClock,
    http: aiohttp.ClientSession,
) -> None:
    running = await start_daemon(clock=clock)
    await add_agent(running.app, AGENT, "Alice")
    await write(running, relay_sink, "bob@customer.test", ENGLISH, subject="Printer")
    notice = await _mail_to(relay_sink, AGENT, 1)
    await answer_notice(
        running, notice, AGENT, "#resolution notify publish\n\nRestart the printer."
    )
    await _mail_to(relay_sink, "bob@customer.test", 2)
    base = running.app.config.web.base_url

    index = {lang: await _get(http, f"{base}/kb/", lang) for lang in ("fr", "pl", "de", None)}
    link = re.search(r'href="(/kb/[^"]+)"', index["pl"])
    assert link, index["pl"]
    article = {lang: await _get(http, base + link.group(1), lang) for lang in ("fr", "pl")}

    assert "<h1>Centre d’aide</h1>" in index["fr"]
    assert "<h1>Centrum pomocy</h1>" in index["pl"]
    assert "<h1>Help centre</h1>" in index["de"], "no German: the instance's language"
    assert "<h1>Help centre</h1>" in index[None]
    assert "Mis à jour le 5 janvier 2026" in article["fr"]
    assert "Zaktualizowano: 5 stycznia 2026" in article["pl"]


async def test_the_help_centre_falls_back_to_the_instance_language(
    start_daemon: StartDaemon, http: aiohttp.ClientSession
) -> None:
    running = await start_daemon({"instance": {"language": "fr"}})
    base = running.app.config.web.base_url

    assert "<h1>Centre d’aide</h1>" in await _get(http, f"{base}/kb/", "de")
    assert "<h1>Centrum pomocy</h1>" in await _get(http, f"{base}/kb/", "pl")
