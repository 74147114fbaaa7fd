"""Edge cases of approvals by emailed link and of the ticket's record, over real HTTP on
loopback and real SMTP: what an attacker tries and what an experienced administrator relies on."""

from __future__ import annotations

import asyncio
import csv
import io
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from mailflow.automation.sweep import sweep
from mailflow.clock import ManualClock
from mailflow.db.models import InboundMessage, InboundState, Ticket
from mailflow.db.record import (
    Activity,
    Approval,
    ApprovalNonce,
    ApprovalState,
    Resolution,
    TimeEntry,
)
from tests.conftest import Received, RelaySink, Running, StartDaemon
from tests.dovecot import free_port
from tests.support import (
    add_agent,
    all_rows,
    build_message,
    get_ticket,
    history_actions,
    mailflow_cli,
    page_nonce,
    reply_address,
    smtp_send,
)

APPROVER = "boss@corp.test"
AGENT = "alice@staff.test"


def cli_config(tmp_path: Path, database_url: str) -> Path:
    config = tmp_path / "cli.toml"
    config.write_text(f'[database]\nurl = "{database_url}"\n')
    return config


async def _ticket(
    start_daemon: StartDaemon,
    relay_sink: RelaySink,
    clock: ManualClock | None = None,
    settings: dict[str, Any] | None = None,
    subject: str = "Printer is on fire",
) -> tuple[Running, Received]:
    """Ticket 1 from Bob; Alice's notice of it (her signed reply address)."""
    running = await start_daemon(settings, clock=clock)
    await add_agent(running.app, AGENT, "Alice")
    await smtp_send(running.port, build_message(subject=subject))
    await relay_sink.wait_for(2)
    (notice,) = relay_sink.to(AGENT)
    return running, notice


async def _agent_says(running: Running, notice: Received, body: str) -> None:
    message = build_message(
        sender=AGENT, to=reply_address(notice), subject="Re: the ticket", body=body
    )
    assert (await smtp_send(running.port, message, mail_from=AGENT))[0] == 250


async def _ask(
    running: Running,
    relay_sink: RelaySink,
    notice: Received,
    approver: str = APPROVER,
    reason: str = "Refund of 40 EUR",
) -> Received:
    """Alice asks `approver`; the approver's mail with the links."""
    before = len(relay_sink.to(approver))
    await _agent_says(running, notice, f"#approval {approver} {reason}\n\nWe are asking.")
    for _ in range(200):
        if len(relay_sink.to(approver)) > before:
            break
        await asyncio.sleep(0.05)
    return relay_sink.to(approver)[-1]


async def _mail_to(relay_sink: RelaySink, address: str, count: int) -> list[Received]:
    """Wait until `address` has received `count` mails in all; return them."""
    for _ in range(400):
        if len(relay_sink.to(address)) >= count:
            break
        await asyncio.sleep(0.025)
    found = relay_sink.to(address)
    assert len(found) >= count, [m.message["Subject"] for m in found]
    return found


def _url(request: Received) -> str:
    found = re.search(r"Approve: (\S+)", request.text)
    assert found
    return found.group(1).split("?")[0]


async def _view(http: aiohttp.ClientSession, url: str) -> str:
    async with http.get(url) as response:
        assert response.status == 200
        return page_nonce(await response.text())


async def _read_for_a_while(
    start_daemon: StartDaemon,
    relay_sink: RelaySink,
    clock: ManualClock,
    http: aiohttp.ClientSession,
) -> tuple[Running, str, str]:
    """Ticket 1; Alice asks for an approval; the approver's page is shown and read for a
    few seconds: the link and the page's nonce, ready for a decision."""
    running, notice = await _ticket(start_daemon, relay_sink, clock)
    url = _url(await _ask(running, relay_sink, notice))
    nonce = await _view(http, url)
    clock.advance(timedelta(seconds=3))
    return running, url, nonce


async def _approvals(running: Running) -> list[Approval]:
    return await all_rows(running.app, Approval)


# ---------------------------------------------------------------------------- the link


async def test_a_nonce_from_another_approval_decides_nothing(
    start_daemon: StartDaemon,
    relay_sink: RelaySink,
    clock: ManualClock,
    http: aiohttp.ClientSession,
) -> None:
    running, notice = await _ticket(start_daemon, relay_sink, clock)
    first = _url(await _ask(running, relay_sink, notice, reason="Refund"))
    second = _url(await _ask(running, relay_sink, notice, "cfo@corp.test", "Discount"))
    assert first != second
    nonce_of_first = await _view(http, first)
    clock.advance(timedelta(seconds=5))
    async with http.post(second, data={"nonce": nonce_of_first, "decision": "approve"}) as r:
        assert r.status == 400
    assert [a.state for a in await _approvals(running)] == [ApprovalState.PENDING] * 2
    # The nonce still works where it was issued.
    async with http.post(first, data={"nonce": nonce_of_first, "decision": "reject"}) as r:
        assert r.status == 200
    states = [a.state for a in await _approvals(running)]
    assert states == [ApprovalState.REJECTED, ApprovalState.PENDING]


async def test_several_approvals_per_ticket_and_the_pending_list(
    start_daemon: StartDaemon,
    relay_sink: RelaySink,
    clock: ManualClock,
    http: aiohttp.ClientSession,
    tmp_path: Path,
    database_url: str,
) -> None:
    running, notice = await _ticket(start_daemon, relay_sink, clock)
    first = _url(await _ask(running, relay_sink, notice, reason="Refund"))
    await _ask(running, relay_sink, notice, "cfo@corp.test", "Discount")
    nonce = await _view(http, first)
    clock.advance(timedelta(seconds=3))
    async with http.post(first, data={"nonce": nonce, "decision": "approve"}) as r:
        assert r.status == 200
    config = cli_config(tmp_path, database_url)
    listed = await mailflow_cli(config, "approvals", "--pending", "--format", "csv")
    assert listed.exit_code == 0, listed.output
    rows = list(csv.DictReader(io.StringIO(listed.output)))
    assert [(r["ticket"], r["approver"], r["reason"]) for r in rows] == [
        ("1", "cfo@corp.test", "Discount")
    ]
    everything = await mailflow_cli(config, "approvals", "--format", "csv")
    assert len(list(csv.DictReader(io.StringIO(everything.output)))) == 2


async def test_a_page_decides_once_and_a_fresh_view_may_change_it(
    start_daemon: StartDaemon,
    relay_sink: RelaySink,
    clock: ManualClock,
    http: aiohttp.ClientSession,
) -> None:
    running, notice = await _ticket(start_daemon, relay_sink, clock)
    url = _url(await _ask(running, relay_sink, notice))
    one = await _view(http, url)
    clock.advance(timedelta(seconds=3))
    async with http.post(url, data={"nonce": one, "decision": "approve"}) as r:
        assert r.status == 200
    async with http.post(url, data={"nonce": one, "decision": "reject"}) as r:
        assert r.status == 400, "spent"
    assert (await _approvals(running))[0].state is ApprovalState.APPROVED
    two = await _view(http, url)
    assert two != one
    clock.advance(timedelta(seconds=3))
    async with http.post(url, data={"nonce": two, "decision": "reject"}) as r:
        assert r.status == 200, "a change of mind, within the window"
    assert (await _approvals(running))[0].state is ApprovalState.REJECTED


async def test_head_and_repeated_gets_decide_nothing(
    start_daemon: StartDaemon,
    relay_sink: RelaySink,
    clock: ManualClock,
    http: aiohttp.ClientSession,
) -> None:
    running, notice = await _ticket(start_daemon, relay_sink, clock)
    request = await _ask(running, relay_sink, notice)
    approve = re.search(r"Approve: (\S+)", request.text)
    assert approve
    for _ in range(3):
        async with http.head(approve.group(1)) as r:
            assert r.status == 200
        async with http.get(approve.group(1)) as r:
            assert r.status == 200
        clock.advance(timedelta(minutes=30))
    (approval,) = await _approvals(running)
    assert approval.state is ApprovalState.PENDING
    assert approval.decided_at is None
    assert "approval_decided" not in await history_actions(running.app, 1)


async def test_a_post_without_origin_still_needs_the_nonce_and_the_delay(
    start_daemon: StartDaemon,
    relay_sink: RelaySink,
    clock: ManualClock,
    http: aiohttp.ClientSession,
) -> None:
    running, notice = await _ticket(start_daemon, relay_sink, clock)
    url = _url(await _ask(running, relay_sink, notice))
    nonce = await _view(http, url)
    clock.advance(timedelta(seconds=1))
    async with http.post(url, data={"nonce": nonce, "decision": "approve"}) as r:
        assert r.status == 400
        again = page_nonce(await r.text())
    assert (await _approvals(running))[0].state is ApprovalState.PENDING
    async with http.post(url, data={"decision": "approve"}) as r:
        assert r.status == 400
        again = page_nonce(await r.text())
    clock.advance(timedelta(seconds=3))
    async with http.post(url, data={"nonce": again, "decision": "approve"}) as r:
        assert r.status == 200
    assert (await _approvals(running))[0].state is ApprovalState.APPROVED


@pytest.mark.parametrize(
    ("base_url", "origin"),
    [
        ("https://Help.Example.TEST", "https://help.example.test"),
        ("https://help.example.test:443", "https://help.example.test"),
    ],
    ids=["uppercase-host", "explicit-default-port"],
)
async def test_the_browser_origin_of_our_own_site_is_ours(
    start_daemon: StartDaemon,
    relay_sink: RelaySink,
    clock: ManualClock,
    http: aiohttp.ClientSession,
    base_url: str,
    origin: str,
) -> None:
    """A browser sends Origin in lowercase, without the scheme's default port; the base_url an
    administrator writes may have either. The approver's honest POST must not be refused."""
    port = free_port()
    running, notice = await _ticket(
        start_daemon, relay_sink, clock, {"web": {"port": port, "base_url": base_url}}
    )
    token = _url(await _ask(running, relay_sink, notice)).rsplit("/", 1)[1]
    url = f"http://127.0.0.1:{port}/approval/{token}"
    nonce = await _view(http, url)
    clock.advance(timedelta(seconds=3))
    async with http.post(
        url, data={"nonce": nonce, "decision": "approve"}, headers={"Origin": origin}
    ) as r:
        assert r.status == 200, await r.text()
    assert (await _approvals(running))[0].state is ApprovalState.APPROVED


async def test_after_the_change_window_a_held_form_changes_nothing(
    start_daemon: StartDaemon,
    relay_sink: RelaySink,
    clock: ManualClock,
    http: aiohttp.ClientSession,
) -> None:
    running, url, nonce = await _read_for_a_while(start_daemon, relay_sink, clock, http)
    async with http.post(url, data={"nonce": nonce, "decision": "approve"}) as r:
        assert r.status == 200
    held = await _view(http, url)  # the page, still open to a change of mind
    told = len(await _mail_to(relay_sink, AGENT, 2))
    clock.advance(timedelta(minutes=10, seconds=1))
    async with http.post(url, data={"nonce": held, "decision": "reject"}) as r:
        page = await r.text()
    assert "Already decided" in page
    assert "approved" in page
    (approval,) = await _approvals(running)
    assert approval.state is ApprovalState.APPROVED
    assert "approval_changed" not in await history_actions(running.app, 1)
    await asyncio.sleep(0.5)
    assert len(relay_sink.to(AGENT)) == told, "the requester is not told of a non-change"


async def test_a_comment_is_kept_escaped_everywhere(
    start_daemon: StartDaemon,
    relay_sink: RelaySink,
    clock: ManualClock,
    http: aiohttp.ClientSession,
) -> None:
    running, url, nonce = await _read_for_a_while(start_daemon, relay_sink, clock, http)
    comment = '</textarea><script>alert("x")</script><img src=x onerror=alert(1)>'
    form = {"nonce": nonce, "decision": "reject", "comment": comment}
    async with http.post(url, data=form) as r:
        assert r.status == 200
        thanks = await r.text()
    assert "<script>" not in thanks
    assert "&lt;script&gt;" in thanks
    async with http.get(url) as r:  # within the window: the form, comment prefilled
        again = await r.text()
    assert "<script>" not in again
    assert "</textarea><script>" not in again
    (approval,) = await _approvals(running)
    assert approval.comment == comment
    told = (await _mail_to(relay_sink, AGENT, 2))[-1]
    assert comment in told.text


async def test_a_decided_approval_past_its_expiry_still_shows_the_decision(
    start_daemon: StartDaemon,
    relay_sink: RelaySink,
    clock: ManualClock,
    http: aiohttp.ClientSession,
) -> None:
    running, url, nonce = await _read_for_a_while(start_daemon, relay_sink, clock, http)
    async with http.post(url, data={"nonce": nonce, "decision": "approve"}) as r:
        assert r.status == 200
    told = len(await _mail_to(relay_sink, AGENT, 2))
    clock.advance(timedelta(days=8))
    assert await sweep(running.app) == 0
    async with http.get(url) as r:
        assert r.status == 200
        page = await r.text()
    assert "Already decided" in page
    assert "expired" not in page
    assert (await _approvals(running))[0].state is ApprovalState.APPROVED
    await asyncio.sleep(0.5)
    assert len(relay_sink.to(AGENT)) == told, "no 'expired' notice for a decided approval"


async def test_an_expired_link_refuses_a_post_before_the_sweep(
    start_daemon: StartDaemon,
    relay_sink: RelaySink,
    clock: ManualClock,
    http: aiohttp.ClientSession,
) -> None:
    running, notice = await _ticket(
        start_daemon, relay_sink, clock, {"approvals": {"expire_after": "1h"}}
    )
    url = _url(await _ask(running, relay_sink, notice))
    nonce = await _view(http, url)
    clock.advance(timedelta(hours=1))
    async with http.post(url, data={"nonce": nonce, "decision": "approve"}) as r:
        assert r.status == 410
        assert "expired" in await r.text()
    assert (await _approvals(running))[0].state is ApprovalState.PENDING
    assert await sweep(running.app) == 1
    assert (await _approvals(running))[0].state is ApprovalState.EXPIRED
    async with http.get(url) as r:
        assert r.status == 410


async def test_wrong_tokens_reveal_nothing(
    start_daemon: StartDaemon,
    relay_sink: RelaySink,
    clock: ManualClock,
    http: aiohttp.ClientSession,
) -> None:
    running, notice = await _ticket(start_daemon, relay_sink, clock)
    url = _url(await _ask(running, relay_sink, notice))
    token = url.rsplit("/", 1)[1]
    base = running.app.config.web.base_url
    (approval,) = await _approvals(running)
    for wrong in (token[:-1], token.upper(), approval.token_hash, "1", token + "x"):
        async with http.get(f"{base}/approval/{wrong}") as r:
            assert r.status == 404, wrong
            body = await r.text()
        assert "Refund" not in body
        assert "approval" not in body.lower()
    async with http.get(url + "/") as r:
        assert r.status == 404


async def test_the_stored_hash_is_not_a_link(
    start_daemon: StartDaemon,
    relay_sink: RelaySink,
    clock: ManualClock,
) -> None:
    running, notice = await _ticket(start_daemon, relay_sink, clock)
    url = _url(await _ask(running, relay_sink, notice))
    token = url.rsplit("/", 1)[1]
    assert len(token) >= 40
    (approval,) = await _approvals(running)
    assert token not in approval.token_hash
    for nonce in await all_rows(running.app, ApprovalNonce):
        assert len(nonce.nonce_hash) == 64


# ---------------------------------------------------------------------------- by reply


async def test_the_approver_replies_from_a_differently_cased_address(
    start_daemon: StartDaemon, relay_sink: RelaySink, clock: ManualClock
) -> None:
    running, notice = await _ticket(start_daemon, relay_sink, clock)
    request = await _ask(running, relay_sink, notice)
    reply = build_message(
        sender="The Boss <Boss@Corp.TEST>",
        to=reply_address(request),
        subject="Re: approval",
        body="Approve\nGo ahead.",
    )
    assert (await smtp_send(running.port, reply, mail_from="Boss@Corp.TEST"))[0] == 250
    (approval,) = await _approvals(running)
    assert (approval.state, approval.comment) == (ApprovalState.APPROVED, "Go ahead.")


async def test_a_reply_after_expiry_decides_nothing(
    start_daemon: StartDaemon, relay_sink: RelaySink, clock: ManualClock
) -> None:
    running, notice = await _ticket(start_daemon, relay_sink, clock)
    request = await _ask(running, relay_sink, notice)
    clock.advance(timedelta(days=7))
    reply = build_message(sender=APPROVER, to=reply_address(request), body="APPROVE")
    assert (await smtp_send(running.port, reply, mail_from=APPROVER))[0] == 250
    assert (await _approvals(running))[0].state is ApprovalState.PENDING
    await sweep(running.app)
    assert (await _approvals(running))[0].state is ApprovalState.EXPIRED


async def test_a_forged_approver_on_another_approvals_address_decides_nothing(
    start_daemon: StartDaemon, relay_sink: RelaySink, clock: ManualClock
) -> None:
    """The CFO knows her own signed address; she cannot decide the boss's approval with it,
    nor by claiming to be the boss on it."""
    running, notice = await _ticket(start_daemon, relay_sink, clock)
    await _ask(running, relay_sink, notice, reason="Refund")
    cfo_request = await _ask(running, relay_sink, notice, "cfo@corp.test", "Discount")
    forged = build_message(sender=APPROVER, to=reply_address(cfo_request), body="APPROVE")
    assert (await smtp_send(running.port, forged, mail_from=APPROVER))[0] == 250
    assert [a.state for a in await _approvals(running)] == [ApprovalState.PENDING] * 2


async def test_an_agent_who_is_the_approver_may_reply(
    start_daemon: StartDaemon, relay_sink: RelaySink, clock: ManualClock
) -> None:
    running, notice = await _ticket(start_daemon, relay_sink, clock)
    await add_agent(running.app, "lead@staff.test", "Lead", notify=False)
    request = await _ask(running, relay_sink, notice, "lead@staff.test", "Refund")
    reply = build_message(sender="lead@staff.test", to=reply_address(request), body="REJECT")
    assert (await smtp_send(running.port, reply, mail_from="lead@staff.test"))[0] == 250
    assert (await _approvals(running))[0].state is ApprovalState.REJECTED


# ---------------------------------------------------------------------------- help centre


async def test_an_unpublished_resolution_is_not_in_the_help_centre(
    start_daemon: StartDaemon, relay_sink: RelaySink, http: aiohttp.ClientSession
) -> None:
    running, notice = await _ticket(start_daemon, relay_sink)
    await _agent_says(running, notice, "#resolution\n\nInternal: reset the admin password.")
    base = running.app.config.web.base_url
    async with http.get(f"{base}/kb/") as r:
        index = await r.text()
    assert "Nothing here yet." in index
    for slug in ("1-printer-is-on-fire", "1", "None", ""):
        async with http.get(f"{base}/kb/{slug}") as r:
            body = await r.text()
        assert "admin password" not in body, slug
    async with http.get(f"{base}/kb/1-printer-is-on-fire") as r:
        assert r.status == 404
    async with running.app.db.transaction() as session:
        resolution = await session.get(Resolution, 1)
        assert resolution is not None
        assert not resolution.published
    await asyncio.sleep(1)
    leaked = [m for m in relay_sink.to("bob@customer.test") if "admin password" in m.text]
    assert leaked == [], "without notify, the customer is not told"


async def test_help_centre_paths_do_not_escape(
    start_daemon: StartDaemon, relay_sink: RelaySink
) -> None:
    running, notice = await _ticket(start_daemon, relay_sink)
    await _agent_says(running, notice, "#resolution publish\n\nSwitch it off.")
    port = running.app.config.web.port

    def raw_get(path: str) -> bytes:
        import socket

        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(f"GET {path} HTTP/1.0\r\nHost: x\r\n\r\n".encode())
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks)

    for path in (
        "/kb/../healthz",
        "/kb/..%2f..%2fpyproject.toml",
        "/kb/%2e%2e/%2e%2e/etc/passwd",
        "/kb/..%5c..%5cREADME.md",
        "/kb/1-printer-is-on-fire%00",
        "/kb/1-printer-is-on-fire'%20OR%20'1'='1",
    ):
        answer = await asyncio.to_thread(raw_get, path)
        status = answer.split(b" ", 2)[1]
        assert status in (b"404", b"400", b"200"), (path, answer[:100])
        assert b"root:" not in answer
        assert b"[project]" not in answer
        if status == b"200":
            assert b'{"status": "ok"}' in answer or b"Switch it off." in answer, path


async def test_subjects_of_any_script_give_a_working_article(
    start_daemon: StartDaemon, relay_sink: RelaySink, http: aiohttp.ClientSession
) -> None:
    running, notice = await _ticket(start_daemon, relay_sink, subject="打印机着火了")
    await _agent_says(running, notice, "#resolution publish\n\nSwitch it off.")
    base = running.app.config.web.base_url
    async with http.get(f"{base}/kb/") as r:
        index = await r.text()
    found = re.search(r'href="(/kb/[^"]+)"', index)
    assert found
    assert "打印机着火了" in index
    async with http.get(base + found.group(1)) as r:
        assert r.status == 200
        assert "Switch it off." in await r.text()


async def test_purging_a_closed_ticket_takes_its_record_with_it(
    start_daemon: StartDaemon,
    relay_sink: RelaySink,
    http: aiohttp.ClientSession,
    tmp_path: Path,
    database_url: str,
) -> None:
    running, notice = await _ticket(start_daemon, relay_sink)
    config = cli_config(tmp_path, database_url)
    assert (await mailflow_cli(config, "group", "create", "billing")).exit_code == 0
    joined = await mailflow_cli(config, "group", "add-member", "billing", AGENT)
    assert joined.exit_code == 0, joined.output
    await _ask(running, relay_sink, notice)
    await _agent_says(
        running,
        notice,
        "#group billing\n#time 15m\n#resolution publish\n#status closed\n\nDone.",
    )
    assert (await get_ticket(running.app, 1)).status == "closed"
    purged = await mailflow_cli(config, "group", "delete", "billing", "--purge-closed")
    assert purged.exit_code == 0, (purged.output, purged.exception)
    assert "1 closed tickets deleted" in purged.output
    async with running.app.db.transaction() as session:
        assert await session.get(Ticket, 1) is None
    base = running.app.config.web.base_url
    async with http.get(f"{base}/kb/1-printer-is-on-fire") as r:
        assert r.status == 404, "a deleted ticket's article is gone"
    assert await all_rows(running.app, TimeEntry) == []
    assert await _approvals(running) == []
    assert await sweep(running.app) == 0, "nothing left to expire"


# ---------------------------------------------------------------------------- time


@pytest.mark.parametrize("amount", ["0m", "-5m", "10x", "0", "25h", "1h30"])
async def test_a_bad_time_is_refused_with_an_answer(
    start_daemon: StartDaemon, relay_sink: RelaySink, amount: str
) -> None:
    running, notice = await _ticket(start_daemon, relay_sink)
    await _agent_says(running, notice, f"#time {amount}\n\nOn it.")
    answer = (await _mail_to(relay_sink, AGENT, 2))[-1]
    assert "changed nothing" in answer.text
    assert repr(amount) in answer.text
    assert await all_rows(running.app, TimeEntry) == []
    assert len(relay_sink.to("bob@customer.test")) == 1, "the answer was not sent"


async def test_a_digit_like_character_is_refused_not_a_crash(
    start_daemon: StartDaemon, relay_sink: RelaySink
) -> None:
    running, notice = await _ticket(start_daemon, relay_sink)
    message = build_message(
        sender=AGENT, to=reply_address(notice), subject="Re: x", body="#time ²\n\nOn it."
    )
    code, _ = await smtp_send(running.port, message, mail_from=AGENT)
    assert code == 250
    quarantined = [
        i.reason
        for i in await all_rows(running.app, InboundMessage)
        if i.state is InboundState.QUARANTINED
    ]
    assert quarantined == []
    answer = (await _mail_to(relay_sink, AGENT, 2))[-1]
    assert "changed nothing" in answer.text
    assert await all_rows(running.app, TimeEntry) == []


@pytest.mark.parametrize("spent", ["²", "3000", "25h", "0m"])
async def test_the_time_command_refuses_what_mail_refuses_plainly(
    start_daemon: StartDaemon, relay_sink: RelaySink, tmp_path: Path, database_url: str, spent: str
) -> None:
    await _ticket(start_daemon, relay_sink)
    config = cli_config(tmp_path, database_url)
    result = await mailflow_cli(config, "time", "1", spent, "--agent", AGENT)
    assert result.exit_code == 2, (result.output, result.exception)
    assert "is not a time" in result.output


async def test_the_report_counts_whole_days_from_and_to(
    start_daemon: StartDaemon, relay_sink: RelaySink, tmp_path: Path, database_url: str
) -> None:
    clock = ManualClock(datetime(2026, 10, 31, 23, 58, tzinfo=UTC))
    running, notice = await _ticket(start_daemon, relay_sink, clock)
    moments_and_minutes = [
        (datetime(2026, 10, 31, 23, 59, 59, tzinfo=UTC), 1),  # before
        (datetime(2026, 11, 1, 0, 0, tzinfo=UTC), 10),  # first moment: in
        (datetime(2026, 11, 30, 23, 59, 59, tzinfo=UTC), 100),  # last moment: in
        (datetime(2026, 12, 1, 0, 0, tzinfo=UTC), 1000 % (24 * 60)),  # after
    ]
    for moment, minutes in moments_and_minutes:
        clock.advance(moment - clock.now())
        await _agent_says(running, notice, f"#time {minutes}m billable\n\nOn it.")
    entries = await all_rows(running.app, TimeEntry)
    assert [e.minutes for e in entries] == [m for _, m in moments_and_minutes]
    config = cli_config(tmp_path, database_url)
    november = ["report", "time", "--from", "2026-11-01", "--to", "2026-11-30"]
    for by, who in (
        ("agent", AGENT),
        ("customer", "bob@customer.test"),
        ("usergroup", "(none)"),
    ):
        result = await mailflow_cli(config, *november, "--by", by, "--csv")
        assert result.exit_code == 0, result.output
        assert list(csv.DictReader(io.StringIO(result.output))) == [
            {"by": who, "minutes": "110", "billable_minutes": "110", "hours": "1.83"}
        ]
    one_day = ["report", "time", "--from", "2026-11-30", "--to", "2026-11-30", "--by", "agent"]
    assert "100" in (await mailflow_cli(config, *one_day, "--csv")).output


# ---------------------------------------------------------------------------- activities


async def _cli_ticket(
    start_daemon: StartDaemon, relay_sink: RelaySink, tmp_path: Path, database_url: str
) -> tuple[Running, ManualClock, Path]:
    """A daemon whose clock starts at the real present: the CLI checks times against it."""
    clock = ManualClock(datetime.now(UTC).replace(microsecond=0))
    running, _ = await _ticket(start_daemon, relay_sink, clock)
    return running, clock, cli_config(tmp_path, database_url)


def _at(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M")


async def test_a_reminder_in_the_past_is_refused_clearly(
    start_daemon: StartDaemon, relay_sink: RelaySink, tmp_path: Path, database_url: str
) -> None:
    running, clock, config = await _cli_ticket(start_daemon, relay_sink, tmp_path, database_url)
    soon = clock.now() + timedelta(days=1)
    for at, remind in (
        (_at(soon), "2020-01-01 10:00"),
        ("2020-01-01 10:00", "2020-01-01 09:00"),
        ("2020-01-01 10:00", _at(soon)),
    ):
        result = await mailflow_cli(
            config, "activity", "add", "1", "--title", "Call", "--at", at,
            "--remind-at", remind, "--by", AGENT,
        )  # fmt: skip
        assert result.exit_code == 2, result.output
        assert "has passed" in result.output or "still to come" in result.output
        assert "Traceback" not in result.output
    assert await all_rows(running.app, Activity) == []
    past = await mailflow_cli(
        config, "activity", "add", "1", "--title", "Logged call", "--at",
        "2020-01-01 10:00", "--by", AGENT,
    )  # fmt: skip
    assert past.exit_code == 0, "a past activity without a reminder is a record, and fine"


async def test_a_reminder_after_the_activity_itself_is_refused(
    start_daemon: StartDaemon, relay_sink: RelaySink, tmp_path: Path, database_url: str
) -> None:
    running, clock, config = await _cli_ticket(start_daemon, relay_sink, tmp_path, database_url)
    at, remind = clock.now() + timedelta(days=1), clock.now() + timedelta(days=2)
    result = await mailflow_cli(
        config, "activity", "add", "1", "--kind", "call", "--title", "Call Bob",
        "--at", _at(at), "--remind-at", _at(remind), "--by", AGENT,
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert await all_rows(running.app, Activity) == []


async def test_reminders_go_to_the_owner_of_the_moment_once_and_not_when_done(
    start_daemon: StartDaemon, relay_sink: RelaySink, tmp_path: Path, database_url: str
) -> None:
    running, clock, config = await _cli_ticket(start_daemon, relay_sink, tmp_path, database_url)
    await add_agent(running.app, "carol@staff.test", "Carol", notify=False)
    now = clock.now()
    for title in ("Handed on", "Done early"):
        added = await mailflow_cli(
            config, "activity", "add", "1", "--kind", "call", "--title", title,
            "--at", _at(now + timedelta(hours=3)),
            "--remind-at", _at(now + timedelta(hours=2)), "--by", AGENT.upper(),
        )  # fmt: skip
        assert added.exit_code == 0, added.output
    handed, done = await all_rows(running.app, Activity)
    moved = await mailflow_cli(config, "activity", "owner", str(handed.id), "carol@staff.test")
    assert moved.exit_code == 0, moved.output
    assert (await mailflow_cli(config, "activity", "done", str(done.id))).exit_code == 0
    before = len(relay_sink.received)
    clock.advance(timedelta(hours=2, minutes=1))
    assert await sweep(running.app) >= 1
    (reminder,) = await _mail_to(relay_sink, "carol@staff.test", 1)
    assert "Handed on" in reminder.text
    await asyncio.sleep(0.5)
    assert len(relay_sink.received) == before + 1, "nothing for the activity done"
    clock.advance(timedelta(hours=5))
    assert await sweep(running.app) == 0
    listed = await mailflow_cli(config, "activity", "list", "--ticket", "1", "--open")
    assert "Handed on" in listed.output
    assert "Done early" not in listed.output


async def test_activity_times_with_an_offset_are_kept_in_utc(
    start_daemon: StartDaemon, relay_sink: RelaySink, tmp_path: Path, database_url: str
) -> None:
    running, clock, config = await _cli_ticket(start_daemon, relay_sink, tmp_path, database_url)
    day = (clock.now() + timedelta(days=30)).date()
    added = await mailflow_cli(
        config, "activity", "add", "1", "--title", "Visit",
        "--at", f"{day}T14:30+02:00", "--remind-at", f"{day}T06:00-05:00", "--by", AGENT,
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    (activity,) = await all_rows(running.app, Activity)
    assert activity.at.replace(tzinfo=UTC) == datetime.combine(day, datetime.min.time(), UTC) + (
        timedelta(hours=12, minutes=30)
    )
    assert activity.remind_at is not None
    assert activity.remind_at.replace(tzinfo=UTC) == datetime.combine(
        day, datetime.min.time(), UTC
    ) + timedelta(hours=11)


async def test_unknown_activities_and_tickets_are_plain_errors(
    start_daemon: StartDaemon, relay_sink: RelaySink, tmp_path: Path, database_url: str
) -> None:
    running, clock, config = await _cli_ticket(start_daemon, relay_sink, tmp_path, database_url)
    later = _at(clock.now() + timedelta(days=1))
    for args in (
        ("activity", "done", "99"),
        ("activity", "owner", "99", AGENT),
        ("activity", "add", "99", "--title", "x", "--at", later, "--by", AGENT),
        ("activity", "add", "1", "--title", "x", "--at", later, "--by", "nobody@x.test"),
        ("time", "99", "45m", "--agent", AGENT),
        ("resolve", "99", "--text", "x", "--agent", AGENT),
    ):
        result = await mailflow_cli(config, *args)
        assert result.exit_code == 1, (args, result.output, result.exception)
        assert result.output.startswith("Error: no "), (args, result.output)
    assert await all_rows(running.app, Activity) == []


async def test_an_activity_done_twice_keeps_its_first_time(
    start_daemon: StartDaemon, relay_sink: RelaySink, tmp_path: Path, database_url: str
) -> None:
    running, clock, config = await _cli_ticket(start_daemon, relay_sink, tmp_path, database_url)
    later = _at(clock.now() + timedelta(days=1))
    added = await mailflow_cli(
        config, "activity", "add", "1", "--title", "x", "--at", later, "--by", AGENT
    )
    assert added.exit_code == 0
    assert (await mailflow_cli(config, "activity", "done", "1")).exit_code == 0
    (first,) = await all_rows(running.app, Activity)
    await asyncio.sleep(1.1)
    await mailflow_cli(config, "activity", "done", "1")
    (second,) = await all_rows(running.app, Activity)
    assert second.done_at == first.done_at
    assert (await history_actions(running.app, 1)).count("activity_done") == 1


async def test_a_double_submitted_form_decides_once(
    start_daemon: StartDaemon,
    relay_sink: RelaySink,
    clock: ManualClock,
    http: aiohttp.ClientSession,
) -> None:
    """Forms sent at once with the same nonce: one decision, one notice."""
    running, url, nonce = await _read_for_a_while(start_daemon, relay_sink, clock, http)

    async def post(decision: str) -> int:
        async with http.post(url, data={"nonce": nonce, "decision": decision}) as r:
            await r.read()
            return r.status

    choices = ("approve", "reject", "approve")
    statuses = await asyncio.gather(*(post(d) for d in choices))
    actions = await history_actions(running.app, 1)
    assert actions.count("approval_decided") + actions.count("approval_changed") == 1
    (approval,) = await _approvals(running)
    taken = "approve" if approval.state is ApprovalState.APPROVED else "reject"
    expected = [200 if choice == taken else 400 for choice in choices]
    assert statuses == expected, "the same form again gets the same answer; another, a refusal"
