"""Steps the approval tests share: a ticket, an agent's request, the approver's mail and
its link, a page view and the nonce it issues, a form sent."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import aiohttp

from mailflow.clock import ManualClock
from mailflow.db.record import Approval
from tests.conftest import Received, RelaySink, Running, StartDaemon
from tests.support import (
    add_agent,
    all_rows,
    answer_notice,
    build_message,
    page_nonce,
    smtp_send,
    wait_until,
)

APPROVER = "boss@corp.test"
AGENT = "alice@staff.test"
READ = timedelta(seconds=3)  # longer than min_decision_delay: a person read the page


def accept_link(request: Received) -> str:
    """The Accept link as the approver's mail gives it (with ?choice=approve)."""
    found = re.search(r"Approve: (\S+)", request.text)
    assert found, request.text
    return found.group(1)


def page_url(request: Received) -> str:
    """The approval page's address, where its form posts."""
    return accept_link(request).split("?")[0]


async def the_approval(running: Running) -> Approval:
    (approval,) = await all_rows(running.app, Approval)
    return approval


@dataclass
class Approving:
    """A daemon on a manual clock, its relay sink, and an HTTP client for the pages."""

    start_daemon: StartDaemon
    relay_sink: RelaySink
    clock: ManualClock
    http: aiohttp.ClientSession

    async def requested(self, settings: dict[str, Any] | None = None) -> tuple[Running, Received]:
        """Ticket 1 from Bob; Alice asks the boss to approve a refund; the boss's mail."""
        running = await self.start_daemon(settings, clock=self.clock)
        await add_agent(running.app, AGENT, "Alice")
        await smtp_send(running.port, build_message())
        await self.mail_to(AGENT, 1)
        (notice,) = self.relay_sink.to(AGENT)
        body = f"#approval {APPROVER} Refund of 40 EUR\n\nPlease."
        await answer_notice(running, notice, AGENT, body)
        await self.mail_to(APPROVER, 1)
        (request,) = self.relay_sink.to(APPROVER)
        return running, request

    async def shown_and_read(
        self, settings: dict[str, Any] | None = None
    ) -> tuple[Running, str, str]:
        """The approver opens the page and reads it for longer than min_decision_delay: the
        daemon, the page's address and its form's nonce."""
        running, request = await self.requested(settings)
        url = page_url(request)
        nonce = await self.view(url)
        self.clock.advance(READ)
        return running, url, nonce

    async def view(self, url: str) -> str:
        """Open the page as a browser would; the nonce its form carries."""
        async with self.http.get(url) as response:
            assert response.status == 200
            return page_nonce(await response.text())

    async def post(
        self, url: str, form: dict[str, str], origin: str | None = None
    ) -> tuple[int, str]:
        """Send the page's form; the answer's status and page."""
        headers = {"Origin": origin} if origin else {}
        async with self.http.post(url, data=form, headers=headers) as response:
            return response.status, await response.text()

    async def mail_to(self, address: str, count: int) -> list[Received]:
        """Wait until `address` has received `count` mails in all; return them."""

        async def arrived() -> bool:
            return len(self.relay_sink.to(address)) >= count

        await wait_until(arrived)
        return self.relay_sink.to(address)
