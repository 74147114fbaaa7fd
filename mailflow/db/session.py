"""The database engine and the one way to open a transaction."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from mailflow.config import Config

# An execution option: the connection only reads (see Database.reading).
READ_ONLY = "mailflow_read_only"


class DatabaseUnavailable(Exception):
    """The database cannot be reached or written; the caller should ask the sender to retry."""


class Database:
    """Owns the engine. On SQLite, write transactions of this process queue on one lock and
    take the write lock at BEGIN (IMMEDIATE), so a read-then-write transaction never fails
    on a stale snapshot; busy_timeout covers other processes."""

    def __init__(self, url: str, *, echo: bool = False, busy_timeout: float = 30.0) -> None:
        self.url = make_url(async_url(url))
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        options: dict[str, Any] = {"echo": echo}
        if not self.is_sqlite:
            options.update(pool_pre_ping=True, pool_size=10, max_overflow=10)
        self.engine: AsyncEngine = create_async_engine(self.url, **options)
        if self.is_sqlite:
            _configure_sqlite(self.engine, int(busy_timeout * 1000))
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._write_lock = asyncio.Lock() if self.is_sqlite else None

    @classmethod
    def from_config(cls, config: Config) -> Database:
        settings = config.database
        return cls(
            config.database_url,
            echo=settings.echo,
            busy_timeout=settings.busy_timeout.total_seconds(),
        )

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session in a transaction: committed on success, rolled back on any exception."""
        async with self._serialised(), self.sessions() as session:
            try:
                async with session.begin():
                    yield session
            except DBAPIError as exc:
                if exc.connection_invalidated or _is_unavailable(exc):
                    raise DatabaseUnavailable(str(exc.orig)) from exc
                raise
            except OSError as exc:
                raise DatabaseUnavailable(str(exc)) from exc

    async def ping(self) -> None:
        """Answers when the database does, without waiting for a writer: no write lock is
        asked for (SQLite readers in WAL mode never wait), for /healthz."""
        async with self.engine.connect() as connection:
            await connection.execution_options(**{READ_ONLY: True})
            await connection.execute(text("SELECT 1"))

    @contextlib.asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncSession]:
        """A session that only reads, for lists: on SQLite a deferred transaction, so a long
        list streaming out does not hold the write lock the daemon needs."""
        async with self.engine.connect() as connection:
            await connection.execution_options(**{READ_ONLY: True})
            async with AsyncSession(bind=connection) as session, session.begin():
                yield session

    @contextlib.asynccontextmanager
    async def _serialised(self) -> AsyncIterator[None]:
        if self._write_lock is None:
            yield
            return
        async with self._write_lock:
            yield

    def create_directory(self) -> None:
        """SQLite creates the file but not its directory (./var on first start)."""
        if self.is_sqlite and self.url.database and self.url.database != ":memory:":
            path = Path(self.url.database)
            if path.is_dir():  # said before connecting: SQLite only says "unable to open"
                raise DatabaseUnavailable(f"{path} is a directory, not an SQLite database file")
            path.parent.mkdir(parents=True, exist_ok=True)

    async def dispose(self) -> None:
        await self.engine.dispose()


def async_url(url: str) -> str:
    """postgresql:// means asyncpg here; SQLAlchemy would otherwise pick psycopg."""
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+asyncpg://" + url.removeprefix(plain)
    return url


def _is_unavailable(exc: DBAPIError) -> bool:
    text = str(exc.orig).lower()
    return any(
        phrase in text
        for phrase in (
            "database is locked",
            "unable to open database",
            "disk i/o error",
            "database or disk is full",
            "connection",
            "the database system is",
            "readonly database",
        )
    )


def _configure_sqlite(engine: AsyncEngine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide where transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        reading = connection.get_execution_options().get(READ_ONLY)
        connection.exec_driver_sql("BEGIN" if reading else "BEGIN IMMEDIATE")
