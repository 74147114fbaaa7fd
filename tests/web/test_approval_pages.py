"""What the approval pages tell the approver, over real HTTP: only what is true at that
moment, and a refused form comes back with the approver's comment and a clear word."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from mailflow.automation.sweep import sweep
from mailflow.db.record import ApprovalState
from tests.support import build_message, rules_dir, smtp_send
from tests.web.approving import (
    AGENT,
    APPROVER,
    READ,
    Approving,
    accept_link,
    page_url,
    the_approval,
)


def _utc(moment: datetime) -> str:
    """As the pages write a moment in English (CLDR: a narrow no-break space before AM)."""
    return moment.strftime("%B %-d, %Y, %-I:%M\u202f%p UTC")


async def test_every_page_asks_browsers_to_send_our_origin_with_its_form(
    approving: Approving,
) -> None:
    """With no-referrer, Chromium posts the form with Origin: null; same-origin keeps the
    address from other sites and gives our own site its origin."""
    running, request = await approving.requested()
    base = running.app.config.web.base_url
    for url in (accept_link(request), f"{base}/kb/", f"{base}/kb/9-missing"):
        async with approving.http.get(url) as response:
            assert response.headers["Referrer-Policy"] == "same-origin", url


async def test_a_form_sent_too_soon_comes_back_with_its_comment_and_a_clear_word(
    approving: Approving,
) -> None:
    running, request = await approving.requested()
    url = page_url(request)
    comment = "Fine, but only this once.\nAnd tell finance."
    form = {"nonce": await approving.view(url), "decision": "approve", "comment": comment}
    status, page = await approving.post(url, form)
    assert status == 400
    assert "too quick" in page
    assert "Nothing has been decided yet. Your comment is kept below" in page
    assert f">{comment}</textarea>" in page
    assert 'value="approve" class="chosen"' in page, "the choice is kept too"
    assert (await the_approval(running)).state is ApprovalState.PENDING


async def test_a_decided_request_shows_when_its_change_window_ends_not_a_past_expiry(
    approving: Approving,
) -> None:
    running, request = await approving.requested({"approvals": {"expire_after": "1h"}})
    url, clock = page_url(request), approving.clock
    clock.advance(timedelta(minutes=58))
    nonce = await approving.view(url)
    clock.advance(READ)
    assert (await approving.post(url, {"nonce": nonce, "decision": "approve"}))[0] == 200
    approval = await the_approval(running)
    assert approval.changeable_until is not None
    clock.advance(timedelta(minutes=5))  # past the link's expiry, within the change window
    async with approving.http.get(url) as response:
        assert response.status == 200
        page = await response.text()
    assert "You decided: <strong>approved</strong>" in page
    assert f"until {_utc(approval.changeable_until)}" in page
    assert _utc(approval.expires_at) not in page
    assert "expires" not in page
    nonce = await approving.view(url)
    clock.advance(READ)
    status, _ = await approving.post(url, {"nonce": nonce, "decision": "reject"})
    assert status == 200, "the buttons work while the window holds"
    assert (await the_approval(running)).state is ApprovalState.REJECTED


async def test_an_expired_link_says_the_requester_will_be_told_before_the_mail_is_sent(
    approving: Approving,
) -> None:
    running, request = await approving.requested()
    url = accept_link(request)
    approving.clock.advance(timedelta(days=7))
    async with approving.http.get(url) as response:  # the sweep has not run: no one is told
        assert response.status == 410
        page = await response.text()
    assert "expired on" in page
    assert "Alice, who asked, will be told by mail" in page
    assert "has been told" not in page
    assert "was told" not in page

    told = len(approving.relay_sink.to(AGENT))
    assert await sweep(running.app) == 1
    await approving.mail_to(AGENT, told + 1)
    async with approving.http.get(url) as response:
        page = await response.text()
    assert f"Alice, who asked, was told by mail on {_utc(approving.clock.now())}" in page


async def test_an_expired_link_nobody_waits_for_says_no_one_is_told(
    approving: Approving, tmp_path: Path
) -> None:
    """A rule asked and the ticket has no assignee: no mail tells anyone it expired."""
    rule = """rules:
  - name: big orders need the boss
    trigger: ticket_created
    do:
      - request_approval: {approver: boss@corp.test, reason: Big order}
"""
    settings = rules_dir(tmp_path, {"boss.yaml": rule})
    running = await approving.start_daemon(settings, clock=approving.clock)
    await smtp_send(running.port, build_message())
    (request,) = await approving.mail_to(APPROVER, 1)
    approving.clock.advance(timedelta(days=7))
    assert await sweep(running.app) == 1
    async with approving.http.get(accept_link(request)) as response:
        assert response.status == 410
        page = await response.text()
    assert "No one is told by mail that it expired" in page
    assert "will be told" not in page


async def test_a_comment_sent_after_expiry_is_shown_back_not_lost(approving: Approving) -> None:
    settings = {"approvals": {"expire_after": "10m"}}
    running, url, nonce = await approving.shown_and_read(settings)
    approving.clock.advance(timedelta(minutes=10))
    form = {"nonce": nonce, "decision": "approve", "comment": "Sorry, I was away."}
    status, page = await approving.post(url, form)
    assert status == 410
    assert "was not recorded" in page
    assert "Sorry, I was away." in page
    assert (await the_approval(running)).state is ApprovalState.PENDING


async def test_the_thank_you_page_says_until_when_and_how_to_change_it(
    approving: Approving,
) -> None:
    running, url, nonce = await approving.shown_and_read()
    status, page = await approving.post(url, {"nonce": nonce, "decision": "approve"})
    assert status == 200
    approval = await the_approval(running)
    assert approval.changeable_until is not None
    assert f"until {_utc(approval.changeable_until)}" in page
    assert f'<a href="{urlsplit(url).path}">' in page, "a link back to the page"
