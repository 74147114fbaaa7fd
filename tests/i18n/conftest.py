"""Shared steps of the language tests: a customer's mail with attachments, the CLI on the
daemon's database."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import pytest
from click.testing import Result

from tests.conftest import Received, RelaySink, Running
from tests.support import build_message, mailflow_cli, smtp_send, wait_until


def mail_from(
    address: str,
    body: str,
    *,
    subject: str = "Help",
    files: int = 0,
    to: str = "support@example.com",
) -> EmailMessage:
    """A customer's new mail, with `files` small attachments."""
    message = build_message(
        sender=address, to=to, subject=subject, body=body, message_id=make_msgid("client.test")
    )
    for number in range(files):
        message.add_attachment(
            f"log line {number}\n".encode(),
            maintype="text",
            subtype="plain",
            filename=f"log{number}.txt",
        )
    return message


async def write(
    running: Running, sink: RelaySink, address: str, body: str, **kwargs: object
) -> Received:
    """The customer writes a new ticket; the auto-reply that answers it."""
    message = mail_from(address, body, **kwargs)  # type: ignore[arg-type]
    sender = message["From"].addresses[0].addr_spec
    before = len(sink.to(sender))
    assert (await smtp_send(running.port, message, mail_from=sender))[0] == 250

    async def answered() -> bool:
        return len(sink.to(sender)) > before

    await wait_until(answered)
    return sink.to(sender)[-1]


class Cli:
    """`mailflow --config FILE …` on the test's database, as an administrator runs it."""

    def __init__(self, config: Path) -> None:
        self.config = config

    async def __call__(self, *args: str) -> Result:
        result = await mailflow_cli(self.config, *args)
        assert result.exit_code == 0, result.output
        return result


@pytest.fixture
def admin(tmp_path: Path, database_url: str) -> Cli:
    config = tmp_path / "cli.toml"
    config.write_text(f'[database]\nurl = "{database_url}"\n')
    return Cli(config)
