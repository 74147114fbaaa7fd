"""A throwaway Dovecot per test (skipped, with the reason, where it is not installed)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.dovecot import DOVECOT, PASSWORD, USER, Dovecot


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    if DOVECOT is None:
        pytest.skip("dovecot is not installed (Debian package dovecot-imapd; .ci/run installs it)")
    # Outside pytest's tmp_path: Dovecot's mail processes run as `mail` and must reach it.
    root = Path(tempfile.mkdtemp(prefix="mailflow-dovecot-"))
    root.chmod(0o755)
    server = Dovecot(root)
    server.start()
    yield server
    server.stop(wait=False)
    shutil.rmtree(root, ignore_errors=True)


def imap_settings(server: Dovecot, **account: Any) -> dict[str, Any]:
    settings = {
        "name": "support-box",
        "host": "127.0.0.1",
        "port": server.port,
        "security": "none",
        "username": USER,
        "password": PASSWORD,
        "poll_interval": "0.5s",
        "timeout": "10s",
    }
    return {"imap": [{**settings, **account}]}
