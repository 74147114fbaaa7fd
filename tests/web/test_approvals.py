"""Approvals over real HTTP on loopback: a GET decides nothing, a POST decides once, and
scanners, forgers, latecomers and wrong tokens get nowhere. Also by reply."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import aiohttp

from mailflow.automation.sweep import sweep
from mailflow.clock import ManualClock
from mailflow.db.models import History
from mailflow.db.record import Approval, ApprovalState
from tests.conftest import Received, RelaySink, Running, StartDaemon
from tests.support import (
    add_agent,
    all_rows,
    build_message,
    get_ticket,
    page_nonce,
    reply_address,
    smtp_send,
)

APPROVER = "boss@corp.test"
RULES = """rules:
  - name: an approved refund resolves the ticket
    trigger: approval_decided
    types: [ticket]
    if: {approval.decision: approved}
    do:
      - set_status: resolved
"""


async def _requested(
    start_daemon: StartDaemon, relay_sink: RelaySink, clock: ManualClock, tmp_path: Path
) -> tuple[Running, Received]:
    """Ticket 1; Alice asks the boss to approve a refund; the boss's mail with the links."""
    extra = tmp_path / "rules.d"
    extra.mkdir()
    (extra / "approvals.yaml").write_text(RULES)
    running = await start_daemon({"rules": {"extra_dir": str(extra)}}, clock=clock)
    await add_agent(running.app, "alice@staff.test", "Alice")
    await smtp_send(running.port, build_message())
    await relay_sink.wait_for(2)
    (notice,) = relay_sink.to("alice@staff.test")
    answer = build_message(
        sender="alice@staff.test",
        to=reply_address(notice),
        subject="Re: refund",
        body="#approval boss@corp.test Refund of 40 EUR\n\nWe are asking.",
    )
    await smtp_send(running.port, answer, mail_from="alice@staff.test")
    await relay_sink.wait_for(3)
    (request,) = relay_sink.to(APPROVER)
    return running, request


def _links(request: Received) -> tuple[str, str]:
    approve = re.search(r"Approve: (\S+)", request.text)
    reject = re.search(r"Reject:  (\S+)", request.text)
    assert approve
    assert reject
    return approve.group(1), reject.group(1)


async def _approval(running: Running) -> Approval:
    (approval,) = await all_rows(running.app, Approval)
    return approval


async def test_a_look_decides_nothing_and_a_considered_post_decides(
    start_daemon: StartDaemon,
    relay_sink: RelaySink,
    clock: ManualClock,
    tmp_path: Path,
    http: aiohttp.ClientSession,
) -> None:
    running, request = await _requested(start_daemon, relay_sink, clock, tmp_path)
    approve_url, _ = _links(request)
    assert request.message["Subject"].startswith("[#1]")

    async with http.get(approve_url) as response:  # what a link scanner does
        assert response.status == 200
        page = await response.text()
    assert "Refund of 40 EUR" in page
    assert response.headers["Cache-Control"] == "no-store"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert (await _approval(running)).state is ApprovalState.PENDING

    form = {"nonce": page_nonce(page), "decision": "approve", "comment": "Fine by me."}
    async with http.post(approve_url.split("?")[0], data=form) as response:  # at once: a bot
        assert response.status == 400
        page = await response.text()
    assert "too quick" in page
    assert (await _approval(running)).state is ApprovalState.PENDING

    clock.advance(timedelta(seconds=3))
    form["nonce"] = page_nonce(page)
    async with http.post(
        approve_url.split("?")[0], data=form, headers={"User-Agent": "Considerate/1.0"}
    ) as response:
        assert response.status == 200
        assert "Thank you" in await response.text()
    approval = await _approval(running)
    assert (approval.state, approval.decided_via, approval.comment) == (
        ApprovalState.APPROVED,
        "web",
        "Fine by me.",
    )
    assert approval.decided_agent == "Considerate/1.0"
    assert approval.decided_from == "127.0.0.1"
    assert (await get_ticket(running.app, 1)).status == "resolved", "the rule event fired"
    decided = [h for h in await all_rows(running.app, History) if h.action == "approval_decided"]
    assert decided[0].details["user_agent"] == "Considerate/1.0"
    await relay_sink.wait_for(4)
    told = relay_sink.to("alice@staff.test")[-1]
    assert "is approved" in told.text
    assert "Fine by me." in told.text

    form["decision"] = "reject"
    async with http.post(approve_url.split("?")[0], data=form) as response:
        assert response.status == 400, "a nonce is spent once"


async def test_the_decision_can_be_changed_for_a_while_then_stands(
    start_daemon: StartDaemon,
    relay_sink: RelaySink,
    clock: ManualClock,
    tmp_path: Path,
    http: aiohttp.ClientSession,
) -> None:
    running, request = await _requested(start_daemon, relay_sink, clock, tmp_path)
    _, reject_url = _links(request)
    url = reject_url.split("?")[0]
    for decision in ("approve", "reject"):
        async with http.get(url) as response:
            nonce = page_nonce(await response.text())
        clock.advance(timedelta(seconds=3))
        async with http.post(url, data={"nonce": nonce, "decision": decision}) as response:
            assert response.status == 200
    assert (await _approval(running)).state is ApprovalState.REJECTED
    actions = [h.action for h in await all_rows(running.app, History)]
    assert actions.count("approval_decided") == 1
    assert actions.count("approval_changed") == 1
    clock.advance(timedelta(minutes=11))
    async with http.get(url) as response:
        page = await response.text()
    assert response.status == 200
    assert "Already decided" in page
    assert "rejected" in page
    assert 'name="nonce"' not in page


async def test_a_wrong_token_is_a_plain_404(
    start_daemon: StartDaemon, http: aiohttp.ClientSession
) -> None:
    running = await start_daemon()
    base = running.app.config.web.base_url
    for method in (http.get, http.post):
        async with method(f"{base}/approval/not-a-token") as response:
            assert response.status == 404
            body = await response.text()
        assert "approval" not in body.lower()


async def test_an_expired_link_says_so_and_the_requester_is_told(
    start_daemon: StartDaemon,
    relay_sink: RelaySink,
    clock: ManualClock,
    tmp_path: Path,
    http: aiohttp.ClientSession,
) -> None:
    running, request = await _requested(start_daemon, relay_sink, clock, tmp_path)
    approve_url, _ = _links(request)
    clock.advance(timedelta(days=7, seconds=1))
    async with http.get(approve_url) as response:
        assert response.status == 410
        assert "expired" in await response.text()
    assert await sweep(running.app) >= 1
    assert (await _approval(running)).state is ApprovalState.EXPIRED
    await relay_sink.wait_for(4)
    assert "is expired" in relay_sink.to("alice@staff.test")[-1].text
    assert await sweep(running.app) == 0, "expired once"


async def test_a_post_from_another_site_or_without_a_nonce_decides_nothing(
    start_daemon: StartDaemon,
    relay_sink: RelaySink,
    clock: ManualClock,
    tmp_path: Path,
    http: aiohttp.ClientSession,
) -> None:
    running, request = await _requested(start_daemon, relay_sink, clock, tmp_path)
    url = _links(request)[0].split("?")[0]
    async with http.get(url) as response:
        nonce = page_nonce(await response.text())
    clock.advance(timedelta(seconds=3))
    forged = {"nonce": nonce, "decision": "approve"}
    async with http.post(url, data=forged, headers={"Origin": "https://evil.test"}) as response:
        assert response.status == 400
        assert "another site" in await response.text()
    async with http.post(url, data={"decision": "approve"}) as response:
        assert response.status == 400
    async with http.post(url, data={"nonce": "made-up", "decision": "approve"}) as response:
        assert response.status == 400
    assert (await _approval(running)).state is ApprovalState.PENDING


async def test_the_approver_may_reply_instead(
    start_daemon: StartDaemon, relay_sink: RelaySink, clock: ManualClock, tmp_path: Path
) -> None:
    running, request = await _requested(start_daemon, relay_sink, clock, tmp_path)
    reply = build_message(
        sender=APPROVER,
        to=reply_address(request),
        subject="Re: approval",
        body="REJECT\nToo expensive this month.\n\n> Approve: ...",
    )
    assert (await smtp_send(running.port, reply, mail_from=APPROVER))[0] == 250
    approval = await _approval(running)
    assert (approval.state, approval.decided_via, approval.comment) == (
        ApprovalState.REJECTED,
        "email",
        "Too expensive this month.",
    )
    assert (await get_ticket(running.app, 1)).status != "resolved"
    # Someone else on the same address decides nothing.
    forged = build_message(sender="mallory@evil.test", to=reply_address(request), body="APPROVE")
    await smtp_send(running.port, forged, mail_from="mallory@evil.test")
    assert (await _approval(running)).state is ApprovalState.REJECTED


async def test_a_question_in_reply_decides_nothing(
    start_daemon: StartDaemon, relay_sink: RelaySink, clock: ManualClock, tmp_path: Path
) -> None:
    running, request = await _requested(start_daemon, relay_sink, clock, tmp_path)
    for n, body in enumerate(["Approve? I'd rather ask finance first.", "Approvers: ask Sue."]):
        reply = build_message(
            sender=APPROVER,
            to=reply_address(request),
            subject="Re: approval",
            body=body,
            message_id=f"<q{n}@corp.test>",
        )
        assert (await smtp_send(running.port, reply, mail_from=APPROVER))[0] == 250

    assert (await _approval(running)).state is ApprovalState.PENDING


async def test_healthz(start_daemon: StartDaemon, http: aiohttp.ClientSession) -> None:
    running = await start_daemon()
    async with http.get(f"{running.app.config.web.base_url}/healthz") as response:
        assert response.status == 200
        assert await response.json() == {"status": "ok"}
