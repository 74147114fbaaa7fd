"""Crash benchmark: SIGKILL the daemon during load, several times, and count what it cost.

    .venv/bin/python bench/crash.py --messages 2000 --kills 3
    .venv/bin/python bench/crash.py --database-url postgresql://postgres@127.0.0.1:5432/test

The daemon is a real `mailflow run` subprocess; its outgoing mail goes to a real aiosmtpd
relay sink in this process, which counts every mail by Message-ID. This process is also the
load generator: C connections share N messages and send each one until it gets a 250, through
every kill (a message whose 250 was lost is sent again, as an MTA would). At each kill point
the sink kills the daemon with SIGKILL the moment the (2 × concurrency + 1)th outgoing mail
after it reaches the relay, that is in the middle of a run of deliveries, with others in
flight; the daemon is started again at once. At the end the script
waits until every queued mail has been delivered, stops the daemon with SIGTERM and counts:

- lost: messages that got a 250 and are not in the database (must be 0);
- stored twice: messages kept as two messages or tickets (must be 0);
- sent twice: mails the relay received more than once, per kill (at most `concurrency` each:
  only the deliveries whose SMTP transaction was in flight can be sent again).

tests/e2e/test_faults_crash.py runs the same code at a size CI can run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import sqlite3
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import aiosmtplib
import asyncpg  # type: ignore[import-untyped]
from aiosmtpd.smtp import SMTP, Envelope, Session

if not __package__:  # run as a script: the repository root, so that `bench` imports
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.ingest import (
    Mail,
    _asyncpg_dsn,
    _reset_postgres,
    compose,
    free_port,
    is_postgres,
    mailflow_argv,
)
from bench.ingest import write_config as ingest_config

HOST = "127.0.0.1"
SUPPORT = "support@example.com"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
# A kill point waits this long for the outgoing mail to kill on, then kills anyway.
KILL_WAIT = 5.0
# How long the queued mail may take to go out after the last restart.
SETTLE_TIMEOUT = 120.0


@dataclass
class Sink:
    """The outgoing relay: keeps each mail's Message-ID and the kill it came after, and kills
    the daemon on the next mail once armed."""

    received: list[tuple[str, int]] = field(default_factory=list)
    kills: int = 0
    # Mails still to come before the kill; 0: not armed.
    countdown: int = 0
    fired: asyncio.Event = field(default_factory=asyncio.Event)
    pid: int = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content
        assert isinstance(raw, bytes)
        message = message_from_bytes(raw, policy=policy.default)
        self.received.append((str(message["Message-ID"]).strip("<> "), self.kills))
        if self.countdown:
            self.countdown -= 1
            if not self.countdown:
                os.kill(self.pid, signal.SIGKILL)  # with this delivery and its peers in flight
                self.fired.set()
        return "250 OK"


@dataclass(frozen=True, slots=True)
class Report:
    database: str
    messages: int
    kills: int
    concurrency: int
    clients: int
    seconds: float
    acknowledged: int
    lost: int
    stored_twice: int
    outbox: int
    outbox_unsent: int
    relay_received: int
    sent_twice_per_kill: list[int]
    sent_twice: int
    # Mail the relay got once or more: every outbox row must be among them.
    never_sent: int

    @property
    def verified(self) -> bool:
        return (
            self.acknowledged == self.messages
            and self.lost == 0
            and self.stored_twice == 0
            and self.outbox_unsent == 0
            and self.never_sent == 0
            and all(n <= self.concurrency for n in self.sent_twice_per_kill)
        )


class Daemon:
    """`mailflow run` as a subprocess, started again after every kill."""

    def __init__(self, config: Path, port: int, log: Path) -> None:
        self.config, self.port, self.log = config, port, log
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> int:
        with self.log.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                *mailflow_argv(self.config),
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                env={k: v for k, v in os.environ.items() if k != "MAILFLOW_CONFIG"},
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.returncode is not None:
                raise RuntimeError(f"mailflow exited {self.process.returncode} on start")
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection(HOST, self.port)
                writer.close()
                return self.process.pid
            await asyncio.sleep(0.05)
        raise RuntimeError(f"mailflow not listening on {self.port} after {START_TIMEOUT:.0f}s")

    async def killed(self) -> None:
        assert self.process is not None
        await self.process.wait()

    async def stop(self) -> int:
        """SIGTERM; the exit status (SIGKILL after STOP_TIMEOUT counts as a failure)."""
        assert self.process is not None
        if self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), STOP_TIMEOUT)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
                return -1
        return self.process.returncode or 0


def write_config(
    directory: Path, port: int, relay_port: int, database_url: str, concurrency: int, lease: str
) -> Path:
    """bench/ingest.py's instance, its outbox going to the relay sink."""
    path = ingest_config(directory, port, database_url)
    maildir = '[outbox]\nmaildir = "var/sent"\n'
    text = path.read_text(encoding="utf-8")
    assert maildir in text
    outbox = (
        f'[outbox]\nconcurrency = {concurrency}\nlease = "{lease}"\npoll_interval = "1s"\n\n'
        f'[outbox.relay]\nhost = "{HOST}"\nport = {relay_port}\nsecurity = "none"\n'
    )
    path.write_text(text.replace(maildir, outbox), encoding="utf-8")
    return path


# ---------------------------------------------------------------------------- load


class Load:
    """C connections sending N messages, each until it gets a 250, whatever happens."""

    def __init__(self, port: int, mails: Sequence[Mail]) -> None:
        self.port = port
        self.pending = list(reversed(mails))
        self.acknowledged: list[str] = []
        self.refused: list[str] = []
        self._progress = asyncio.Condition()

    async def reached(self, count: int) -> None:
        async with self._progress:
            await self._progress.wait_for(lambda: len(self.acknowledged) >= count)

    async def run(self, clients: int) -> None:
        await asyncio.gather(*(self._client() for _ in range(clients)))

    async def _client(self) -> None:
        client: aiosmtplib.SMTP | None = None
        while self.pending:
            mail = self.pending.pop()
            while True:
                try:
                    client = client or await self._connect()
                    await client.rset()
                    await client.mail(mail.sender)
                    await client.rcpt(SUPPORT)
                    await client.data(mail.data)
                    async with self._progress:
                        self.acknowledged.append(_message_id(mail))
                        self._progress.notify_all()
                    break
                except aiosmtplib.SMTPResponseException as exc:
                    if exc.code < 500:  # 421 at a stop, 451: the same message again
                        client = await _drop(client)
                        continue
                    self.refused.append(f"{exc.code} {exc.message}")
                    break
                except (aiosmtplib.SMTPException, OSError):  # killed: reconnect, send again
                    client = await _drop(client)
        await _drop(client)

    async def _connect(self) -> aiosmtplib.SMTP:
        while True:
            client = aiosmtplib.SMTP(
                hostname=HOST, port=self.port, local_hostname="loadgen.localhost", timeout=60
            )
            try:
                await client.connect()
                await client.ehlo()
                return client
            except (aiosmtplib.SMTPException, OSError):
                await asyncio.sleep(0.05)


async def _drop(client: aiosmtplib.SMTP | None) -> None:
    if client is not None:
        client.close()


def _message_id(mail: Mail) -> str:
    headers = mail.data.split(b"\r\n\r\n", 1)[0]
    for line in headers.split(b"\r\n"):
        if line.lower().startswith(b"message-id:"):
            return line.split(b":", 1)[1].strip().strip(b"<>").decode()
    raise ValueError("message without a Message-ID")


# ---------------------------------------------------------------------------- database


async def query(url: str, query: str) -> list[tuple[Any, ...]]:
    if is_postgres(url):
        connection = await asyncpg.connect(_asyncpg_dsn(url))
        try:
            return [tuple(row) for row in await connection.fetch(query)]
        finally:
            await connection.close()
    path = url.partition(":///")[2]
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as connection:
        return list(connection.execute(query).fetchall())


async def _unsent(url: str) -> int:
    return int((await query(url, "SELECT count(*) FROM outbox WHERE state <> 'sent'"))[0][0])


# ---------------------------------------------------------------------------- the run


async def crash_run(
    *,
    database_url: str,
    directory: Path,
    messages: int,
    kills: int,
    concurrency: int = 4,
    clients: int = 8,
    lease: str = "3s",
) -> Report:
    """The whole experiment; the database must be empty and migrated (or migratable)."""
    run_id = uuid.uuid4().hex[:12]
    mails = [compose(index, run_id) for index in range(messages)]
    sink = Sink()
    loop = asyncio.get_running_loop()
    relay = await loop.create_server(
        lambda: SMTP(sink, hostname="relay.localhost", loop=loop), HOST, 0
    )
    port = free_port()
    config = write_config(
        directory, port, relay.sockets[0].getsockname()[1], database_url, concurrency, lease
    )
    daemon = Daemon(config, port, directory / "mailflow.log")
    started = time.perf_counter()
    try:
        sink.pid = await daemon.start()
        load = Load(port, mails)
        sending = asyncio.create_task(load.run(clients))
        for point in range(1, kills + 1):
            await load.reached(messages * point // (kills + 1))
            await _kill(sink, daemon, 2 * concurrency + 1)
            sink.pid = await daemon.start()
        await sending
        await _settled(database_url)
        status = await daemon.stop()
        if status != 0:
            raise RuntimeError(f"mailflow exited {status} after SIGTERM")
    finally:
        if daemon.process is not None and daemon.process.returncode is None:
            daemon.process.kill()
            await daemon.process.wait()
        relay.close()
        await relay.wait_closed()
    seconds = time.perf_counter() - started
    return await _count(database_url, sink, load, messages, kills, concurrency, clients, seconds)


async def _kill(sink: Sink, daemon: Daemon, after: int) -> None:
    """As the `after`th outgoing mail from now reaches the relay, or after KILL_WAIT."""
    sink.fired.clear()
    sink.countdown = after
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(sink.fired.wait(), KILL_WAIT)
    if sink.countdown:
        sink.countdown = 0
        os.kill(sink.pid, signal.SIGKILL)
    await daemon.killed()
    sink.kills += 1


async def _settled(url: str) -> None:
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while await _unsent(url) and time.monotonic() < deadline:  # noqa: ASYNC110  (another process)
        await asyncio.sleep(0.2)


async def _count(
    url: str,
    sink: Sink,
    load: Load,
    messages: int,
    kills: int,
    concurrency: int,
    clients: int,
    seconds: float,
) -> Report:
    kept = {row[0] for row in await query(url, "SELECT message_id FROM inbound_messages")}
    twice = await query(
        url,
        "SELECT message_id FROM messages WHERE direction = 'in' "
        "GROUP BY message_id HAVING count(*) > 1",
    )
    outbox = {row[0] for row in await query(url, "SELECT message_id FROM outbox")}
    copies = Counter(message_id for message_id, _ in sink.received)
    # Each copy after the first is charged to the kill it came after.
    seen: set[str] = set()
    per_kill = [0] * kills
    for message_id, after in sink.received:
        if message_id in seen and after > 0:
            per_kill[after - 1] += 1
        seen.add(message_id)
    return Report(
        database="postgresql" if is_postgres(url) else "sqlite",
        messages=messages,
        kills=kills,
        concurrency=concurrency,
        clients=clients,
        seconds=round(seconds, 1),
        acknowledged=len(set(load.acknowledged)),
        lost=len(set(load.acknowledged) - kept),
        stored_twice=len(twice),
        outbox=len(outbox),
        outbox_unsent=await _unsent(url),
        relay_received=len(sink.received),
        sent_twice_per_kill=per_kill,
        sent_twice=sum(n - 1 for n in copies.values()),
        never_sent=len(outbox - set(copies)),
    )


# ---------------------------------------------------------------------------- main


def table(report: Report) -> str:
    lines = [
        f"{report.database}: {report.messages} messages over {report.clients} connections, "
        f"{report.kills} kills, outbox concurrency {report.concurrency}, {report.seconds} s",
        f"acknowledged {report.acknowledged}, lost {report.lost}, "
        f"stored twice {report.stored_twice}",
        f"outbox {report.outbox} mails ({report.outbox_unsent} not sent by the end), "
        f"relay received {report.relay_received}, never sent {report.never_sent}",
        "sent twice, per kill: "
        + ", ".join(str(n) for n in report.sent_twice_per_kill)
        + f" (total {report.sent_twice}; at most {report.concurrency} per kill allowed)",
        "OK" if report.verified else "FAILED",
    ]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", "-n", type=int, default=2000)
    parser.add_argument("--kills", "-k", type=int, default=3)
    parser.add_argument("--clients", "-c", type=int, default=8, help="SMTP connections")
    parser.add_argument("--concurrency", type=int, default=4, help="[outbox] concurrency")
    parser.add_argument("--lease", default="3s", help="[outbox] lease")
    parser.add_argument(
        "--database-url",
        help="default: SQLite in a temporary directory; a PostgreSQL database's public schema "
        "is DROPPED and recreated first",
    )
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the directory and the log")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    directory = Path(tempfile.mkdtemp(prefix="mailflow-crash-"))
    url = args.database_url or f"sqlite+aiosqlite:///{directory / 'var' / 'mailflow.db'}"
    try:
        if is_postgres(url):
            asyncio.run(_reset_postgres(url))
        report = asyncio.run(
            crash_run(
                database_url=url,
                directory=directory,
                messages=args.messages,
                kills=args.kills,
                concurrency=args.concurrency,
                clients=args.clients,
                lease=args.lease,
            )
        )
    finally:
        if args.keep:
            print(f"kept {directory}", file=sys.stderr)
        else:
            shutil.rmtree(directory, ignore_errors=True)
    print(json.dumps(asdict(report), indent=2) if args.json else table(report))
    return 0 if report.verified else 1


if __name__ == "__main__":
    sys.exit(main())
