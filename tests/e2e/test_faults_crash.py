"""SIGKILL during load, three times: nothing acknowledged is lost or kept twice, and only the
deliveries in flight at a kill reach the relay twice. bench/crash.py has the bigger run."""

from __future__ import annotations

from pathlib import Path

from bench.crash import crash_run


async def test_kills_during_load_lose_nothing_and_resend_only_what_was_in_flight(
    tmp_path: Path, database_url: str
) -> None:
    report = await crash_run(database_url=database_url, directory=tmp_path, messages=200, kills=3)
    assert report.acknowledged == 200
    assert (report.lost, report.stored_twice) == (0, 0)
    assert (report.outbox_unsent, report.never_sent) == (0, 0), "every queued mail went out"
    assert report.outbox >= 200
    for resent in report.sent_twice_per_kill:
        assert resent <= report.concurrency, report
