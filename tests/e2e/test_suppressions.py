"""The suppression list from the command line: a complaint shows there with its reason; an
administrator clears it (automatic mail flows again) or adds an address (it stops)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from mailflow.db.models import OutboxMessage
from tests.conftest import RelaySink, StartDaemon
from tests.e2e.test_realmail import deliver, first_mail, sample
from tests.support import all_rows, build_message, mailflow_cli, smtp_send


def _config(tmp_path: Path, database_url: str) -> Path:
    config = tmp_path / "cli.toml"
    config.write_text(f'[database]\nurl = "{database_url}"\n')
    return config


async def test_complaint_is_listed_and_clearing_it_lets_automatic_mail_go_again(
    start_daemon: StartDaemon, relay_sink: RelaySink, tmp_path: Path, database_url: str
) -> None:
    running = await start_daemon()
    ours = await first_mail(running, relay_sink)
    await deliver(running, sample("feedback", "aol-arf.eml", ours))
    config = _config(tmp_path, database_url)

    listed = await mailflow_cli(config, "suppression", "list", "--format", "csv")
    assert listed.exit_code == 0, listed.output
    (row,) = csv.DictReader(io.StringIO(listed.output))
    assert row["address"] == "bob@customer.test"
    assert row["reason"] == "complaint (abuse) about outbox 1 by return path"

    await smtp_send(running.port, build_message(subject="Second question"))
    assert len(await all_rows(running.app, OutboxMessage)) == 1, "held back while listed"

    cleared = await mailflow_cli(config, "suppression", "clear", "bob@customer.test")
    assert cleared.output == "bob@customer.test: cleared\n"
    await smtp_send(running.port, build_message(subject="Third question"))
    assert len(await all_rows(running.app, OutboxMessage)) == 2, "answered again"
    again = await mailflow_cli(config, "suppression", "clear", "bob@customer.test")
    assert again.output == "bob@customer.test: was not suppressed\n"


async def test_address_added_by_hand_gets_no_automatic_mail(
    start_daemon: StartDaemon, relay_sink: RelaySink, tmp_path: Path, database_url: str
) -> None:
    running = await start_daemon()
    config = _config(tmp_path, database_url)
    added = await mailflow_cli(
        config, "suppression", "add", "Bob@Customer.test", "--reason", "asked"
    )
    assert added.output == "bob@customer.test: suppressed\n"
    assert (await mailflow_cli(config, "suppression", "add", "not an address")).exit_code == 2

    await smtp_send(running.port, build_message())
    assert await all_rows(running.app, OutboxMessage) == []
