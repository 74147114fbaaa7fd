"""XOAUTH2 logins: the token comes from a command, run anew at every login."""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import tempfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar
from urllib.parse import parse_qs

import pytest

from mailflow.db.models import Ticket
from tests.conftest import StartDaemon
from tests.dovecot import DOVECOT, USER, Dovecot
from tests.support import all_rows, build_message, wait_until

VALID_TOKEN = "ya29.valid-token"


class Introspection(BaseHTTPRequestHandler):
    """RFC 7662 token introspection, as Dovecot's oauth2 passdb asks it."""

    seen: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        token = parse_qs(self.rfile.read(length).decode()).get("token", [""])[0]
        Introspection.seen.append(token)
        body = {"active": token == VALID_TOKEN, "username": USER}
        payload = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def oauth_dovecot() -> Iterator[Dovecot]:
    if DOVECOT is None:
        pytest.skip("dovecot is not installed (Debian package dovecot-imapd; .ci/run installs it)")
    http = ThreadingHTTPServer(("127.0.0.1", 0), Introspection)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    root = Path(tempfile.mkdtemp(prefix="mailflow-dovecot-"))
    root.chmod(0o755)
    server = Dovecot(root, introspection_url=f"http://127.0.0.1:{http.server_port}/introspect")
    server.start()
    yield server
    server.stop(wait=False)
    http.shutdown()
    http.server_close()
    shutil.rmtree(root, ignore_errors=True)


async def test_imap_login_with_an_oauth2_token_from_a_command(
    start_daemon: StartDaemon, oauth_dovecot: Dovecot, tmp_path: Path
) -> None:
    await asyncio.to_thread(oauth_dovecot.append, build_message().as_bytes())
    token_command = f"{sys.executable} -c \"print('{VALID_TOKEN}')\""
    running = await start_daemon(
        {
            "imap": [
                {
                    "name": "box",
                    "host": "127.0.0.1",
                    "port": oauth_dovecot.port,
                    "security": "none",
                    "username": USER,
                    "oauth2_token_command": token_command,
                    "poll_interval": "0.5s",
                }
            ]
        }
    )

    async def arrived() -> bool:
        return len(await all_rows(running.app, Ticket)) == 1

    await wait_until(arrived)
    assert VALID_TOKEN in Introspection.seen
