"""Deliveries the relay took, on disk before the next one starts, until the database has them.

The database records a batch of deliveries in one transaction, which on SQLite waits behind
incoming mail. A process killed in that wait used to send the whole batch again once the lease
ran out. Each 250 is now appended here and fsynced first (a millisecond, not a transaction), and
entries left by a killed process are put in the database at the next start: only deliveries
whose SMTP transaction was in flight at the kill can be sent twice.

Each process writes a file of its own, locked while it runs, so that several daemons sharing
the directory never take one another's entries; a file nobody holds is a dead process's.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import structlog

from mailflow.durable import sync_directory

log = structlog.get_logger(__name__)

SUFFIX = ".journal"


@dataclass(frozen=True, slots=True)
class Delivered:
    """One mail the relay accepted: its outbox row, what the relay said, whom it refused."""

    outbox_id: int
    message_id: str
    note: str
    refused: tuple[tuple[str, int, str], ...] = ()

    def line(self) -> bytes:
        fields = [self.outbox_id, self.message_id, self.note, [list(r) for r in self.refused]]
        return json.dumps(fields, ensure_ascii=True).encode() + b"\n"

    @classmethod
    def read(cls, line: bytes) -> Delivered | None:
        """None for a line cut short by the kill."""
        try:
            outbox_id, message_id, note, refused = json.loads(line)
            return cls(int(outbox_id), str(message_id), str(note), tuple(tuple(r) for r in refused))
        except (ValueError, TypeError):
            return None


class Journal:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._fd: int | None = None
        self._path: Path | None = None
        self._lock = asyncio.Lock()
        self._outstanding = 0  # entries written and not yet in the database

    def open(self) -> list[tuple[Path, list[Delivered]]]:
        """Start a file of our own; return the entries of every file no process holds."""
        self.directory.mkdir(parents=True, exist_ok=True)
        orphans = [(path, entries) for path in self._unheld() for entries in [_entries(path)]]
        self._path = self.directory / f"{os.getpid()}-{uuid.uuid4().hex[:8]}{SUFFIX}"
        self._fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        sync_directory(self.directory)
        return orphans

    def _unheld(self) -> list[Path]:
        found = []
        for path in sorted(self.directory.glob(f"*{SUFFIX}")):
            with path.open("rb") as handle:
                try:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # a live process's
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            found.append(path)
        return found

    async def write(self, delivered: Delivered) -> None:
        """Appended and on disk when this returns."""
        assert self._fd is not None, "journal not open"
        fd = self._fd
        async with self._lock:
            await asyncio.to_thread(_append, fd, delivered.line())
            self._outstanding += 1

    def settled(self, count: int) -> None:
        """`count` entries are in the database; once none is left, the file starts over."""
        self._outstanding = max(self._outstanding - count, 0)
        if self._outstanding == 0 and self._fd is not None:
            os.ftruncate(self._fd, 0)

    def close(self) -> None:
        """At a clean stop: the file goes if nothing in it is still outstanding."""
        if self._fd is None:
            return
        os.close(self._fd)
        self._fd = None
        if self._outstanding == 0 and self._path is not None:
            self._path.unlink(missing_ok=True)


def _append(fd: int, line: bytes) -> None:
    os.write(fd, line)
    os.fdatasync(fd)


def _entries(path: Path) -> list[Delivered]:
    lines = path.read_bytes().splitlines()
    return [entry for line in lines if (entry := Delivered.read(line)) is not None]


def forget(path: Path) -> None:
    """A dead process's file, once its entries are in the database."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
