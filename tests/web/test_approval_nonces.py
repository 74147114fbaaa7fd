"""The approval page's one-time nonce over real HTTP: it lives as long as its page, a newer
view of the link replaces it, every refusal spends it, and a refused form comes back with a
fresh one. Origins are judged as browsers send them."""

from __future__ import annotations

from datetime import timedelta

import pytest

from mailflow.db.record import ApprovalState
from tests.support import history_actions, page_nonce
from tests.web.approving import READ, Approving, page_url, the_approval


async def test_a_newer_view_of_the_page_replaces_the_older_pages_nonce(
    approving: Approving,
) -> None:
    running, request = await approving.requested()
    url = page_url(request)
    older, newer = await approving.view(url), await approving.view(url)
    approving.clock.advance(READ)
    form = {"nonce": older, "decision": "approve", "comment": "From the old tab."}
    status, page = await approving.post(url, form)
    assert status == 400
    assert "out of date" in page
    assert "From the old tab.</textarea>" in page, "the comment is kept"
    assert (await the_approval(running)).state is ApprovalState.PENDING
    status, page = await approving.post(url, {"nonce": newer, "decision": "approve"})
    assert status == 400, "the refusal's page replaced the newer view's nonce too"
    approving.clock.advance(READ)
    status, _ = await approving.post(url, {"nonce": page_nonce(page), "decision": "approve"})
    assert status == 200
    assert (await the_approval(running)).state is ApprovalState.APPROVED


async def test_a_post_refused_as_too_quick_does_not_decide_when_replayed(
    approving: Approving,
) -> None:
    running, request = await approving.requested()
    url = page_url(request)
    form = {"nonce": await approving.view(url), "decision": "approve"}
    status, page = await approving.post(url, form)
    assert status == 400
    assert "too quick" in page
    approving.clock.advance(timedelta(seconds=2.6))
    status, _ = await approving.post(url, form)
    assert status == 400, "the refusal spent the nonce"
    assert (await the_approval(running)).state is ApprovalState.PENDING


async def test_a_nonce_expires_with_its_page(approving: Approving) -> None:
    settings = {"approvals": {"page_expire_after": "20m"}}
    running, url, nonce = await approving.shown_and_read(settings)
    approving.clock.advance(timedelta(minutes=20))
    form = {"nonce": nonce, "decision": "reject", "comment": "Back from lunch."}
    status, page = await approving.post(url, form)
    assert status == 400
    assert "open for more than 20 minutes" in page
    assert "Back from lunch.</textarea>" in page
    assert (await the_approval(running)).state is ApprovalState.PENDING
    approving.clock.advance(READ)
    form["nonce"] = page_nonce(page)
    assert (await approving.post(url, form))[0] == 200
    assert (await the_approval(running)).comment == "Back from lunch."


@pytest.mark.parametrize(
    ("form", "origin"),
    [({"decision": "approve"}, "https://evil.test"), ({"decision": "maybe"}, None)],
    ids=["from-another-site", "no-choice"],
)
async def test_every_refusal_spends_the_nonce(
    approving: Approving, form: dict[str, str], origin: str | None
) -> None:
    running, url, nonce = await approving.shown_and_read()
    assert (await approving.post(url, {**form, "nonce": nonce}, origin))[0] == 400
    status, page = await approving.post(url, {"nonce": nonce, "decision": "approve"})
    assert status == 400
    assert "out of date" in page
    assert (await the_approval(running)).state is ApprovalState.PENDING


async def test_origin_null_with_the_pages_nonce_decides(approving: Approving) -> None:
    """What Chromium sends from a page whose referrer policy hides its origin."""
    running, url, nonce = await approving.shown_and_read()
    status, page = await approving.post(url, {"nonce": nonce, "decision": "approve"}, "null")
    assert status == 200, page
    assert (await the_approval(running)).state is ApprovalState.APPROVED


@pytest.mark.parametrize("nonce", ["made-up", ""])
async def test_origin_null_with_a_wrong_nonce_is_refused(approving: Approving, nonce: str) -> None:
    running, url, _ = await approving.shown_and_read()
    status, page = await approving.post(url, {"nonce": nonce, "decision": "approve"}, "null")
    assert status == 400
    assert "did not come from this page" in page
    assert (await the_approval(running)).state is ApprovalState.PENDING


@pytest.mark.parametrize("origin", ["https://evil.test", "http://127.0.0.1", "https://127.0.0.1:1"])
async def test_a_post_from_another_origin_is_refused_with_the_right_nonce(
    approving: Approving, origin: str
) -> None:
    running, url, nonce = await approving.shown_and_read()
    status, page = await approving.post(url, {"nonce": nonce, "decision": "approve"}, origin)
    assert status == 400
    assert "another site" in page
    assert (await the_approval(running)).state is ApprovalState.PENDING


async def test_a_form_sent_twice_gets_the_first_answer_and_decides_once(
    approving: Approving,
) -> None:
    """A double click, as Chromium sends it when the clicks are far enough apart."""
    running, url, nonce = await approving.shown_and_read()
    form = {"nonce": nonce, "decision": "approve", "comment": "Yes."}
    for _ in range(2):
        status, page = await approving.post(url, form)
        assert status == 200
        assert "Thank you" in page
    status, page = await approving.post(url, {**form, "decision": "reject"})
    assert status == 400, "not the same form: this one would change the decision"
    assert "out of date" in page
    actions = await history_actions(running.app, 1)
    assert actions.count("approval_decided") == 1
    assert "approval_changed" not in actions
    assert (await the_approval(running)).state is ApprovalState.APPROVED


async def test_a_head_request_leaves_the_pages_nonce_alone(approving: Approving) -> None:
    """Link checkers ask with HEAD; no one can read a nonce from that answer."""
    running, url, nonce = await approving.shown_and_read()
    async with approving.http.head(url) as response:
        assert response.status == 200
    status, _ = await approving.post(url, {"nonce": nonce, "decision": "approve"})
    assert status == 200
    assert (await the_approval(running)).state is ApprovalState.APPROVED
