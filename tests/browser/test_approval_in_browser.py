"""The approver in a real Chromium: the Accept link from the mail the relay received, the
page read for a while, a comment typed, a button clicked; double clicks, the Back button, a
decided request and an expired link. The daemon's clock is a manual one: "a while" is a
step of the clock, not a sleep."""

from __future__ import annotations

from datetime import timedelta

from mailflow.db.record import ApprovalState
from tests.browser.chromium import Browser
from tests.conftest import Running
from tests.support import history_actions
from tests.web.approving import AGENT, READ, Approving, accept_link, the_approval

ASKING = "Your decision, please"


async def _page_read(approving: Approving, browser: Browser) -> tuple[Running, str]:
    """The approver opens the emailed Accept link and reads the page for a while; the
    daemon and the link."""
    running, request = await approving.requested()
    link = accept_link(request)
    await browser.open(link)
    assert await browser.heading() == ASKING
    approving.clock.advance(READ)
    return running, link


async def test_the_emailed_accept_link_approves_with_a_comment(
    approving: Approving, browser: Browser
) -> None:
    running, request = await approving.requested()
    await browser.open(accept_link(request))
    assert await browser.heading() == ASKING
    assert "Refund of 40 EUR" in await browser.text()
    assert await browser.chosen() == "Approve"
    approving.clock.advance(READ)
    told = len(approving.relay_sink.to(AGENT))
    await browser.type("comment", "Fine by me, this once.")
    await browser.press("Approve")
    assert await browser.heading() == "Thank you"
    assert "approved" in await browser.text()
    approval = await the_approval(running)
    assert (approval.state, approval.decided_via, approval.comment) == (
        ApprovalState.APPROVED,
        "web",
        "Fine by me, this once.",
    )
    assert "Chrome" in approval.decided_agent
    notice = (await approving.mail_to(AGENT, told + 1))[-1]
    assert "Fine by me, this once." in notice.text


async def test_pressed_too_soon_the_form_comes_back_with_the_comment(
    approving: Approving, browser: Browser
) -> None:
    running, request = await approving.requested()
    await browser.open(accept_link(request))
    await browser.type("comment", "Quick yes.")
    await browser.press("Approve")  # within min_decision_delay of the page opening
    assert await browser.heading() == ASKING
    assert "too quick" in await browser.text()
    assert await browser.value("comment") == "Quick yes."
    assert (await the_approval(running)).state is ApprovalState.PENDING
    approving.clock.advance(READ)
    await browser.press("Approve")
    assert await browser.heading() == "Thank you"
    assert (await the_approval(running)).comment == "Quick yes."


async def test_a_double_click_decides_once(approving: Approving, browser: Browser) -> None:
    running, _ = await _page_read(approving, browser)
    await browser.double_click("Approve")
    await browser.wait_for_heading("Thank you")
    actions = await history_actions(running.app, 1)
    assert actions.count("approval_decided") == 1
    assert "approval_changed" not in actions
    assert (await the_approval(running)).state is ApprovalState.APPROVED


async def test_back_and_click_again_changes_the_decision_within_the_window(
    approving: Approving, browser: Browser
) -> None:
    running, _ = await _page_read(approving, browser)
    await browser.press("Approve")
    assert await browser.heading() == "Thank you"
    await browser.back()  # the page is not stored (no-store): Chromium asks for it again
    assert await browser.heading() == ASKING
    assert "You decided: approved" in await browser.text()
    approving.clock.advance(READ)
    await browser.press("Reject")
    assert await browser.heading() == "Thank you"
    assert (await the_approval(running)).state is ApprovalState.REJECTED
    assert (await history_actions(running.app, 1)).count("approval_changed") == 1


async def test_the_decided_page_after_the_change_window_has_no_buttons(
    approving: Approving, browser: Browser
) -> None:
    _, link = await _page_read(approving, browser)
    await browser.press("Reject")
    approving.clock.advance(timedelta(minutes=10, seconds=1))
    await browser.open(link)
    assert await browser.heading() == "Already decided"
    assert "rejected" in await browser.text()
    assert await browser.buttons() == []


async def test_an_expired_link_says_what_happened_and_what_will(
    approving: Approving, browser: Browser
) -> None:
    _, request = await approving.requested()
    approving.clock.advance(timedelta(days=7))
    await browser.open(accept_link(request))
    assert await browser.heading() == "This request has expired"
    text = await browser.text()
    assert "expired on January 12, 2026" in text
    assert "Alice, who asked, will be told by mail" in text
    assert await browser.buttons() == []
