"""Logging in to the relay: a password, or an OAuth2 token (XOAUTH2) read at each login."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from mailflow.app import App
from mailflow.db.models import OutboxMessage, OutboxState
from tests.conftest import StartDaemon
from tests.support import all_rows, build_message, smtp_send, wait_until


@dataclass
class AuthSink:
    """A relay that insists on a login: PLAIN with a password, or XOAUTH2 with a token."""

    password: str = "relay-password"
    token: str = "token-1"
    port: int = 0
    logins: list[str] = field(default_factory=list)
    received: int = 0

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: object
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and data.password.decode() == self.password
        self.logins.append(f"{mechanism}:{'ok' if ok else 'refused'}")
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:
        fields = base64.b64decode(args[1]).decode().split("\x01")
        ok = f"auth=Bearer {self.token}" in fields
        self.logins.append(f"XOAUTH2:{'ok' if ok else 'refused'}")
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if not session.authenticated:
            return "530 5.7.0 Authentication required"
        self.received += 1
        return "250 OK"


@pytest.fixture
async def auth_sink() -> AsyncIterator[AuthSink]:
    sink = AuthSink()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(
            sink,
            hostname="relay.test",
            authenticator=sink.authenticate,
            auth_require_tls=False,
            loop=loop,
        ),
        "127.0.0.1",
        0,
    )
    sink.port = server.sockets[0].getsockname()[1]
    yield sink
    server.close()
    await server.wait_closed()


def _relay(sink: AuthSink, **login: str) -> dict[str, object]:
    return {
        "outbox": {
            "relay": {
                "host": "127.0.0.1",
                "port": sink.port,
                "security": "none",
                "username": "helpdesk@example.com",
                **login,
            }
        }
    }


async def _states(app: App) -> list[OutboxState]:
    return [row.state for row in await all_rows(app, OutboxMessage)]


async def test_password_login(start_daemon: StartDaemon, auth_sink: AuthSink) -> None:
    running = await start_daemon(_relay(auth_sink, password="relay-password"))
    await smtp_send(running.port, build_message())

    async def sent() -> bool:
        return await _states(running.app) == [OutboxState.SENT]

    await wait_until(sent)
    assert auth_sink.logins == ["PLAIN:ok"]


async def test_oauth2_token_is_read_again_at_each_login(
    start_daemon: StartDaemon, auth_sink: AuthSink, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("token-1\n")
    running = await start_daemon(_relay(auth_sink, oauth2_token_file=str(token_file)))
    await smtp_send(running.port, build_message(subject="one"))
    await wait_until(lambda: _all_sent(running.app, 1))
    token_file.write_text("token-2\n")
    auth_sink.token = "token-2"  # the provider rotated it; whatever refreshes the file did too
    await smtp_send(running.port, build_message(subject="two"))
    await wait_until(lambda: _all_sent(running.app, 2))
    assert auth_sink.logins == ["XOAUTH2:ok", "XOAUTH2:ok"]


async def _all_sent(app: App, count: int) -> bool:
    states = await _states(app)
    return len(states) == count and all(s is OutboxState.SENT for s in states)


async def test_a_refused_login_keeps_the_mail_for_later(
    start_daemon: StartDaemon, auth_sink: AuthSink
) -> None:
    running = await start_daemon(_relay(auth_sink, password="wrong"))
    await smtp_send(running.port, build_message())

    async def retried() -> bool:
        rows = await all_rows(running.app, OutboxMessage)
        return bool(rows) and rows[0].attempts == 1 and rows[0].state is OutboxState.PENDING

    await wait_until(retried)
    (row,) = await all_rows(running.app, OutboxMessage)
    assert "relay refused our login" in row.last_error
