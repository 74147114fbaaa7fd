"""Factory fixtures: a database per test (SQLite, or PostgreSQL when MAILFLOW_TEST_DATABASE_URL
is set), configurations, a relay sink, and daemons on free loopback ports."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import text

from mailflow import log
from mailflow.app import App
from mailflow.clock import ManualClock
from mailflow.config import Config, from_mapping
from mailflow.daemon import Daemon
from mailflow.db import migrate
from mailflow.db.session import Database
from tests.dovecot import free_port

PG_URL_ENV = "MAILFLOW_TEST_DATABASE_URL"
PG_URL = os.environ.get(PG_URL_ENV)
needs_postgres = pytest.mark.skipif(
    not PG_URL, reason=f"set {PG_URL_ENV} to a PostgreSQL database to run this test"
)


def pytest_report_header() -> str:
    return f"mailflow database: {'PostgreSQL ' + (PG_URL or '') if PG_URL else 'SQLite'}"


@pytest.fixture(scope="session", autouse=True)
def quiet_logs() -> None:
    """As `mailflow run` configures its log: lines on standard error, here warnings only, so
    that a daemon running in the test's process never writes into a command's output."""
    log.configure("warning")


# ---------------------------------------------------------------------------- database


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for every test (migrating each time is slower)."""
    path = tmp_path_factory.mktemp("template") / "mailflow.db"

    async def build() -> None:
        db = Database(f"sqlite+aiosqlite:///{path}")
        await migrate.upgrade(db)
        await db.dispose()

    asyncio.run(build())
    return path


@pytest.fixture(scope="session")
def postgres_ready() -> bool:
    if not PG_URL:
        return False

    async def build() -> None:
        db = Database(PG_URL)
        async with db.engine.begin() as connection:
            await connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            await connection.execute(text("CREATE SCHEMA public"))
        await migrate.upgrade(db)
        await db.dispose()

    asyncio.run(build())
    return True


async def _truncate_postgres(url: str) -> None:
    db = Database(url)
    async with db.engine.begin() as connection:
        tables = (
            await connection.execute(
                text(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                    "AND tablename <> 'alembic_version'"
                )
            )
        ).scalars()
        names = ", ".join(f'"{name}"' for name in tables)
        if names:
            await connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    await db.dispose()


@pytest.fixture
def database_url(tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """An empty, migrated database for this test."""
    if PG_URL:
        request.getfixturevalue("postgres_ready")
        asyncio.run(_truncate_postgres(PG_URL))
        return PG_URL
    template: Path = request.getfixturevalue("sqlite_template")
    target = tmp_path / "var" / "mailflow.db"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(template, target)
    return f"sqlite+aiosqlite:///{target}"


# ---------------------------------------------------------------------------- configuration


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


MakeConfig = Callable[..., Config]


@pytest.fixture
def make_config(tmp_path: Path, database_url: str) -> MakeConfig:
    """Config for this test: its database, port 0 for SMTP, a maildir under tmp_path."""

    def make(settings: dict[str, Any] | None = None) -> Config:
        web = free_port()  # known before start: the approval links name it
        base: dict[str, Any] = {
            "database": {"url": database_url},
            "smtp": {"port": 0, "hostname": "mailflow.test"},
            "web": {"port": web, "base_url": f"http://127.0.0.1:{web}"},
            "outbox": {"maildir": str(tmp_path / "sent"), "poll_interval": "1s"},
            "instance": {"name": "Example Support"},
        }
        return from_mapping(_merge(base, settings or {}), "test.toml", tmp_path)

    return make


# ---------------------------------------------------------------------------- relay sink


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = message_from_bytes(self.raw, _class=EmailMessage, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed

    @property
    def text(self) -> str:
        body = self.message.get_body(("plain",))
        assert body is not None
        content = body.get_content()
        assert isinstance(content, str)
        return content

    @property
    def html(self) -> str | None:
        body = self.message.get_body(("html",))
        return None if body is None else str(body.get_content())


@dataclass
class RelaySink:
    """An aiosmtpd server standing in for the outgoing relay; `replies` scripts its answers."""

    port: int = 0
    received: list[Received] = field(default_factory=list)
    replies: list[str] = field(default_factory=list)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.replies:
            return self.replies.pop(0)
        raw = envelope.original_content or envelope.content
        assert isinstance(raw, bytes)
        async with self.changed:
            self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), raw))
            self.changed.notify_all()
        return "250 OK"

    async def wait_for(self, count: int, within: float = 10) -> list[Received]:
        """Wait until `count` messages in all have arrived; return them all."""
        async with self.changed:
            await asyncio.wait_for(
                self.changed.wait_for(lambda: len(self.received) >= count), within
            )
        return list(self.received)

    def to(self, address: str) -> list[Received]:
        return [r for r in self.received if address in r.rcpt_tos]

    @property
    def relay_settings(self) -> dict[str, Any]:
        return {"outbox": {"relay": {"host": "127.0.0.1", "port": self.port, "security": "none"}}}


@pytest.fixture
async def relay_sink() -> AsyncIterator[RelaySink]:
    sink = RelaySink()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(sink, hostname="sink.test", loop=loop), "127.0.0.1", 0
    )
    sink.port = server.sockets[0].getsockname()[1]
    yield sink
    server.close()
    await server.wait_closed()


# ---------------------------------------------------------------------------- daemons


@dataclass
class Running:
    daemon: Daemon

    @property
    def app(self) -> App:
        return self.daemon.app

    @property
    def port(self) -> int:
        assert self.daemon.smtp_address is not None
        return self.daemon.smtp_address[1]


StartDaemon = Callable[..., Awaitable[Running]]


@pytest.fixture
async def start_daemon(
    make_config: MakeConfig, relay_sink: RelaySink
) -> AsyncIterator[StartDaemon]:
    """Start a daemon in this test's loop, relaying to `relay_sink`; stopped at teardown."""
    running: list[Daemon] = []

    async def start(
        settings: dict[str, Any] | None = None, *, clock: ManualClock | None = None
    ) -> Running:
        config = make_config(_merge(relay_sink.relay_settings, settings or {}))
        daemon = Daemon(App(config, clock=clock))
        await daemon.start()
        running.append(daemon)
        return Running(daemon)

    yield start
    for daemon in running:
        if not daemon.stopped:
            await daemon.stop()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def tmp_cwd(tmp_path: Path) -> Iterator[Path]:
    previous = Path.cwd()
    os.chdir(tmp_path)
    yield tmp_path
    os.chdir(previous)
