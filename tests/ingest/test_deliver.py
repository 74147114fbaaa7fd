"""`mailflow deliver`, as an MTA's pipe transport runs it: the exit status is the answer."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.dovecot import free_port
from tests.support import build_message

EX_OK, EX_DATAERR, EX_NOUSER, EX_TEMPFAIL = 0, 65, 67, 75


def deliver(config: Path, raw: bytes, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "from mailflow.cli import main; main()",
            "--config",
            str(config),
            "deliver",
            *args,
        ],
        input=raw,
        capture_output=True,
        timeout=60,
    )


@pytest.fixture
def config(tmp_path: Path, database_url: str) -> Path:
    path = tmp_path / "mailflow.toml"
    path.write_text(f'[database]\nurl = "{database_url}"\n[outbox]\nmaildir = "sent"\n')
    return path


def _tickets(config: Path) -> str:
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from mailflow.cli import main; main()",
            "--config",
            str(config),
            "tickets",
            "--view",
            "all",
            "--format",
            "csv",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result.stdout


def test_a_delivered_message_is_committed_before_exit_0(config: Path) -> None:
    raw = build_message().as_bytes()
    result = deliver(config, raw, "--recipient", "support@example.com", "--sender", "bob@c.test")
    assert result.returncode == EX_OK, result.stderr
    assert "Printer is on fire" in _tickets(config)


def test_an_unknown_recipient_is_a_permanent_failure(config: Path) -> None:
    result = deliver(config, build_message().as_bytes(), "--recipient", "nobody@example.com")
    assert result.returncode == EX_NOUSER
    assert b"no such mailbox here: nobody@example.com" in result.stderr


def test_an_empty_message_is_a_data_error(config: Path) -> None:
    result = deliver(config, b"", "--recipient", "support@example.com")
    assert result.returncode == EX_DATAERR


def test_a_quarantined_message_is_still_ours(config: Path) -> None:
    raw = b"To: support@example.com\r\nSubject: from nobody\r\n\r\nhi\r\n"
    result = deliver(config, raw, "--recipient", "support@example.com", "--sender", "")
    assert result.returncode == EX_OK, "kept in quarantine: the MTA must not retry"


def test_an_unreachable_database_asks_the_mta_to_retry(tmp_path: Path) -> None:
    path = tmp_path / "mailflow.toml"
    path.write_text(f'[database]\nurl = "postgresql://postgres@127.0.0.1:{free_port()}/x"\n')
    result = deliver(path, build_message().as_bytes(), "--recipient", "support@example.com")
    assert result.returncode == EX_TEMPFAIL
    assert b"try again later" in result.stderr
    assert b"Traceback" not in result.stderr
