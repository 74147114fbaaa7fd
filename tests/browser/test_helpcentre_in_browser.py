"""The help centre in a real Chromium: the index, and an article reached by its link."""

from __future__ import annotations

from tests.browser.chromium import Browser
from tests.support import add_agent, answer_notice, build_message, smtp_send
from tests.web.approving import AGENT, Approving


async def test_the_index_leads_to_a_published_article(
    approving: Approving, browser: Browser
) -> None:
    running = await approving.start_daemon()
    await add_agent(running.app, AGENT, "Alice")
    await smtp_send(running.port, build_message(subject="Printer is on fire"))
    base = running.app.config.web.base_url
    await browser.open(f"{base}/kb/")
    assert await browser.heading() == "Help centre"
    assert "Nothing here yet." in await browser.text()

    (notice,) = await approving.mail_to(AGENT, 1)
    body = "#resolution publish\n\nSwitch it off at the wall, then call us."
    await answer_notice(running, notice, AGENT, body)
    await browser.open(f"{base}/kb/")
    await browser.follow("Printer is on fire")
    assert await browser.heading() == "Printer is on fire"
    assert "Switch it off at the wall, then call us." in await browser.text()
    await browser.follow("Help centre")
    assert await browser.heading() == "Help centre"
