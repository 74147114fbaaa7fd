"""Ingest benchmark: mailflow's SMTP intake against a bare aiosmtpd server, under one load.

    .venv/bin/python bench/ingest.py --messages 2000 --concurrency 8
    .venv/bin/python bench/ingest.py --database-url postgresql://postgres@127.0.0.1:5432/test

Both servers run as subprocesses on loopback, one after the other; this process is the load
generator. Two rates for mailflow: acknowledged (the last 250) and processed (the last
message's auto-reply in the outbox, polled every 50 ms). CPU per message counts every process
of the daemon's process group and, on PostgreSQL, the server backends of its database.
Absolute figures move by ±30 % between runs on a shared machine, so the figure to compare is
the ratio measured in one run, and CPU per message. After the mailflow run the database must
hold one ticket per message sent, or the script exits 1: a fast benchmark that loses mail
proves nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import itertools
import json
import os
import platform
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from email import policy
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path
from typing import Any

import aiosmtplib
import asyncpg  # type: ignore[import-untyped]

if not __package__:  # run as a script: the repository root, so that `bench` imports
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import fill, peer_helpdesk
from bench.measure import Backends, Memory, group_cpu, group_members
from bench.peer_helpdesk import DEFAULT_PEER_VENV

HOST = "127.0.0.1"
SUPPORT = "support@example.com"
CUSTOMER_DOMAIN = "customers.example.net"
BENCH_DIR = Path(__file__).resolve().parent
# Migrations run before mailflow listens; a cold start on a busy machine takes seconds.
START_TIMEOUT = 60.0
# mailflow drains messages under way and deliveries on SIGTERM; give it time before SIGKILL.
STOP_TIMEOUT = 30.0
TARGET_SIZE = 3 * 1024
# The outbox purpose of the shipped rule's auto-reply: its row is the end of processing.
AUTO_REPLY_PURPOSE = "customer/auto_reply"
# How often the load generator counts auto-replies, and samples PostgreSQL's backends.
POLL_INTERVAL = 0.05
BACKEND_INTERVAL = 0.25
# Processing that makes no progress for this long is lost mail, not a slow run.
STALL_TIMEOUT = 60.0

TOPICS = (
    "Printer driver will not install",
    "Invoice shows the wrong VAT number",
    "Cannot log in after password reset",
    "Delivery arrived damaged",
    "Refund not received yet",
    "Export to CSV loses accents",
    "Two-factor codes arrive late",
    "Question about the annual plan",
)

PARAGRAPHS = (
    "I am writing about the problem in the subject line. It started on Monday morning and "
    "has happened every day since, on two different computers in our office, so I do not "
    "think it is something on one machine only.",
    "What I did: I followed the steps in your help centre article, restarted everything, "
    "cleared the browser cache and tried again from a private window. The same error came "
    "back each time, with the message you can see copied below.",
    "Error as shown on screen: 'The operation could not be completed (code 0x80070005). "
    "Please try again later or contact support.' There was nothing else in the dialog, and "
    "the log file mentioned in the documentation was empty.",
    "This is blocking two people in our accounts team who need it for the month-end close, "
    "so I would be grateful for an answer this week. If a call is easier, I am available "
    "most afternoons between two and five, Central European Time.",
    "Our account is registered to the company address in the signature. We have been "
    "customers for about three years and have not had this issue before the latest update; "
    "if there is a way to go back to the previous version for now, that would help too.",
    "Please let me know if you need screenshots, the exact version numbers, or remote "
    "access to one of the machines. I can also forward the original order confirmation if "
    "that is useful for finding our records.",
)


@dataclass(frozen=True, slots=True)
class Mail:
    sender: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Result:
    server: str
    sent: int
    failed: int
    # Acknowledged: from the first RSET to the last 250.
    seconds: float
    msgs_per_s: float
    p50_ms: float
    p99_ms: float
    # CPU time per message answered, everything counted (the server's whole process group and,
    # on PostgreSQL, its database's backends), up to the processed point when there is one.
    server_cpu_ms: float
    client_cpu_ms: float
    # Processed: from the first RSET until every answered message's auto-reply was in the
    # outbox (mailflow only; None for a server that keeps nothing, or when it never got there).
    processed_seconds: float | None = None
    processed_msgs_per_s: float | None = None
    # The most answered messages seen waiting for processing at once (polled every 50 ms).
    max_backlog: int = 0
    # The two parts of server_cpu_ms.
    daemon_cpu_ms: float = 0.0
    database_cpu_ms: float = 0.0
    # The server's processes after the load: how many, their resident memory added up, and
    # the largest peak (VmHWM) of any one of them.
    processes: int = 1
    rss_mb: float = 0.0
    peak_rss_mb: float = 0.0


@dataclass(frozen=True, slots=True)
class Stored:
    """What this run added to mailflow's database: the proof that nothing was lost."""

    tickets: int
    inbound: int
    quarantined: int
    outbox: int
    # Auto-replies already delivered when the daemon stopped; the rest wait, durably queued.
    outbox_sent: int
    auto_replies: int


class ServerFailed(RuntimeError):
    """A server under test did not start, or died; its log says why."""


# ---------------------------------------------------------------------------- messages


def compose(index: int, run_id: str) -> Mail:
    """A realistic customer message from its own address and with its own subject, so that
    mailflow opens a new ticket for each one rather than threading them."""
    sender = f"customer{index:05d}@{CUSTOMER_DOMAIN}"
    message = EmailMessage(policy=policy.SMTP)
    message["From"] = f"Customer {index} <{sender}>"
    message["To"] = f"Example Support <{SUPPORT}>"
    message["Subject"] = f"{TOPICS[index % len(TOPICS)]} (order {100000 + index})"
    message["Date"] = formatdate(localtime=True)
    message["Message-ID"] = f"<{run_id}.{index}@{CUSTOMER_DOMAIN}>"
    message.set_content(_body(index))
    return Mail(sender, message.as_bytes())


def _body(index: int) -> str:
    """About TARGET_SIZE bytes of plain text, the size of an ordinary support request."""
    lines = ["Hello,", ""]
    turn = 0
    while sum(len(line) + 2 for line in lines) < TARGET_SIZE - 400:
        lines += [PARAGRAPHS[(index + turn) % len(PARAGRAPHS)], ""]
        turn += 1
    lines += ["Kind regards,", f"Customer {index}", "Example Trading Ltd, 1 Market Street"]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------- measuring


class Watch:
    """The load generator's look into mailflow's database while the load runs: how many
    auto-replies this run has queued, and (PostgreSQL) the CPU of the backends serving it."""

    def __init__(self, url: str, base: Base) -> None:
        self.url = url
        self.base = base
        self._sqlite: sqlite3.Connection | None = None
        self._pg: Any = None
        self.backends = Backends()
        # One query at a time on the connection: the poller and the clocks share it.
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        if is_postgres(self.url):
            self._pg = await asyncpg.connect(_asyncpg_dsn(self.url))
        else:
            path = self.url.partition(":///")[2]
            self._sqlite = sqlite3.connect(f"file:{path}?mode=ro", uri=True)

    async def close(self) -> None:
        if self._pg is not None:
            await self._pg.close()
        if self._sqlite is not None:
            self._sqlite.close()

    async def auto_replies(self) -> int:
        """Auto-replies queued by this run: a range scan above the ids that were there."""
        args = (self.base.outbox, AUTO_REPLY_PURPOSE)
        if self._pg is not None:
            async with self._lock:
                return int(await self._pg.fetchval(AUTO_REPLIES.format("$1", "$2"), *args))
        assert self._sqlite is not None
        return int(self._sqlite.execute(AUTO_REPLIES.format("?", "?"), args).fetchone()[0])

    async def sample_backends(self) -> None:
        if self._pg is not None:
            async with self._lock:
                await self.backends.sample(self._pg)

    def database_cpu(self) -> float:
        return self.backends.cpu()


@dataclass(frozen=True, slots=True)
class Clocks:
    """Wall time and CPU time of every side, read together at the start and end of a run."""

    wall: float
    client_cpu: float
    daemon_cpu: float
    database_cpu: float

    @classmethod
    async def read(cls, pgid: int, watch: Watch | None) -> Clocks:
        if watch is not None:
            await watch.sample_backends()
        database = watch.database_cpu() if watch is not None else 0.0
        return cls(time.perf_counter(), time.process_time(), group_cpu(pgid), database)


# ---------------------------------------------------------------------------- load


async def drive(
    port: int,
    mails: Sequence[Mail],
    concurrency: int,
    name: str,
    server_pid: int,
    watch: Watch | None = None,
    rate: float | None = None,
) -> Result:
    """Send every message over `concurrency` connections opened beforehand, so the clocks
    measure message traffic, not connection set-up. With a watch, go on until every answered
    message is processed; with a rate, release message i at i / rate seconds."""
    clients = await asyncio.gather(*(_connect(port) for _ in range(concurrency)))
    queue = iter(enumerate(mails))  # shared: each connection takes the next when it is free
    latencies: list[float] = []
    failures: list[str] = []
    backlog: list[int] = []
    start = await Clocks.read(server_pid, watch)
    processed: Clocks | None = None
    try:
        poller = None
        if watch is not None:
            poller = asyncio.create_task(_observe(watch, latencies, backlog))
        paced = _Pace(start.wall, rate)
        await asyncio.gather(*(_send_all(c, queue, paced, latencies, failures) for c in clients))
        acknowledged = await Clocks.read(server_pid, watch)
        if watch is not None:
            done = await _until_processed(watch, len(latencies))
            processed = await Clocks.read(server_pid, watch) if done else None
    finally:
        if poller is not None:
            poller.cancel()
        await asyncio.gather(*(_quit(c) for c in clients))
    for failure in sorted(set(failures)):
        _note(f"{name}: refused: {failure}")
    memory = Memory.read(server_pid)
    return _result(
        name,
        latencies,
        len(failures),
        start,
        acknowledged,
        processed,
        memory,
        max(backlog, default=0),
    )


@dataclass(frozen=True, slots=True)
class _Pace:
    start: float
    rate: float | None

    async def wait(self, index: int) -> None:
        if self.rate:
            await asyncio.sleep(max(0.0, self.start + index / self.rate - time.perf_counter()))


async def _observe(watch: Watch, answered: list[float], backlog: list[int]) -> None:
    """Through the load: every POLL_INTERVAL, how many answered messages wait to be processed;
    every BACKEND_INTERVAL, the backends' CPU (they come and go with the daemon's pool)."""
    every = max(1, round(BACKEND_INTERVAL / POLL_INTERVAL))
    for tick in itertools.count(1):
        await asyncio.sleep(POLL_INTERVAL)
        answered_now = len(answered)  # before the count: the backlog is never understated
        backlog.append(answered_now - await watch.auto_replies())
        if tick % every == 0:
            await watch.sample_backends()


async def _until_processed(watch: Watch, expected: int) -> bool:
    """Poll the outbox until this run's auto-replies number the messages answered; False when
    the count stops moving for STALL_TIMEOUT."""
    last, moved = -1, time.perf_counter()
    while True:
        count = await watch.auto_replies()
        if count >= expected:
            return True
        now = time.perf_counter()
        if count != last:
            last, moved = count, now
        elif now - moved > STALL_TIMEOUT:
            _note(f"processed: {count} of {expected} auto-replies, none for {STALL_TIMEOUT:.0f}s")
            return False
        await asyncio.sleep(POLL_INTERVAL)


async def _connect(port: int) -> aiosmtplib.SMTP:
    client = aiosmtplib.SMTP(
        hostname=HOST, port=port, local_hostname="loadgen.localhost", start_tls=False
    )
    await client.connect()
    await client.ehlo()
    return client


async def _send_all(
    client: aiosmtplib.SMTP,
    queue: Iterator[tuple[int, Mail]],
    pace: _Pace,
    latencies: list[float],
    failures: list[str],
) -> None:
    """RSET, MAIL, RCPT, DATA per message on one connection; the latency is DATA to 250."""
    for index, mail in queue:
        await pace.wait(index)
        try:
            await client.rset()
            await client.mail(mail.sender)
            await client.rcpt(SUPPORT)
            sent = time.perf_counter()
            await client.data(mail.data)
        except aiosmtplib.SMTPResponseException as exc:
            failures.append(f"{exc.code} {exc.message}")
            continue
        latencies.append(time.perf_counter() - sent)


async def _quit(client: aiosmtplib.SMTP) -> None:
    with contextlib.suppress(aiosmtplib.SMTPException):
        await client.quit()


def _result(
    name: str,
    latencies: list[float],
    failed: int,
    start: Clocks,
    acknowledged: Clocks,
    processed: Clocks | None,
    memory: Memory,
    backlog: int,
) -> Result:
    ordered = sorted(latencies)
    seconds = acknowledged.wall - start.wall
    answered = max(len(ordered), 1)
    # CPU up to the processed point when there is one: the work each message causes.
    end = processed or acknowledged

    def per_message(seconds: float) -> float:
        return round(seconds / answered * 1000, 2)

    daemon = end.daemon_cpu - start.daemon_cpu
    database = end.database_cpu - start.database_cpu
    processed_seconds = processed.wall - start.wall if processed else None
    return Result(
        server=name,
        sent=len(ordered),
        failed=failed,
        seconds=round(seconds, 3),
        msgs_per_s=round(len(ordered) / seconds, 1),
        p50_ms=round(percentile(ordered, 50) * 1000, 2),
        p99_ms=round(percentile(ordered, 99) * 1000, 2),
        server_cpu_ms=per_message(daemon + database),
        client_cpu_ms=per_message(end.client_cpu - start.client_cpu),
        processed_seconds=round(processed_seconds, 3) if processed_seconds else None,
        processed_msgs_per_s=(
            round(len(ordered) / processed_seconds, 1) if processed_seconds else None
        ),
        daemon_cpu_ms=per_message(daemon),
        database_cpu_ms=per_message(database),
        max_backlog=backlog,
        processes=memory.processes,
        rss_mb=memory.rss_mb,
        peak_rss_mb=memory.peak_rss_mb,
    )


def percentile(ordered: Sequence[float], pct: float) -> float:
    """Nearest rank: an observed latency, never an interpolated one."""
    if not ordered:
        return float("nan")
    rank = max(1, round(pct / 100 * len(ordered) + 0.5 - 1e-9))
    return ordered[min(rank, len(ordered)) - 1]


# ---------------------------------------------------------------------------- servers


def free_port() -> int:
    """A port the kernel just called free; the server binds it a moment later."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def running(argv: list[str], log_path: Path, port: int, cwd: Path) -> Iterator[int]:
    """The server's pid inside the block; it is stopped on the way out, whatever happened."""
    env = {k: v for k, v in os.environ.items() if k != "MAILFLOW_CONFIG"}
    with log_path.open("wb") as log:
        # Its own process group (pgid = pid), so that every process it forks is counted.
        process = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, cwd=cwd, env=env, start_new_session=True
        )
    try:
        _wait_for_port(port, process, log_path)
        yield process.pid
        code = _stop(process)
        if code != 0:
            raise ServerFailed(f"{argv[0]} exited {code} after SIGTERM\n{_tail(log_path)}")
    finally:
        _stop(process)
        _kill_leftovers(process.pid)


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if process.poll() is not None:
            raise ServerFailed(f"exited {process.returncode} on start\n{_tail(log_path)}")
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=1):
            return
        if time.monotonic() > deadline:
            raise ServerFailed(f"not listening on {port} after {START_TIMEOUT:.0f}s")
        time.sleep(0.05)


def _stop(process: subprocess.Popen[bytes]) -> int:
    """SIGTERM and a grace period, then SIGKILL; returns the exit status."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def _kill_leftovers(pgid: int) -> None:
    """Processes of the server's group still there after it exited: ours, and not to be left."""
    if group_members(pgid):
        _note(f"processes of group {pgid} outlived their parent; killing them")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)


def _tail(log_path: Path, lines: int = 30) -> str:
    return "\n".join(log_path.read_text(errors="replace").splitlines()[-lines:])


def _note(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- mailflow


def mailflow_argv(config: Path) -> list[str]:
    """The installed console script, as an administrator would run it."""
    script = Path(sys.executable).with_name("mailflow")
    if script.exists():
        return [str(script), "--config", str(config), "run"]
    entry = "from mailflow.cli import main; main()"
    return [sys.executable, "-c", entry, "--config", str(config), "run"]


def write_config(directory: Path, port: int, database_url: str) -> Path:
    """A throwaway instance: its own database, outbox maildir and secret, quiet logging."""
    (directory / "var").mkdir(exist_ok=True)
    path = directory / "mailflow.toml"
    path.write_text(
        "[instance]\n"
        'secret_file = "var/secret"\n\n'
        "[database]\n"
        f"url = {json.dumps(database_url)}\n\n"
        "[smtp]\n"
        f'host = "{HOST}"\n'
        f"port = {port}\n"
        'hostname = "mailflow.localhost"\n\n'
        "[outbox]\n"
        'maildir = "var/sent"\n\n'
        "[web]\n"
        "port = 0\n\n"
        "[log]\n"
        'level = "warning"\n',
        encoding="utf-8",
    )
    return path


def sqlite_url(directory: Path) -> str:
    return f"sqlite+aiosqlite:///{directory / 'var' / 'mailflow.db'}"


def bench_mailflow(
    mails: Sequence[Mail], args: argparse.Namespace, database_url: str, directory: Path
) -> tuple[Result, Stored, dict[str, Any] | None]:
    prepare_database(args, database_url)
    base = read_base(database_url)
    port = free_port()
    config = write_config(directory, port, database_url)
    log_path = directory / "mailflow.log"
    with running(mailflow_argv(config), log_path, port, directory) as pid:
        if args.agents:
            # The daemon has migrated the schema by the time it listens.
            asyncio.run(fill.add_agents(database_url, args.agents))
        with profiling(pid, args.profile):
            watch = Watch(database_url, base)
            result, large = asyncio.run(_drive_watched(port, mails, args, pid, watch))
    if log_path.stat().st_size:
        _note(f"mailflow logged warnings or errors:\n{_tail(log_path)}")
    return result, count_stored(database_url, base), large


async def _drive_watched(
    port: int, mails: Sequence[Mail], args: argparse.Namespace, pid: int, watch: Watch
) -> tuple[Result, dict[str, Any] | None]:
    await watch.open()
    try:
        result = await drive(port, mails, args.concurrency, "mailflow", pid, watch, args.rate)
        large = None
        if args.large_message:
            large = await send_large(port, pid, watch, args.large_message, result.sent)
        return result, large
    finally:
        await watch.close()


def large_mail(megabytes: float, run_id: str) -> Mail:
    """A customer's message of about `megabytes` MiB on the wire: a short text and an
    incompressible attachment, base64-encoded as mail clients send it."""
    sender = f"big-sender@{CUSTOMER_DOMAIN}"
    message = EmailMessage(policy=policy.SMTP)
    message["From"] = f"Big Sender <{sender}>"
    message["To"] = f"Example Support <{SUPPORT}>"
    message["Subject"] = "The scans you asked for"
    message["Date"] = formatdate(localtime=True)
    message["Message-ID"] = f"<{run_id}.large@{CUSTOMER_DOMAIN}>"
    message.set_content("Hello,\n\nthe scans are attached.\n\nRegards,\nBig Sender\n")
    payload = os.urandom(max(0, int(megabytes * 1024 * 1024 * 3 / 4) - 16 * 1024))
    message.add_attachment(payload, maintype="application", subtype="pdf", filename="scans.pdf")
    return Mail(sender, message.as_bytes())


async def send_large(
    port: int, pgid: int, watch: Watch, megabytes: float, before: int
) -> dict[str, Any]:
    """After the load: one large message, and how far it raises the daemon's peak RSS (the
    largest VmHWM of its processes) by the time its auto-reply is queued."""
    mail = large_mail(megabytes, uuid.uuid4().hex[:12])
    peak_before = Memory.read(pgid).peak_rss_mb
    client = await _connect(port)
    started = time.perf_counter()
    try:
        await client.sendmail(mail.sender, [SUPPORT], mail.data)
        accepted, answer = True, "250"
    except aiosmtplib.SMTPResponseException as exc:
        accepted, answer = False, f"{exc.code} {exc.message}"
    finally:
        await _quit(client)
    processed = accepted and await _until_processed(watch, before + 1)
    return {
        "bytes": len(mail.data),
        "accepted": accepted,
        "answer": answer,
        "processed": processed,
        "seconds": round(time.perf_counter() - started, 2),
        "peak_rss_before_mb": peak_before,
        "peak_rss_after_mb": Memory.read(pgid).peak_rss_mb,
    }


@contextlib.contextmanager
def profiling(pid: int, output: Path | None) -> Iterator[None]:
    """py-spy on the daemon and any process it forks, for the load and nothing else; its
    raw stacks go to `output` (bench/stages.py sums them up by stage)."""
    if output is None:
        yield
        return
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if spy is None:
        raise ServerFailed("--profile needs py-spy (.venv/bin/pip install py-spy)")
    argv = [spy, "record", "--pid", str(pid), "--rate", "250", "--threads", "--subprocesses"]
    argv += ["--format", "raw", "--output", str(output)]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(1.0)  # attached before the first message
    try:
        yield
    finally:
        process.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        _, errors = process.communicate(timeout=STOP_TIMEOUT)
        if not output.exists():
            _note(f"py-spy wrote nothing: {errors.decode(errors='replace')[-500:]}")


def prepare_database(args: argparse.Namespace, url: str) -> None:
    """An empty database, a copy of a filled one, or one filled now (bench/fill.py)."""
    if is_postgres(url) and not args.reuse_database:
        asyncio.run(_reset_postgres(url))
    if args.sqlite_file:
        target = Path(url.partition(":///")[2])
        target.parent.mkdir(parents=True, exist_ok=True)
        _note(f"copying {args.sqlite_file}")
        shutil.copyfile(args.sqlite_file, target)
    if args.prefill_tickets:
        _note(f"filling the database with {args.prefill_tickets} tickets")
        asyncio.run(fill.fill(url, args.prefill_tickets, analyze=args.analyze))


def bench_bare(mails: Sequence[Mail], args: argparse.Namespace, directory: Path) -> Result:
    port = free_port()
    argv = [sys.executable, str(BENCH_DIR / "bare_smtp.py"), str(port)]
    with running(argv, directory / "bare.log", port, directory) as pid:
        return asyncio.run(
            drive(port, mails, args.concurrency, "bare aiosmtpd", pid, None, args.rate)
        )


# ---------------------------------------------------------------------------- database

AUTO_REPLIES = "SELECT count(*) FROM outbox WHERE id > {} AND purpose = {}"


@dataclass(frozen=True, slots=True)
class Base:
    """The largest ids before the run: what the run adds is above them (a filled database)."""

    tickets: int = 0
    inbound: int = 0
    outbox: int = 0


BASE = (
    "SELECT (SELECT coalesce(max(id), 0) FROM tickets), "
    "(SELECT coalesce(max(id), 0) FROM inbound_messages), "
    "(SELECT coalesce(max(id), 0) FROM outbox)"
)
COUNTS = (
    "SELECT (SELECT count(*) FROM tickets WHERE id > {0}), "
    "(SELECT count(*) FROM inbound_messages WHERE id > {1}), "
    "(SELECT count(*) FROM inbound_messages WHERE id > {1} AND state = 'quarantined'), "
    "(SELECT count(*) FROM outbox WHERE id > {2}), "
    "(SELECT count(*) FROM outbox WHERE id > {2} AND state = 'sent'), "
    f"(SELECT count(*) FROM outbox WHERE id > {{2}} AND purpose = '{AUTO_REPLY_PURPOSE}')"
)


def is_postgres(url: str) -> bool:
    return url.startswith(("postgresql", "postgres:"))


def _asyncpg_dsn(url: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"postgresql://{rest}" if scheme.startswith("postgres") else url


async def _reset_postgres(url: str) -> None:
    """An empty schema, so the ticket count afterwards is this run's alone."""
    connection = await asyncpg.connect(_asyncpg_dsn(url))
    try:
        await connection.execute("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public")
    finally:
        await connection.close()


async def _query_postgres(url: str, query: str) -> tuple[int, ...] | None:
    connection = await asyncpg.connect(_asyncpg_dsn(url))
    try:
        row = await connection.fetchrow(query)
    except asyncpg.UndefinedTableError:
        return None
    finally:
        await connection.close()
    return tuple(row)


def _query_sqlite(url: str, query: str) -> tuple[int, ...] | None:
    path = url.partition(":///")[2]
    if not Path(path).exists():
        return None
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as connection:
        try:
            row: tuple[int, ...] = connection.execute(query).fetchone()
        except sqlite3.OperationalError:  # no such table: a database not yet migrated
            return None
    return row


def _query(url: str, query: str) -> tuple[int, ...] | None:
    return (
        asyncio.run(_query_postgres(url, query)) if is_postgres(url) else _query_sqlite(url, query)
    )


def read_base(url: str) -> Base:
    row = _query(url, BASE)
    return Base(*row) if row else Base()


def count_stored(url: str, base: Base) -> Stored:
    """Counted after the daemon has stopped, straight from the database it wrote."""
    row = _query(url, COUNTS.format(base.tickets, base.inbound, base.outbox))
    return Stored(*(row or (0,) * 6))


# ---------------------------------------------------------------------------- report


def report(
    args: argparse.Namespace,
    mails: Sequence[Mail],
    results: list[Result],
    stored: Stored,
    load: tuple[tuple[float, ...], tuple[float, ...]],
    peer: dict[str, Any] | None,
    large: dict[str, Any] | None = None,
) -> dict[str, Any]:
    mailflow, bare = results
    # The large message, when sent and taken, is one more ticket with its auto-reply.
    expected = args.messages + (1 if large and large["accepted"] else 0)
    return {
        "date": datetime.date.today().isoformat(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        # 1, 5 and 15 minute load averages before and after the run: how busy the machine was.
        "load_average": {"before": load[0], "after": load[1]},
        "messages": args.messages,
        "concurrency": args.concurrency,
        "rate": args.rate,
        "agents": args.agents,
        "prefilled_tickets": stored_before(args),
        "mean_message_bytes": round(sum(len(m.data) for m in mails) / len(mails)),
        "database": "postgresql" if is_postgres(args.database_url or "") else "sqlite",
        "results": [asdict(r) for r in results],
        "throughput_ratio": round(mailflow.msgs_per_s / bare.msgs_per_s, 3),
        "processed_ratio": (
            round(mailflow.processed_msgs_per_s / bare.msgs_per_s, 3)
            if mailflow.processed_msgs_per_s
            else None
        ),
        "stored": asdict(stored),
        "peer": peer,
        "large_message": large,
        "verified": verified(args.messages, expected, mailflow, stored)
        and (large is None or large["processed"] or not large["accepted"]),
    }


def stored_before(args: argparse.Namespace) -> str | int:
    if args.prefill_tickets:
        return int(args.prefill_tickets)
    if args.sqlite_file:
        return f"copy of {Path(args.sqlite_file).name}"
    return "reused" if args.reuse_database else 0


def verified(messages: int, expected: int, mailflow: Result, stored: Stored) -> bool:
    """Every message answered 250, and each one is a ticket with its auto-reply queued."""
    return (
        mailflow.sent == messages
        and stored.tickets == expected
        and stored.quarantined == 0
        and stored.auto_replies == expected
        and mailflow.processed_seconds is not None
    )


def _optional(value: float | None, width: int) -> str:
    return f"{value:>{width}.1f}" if value is not None else f"{'-':>{width}}"


def table(data: dict[str, Any]) -> str:
    load = data["load_average"]
    lines = [
        f"{data['date']}  {data['machine']['cpus']} cpus  N={data['messages']} "
        f"C={data['concurrency']}  ~{data['mean_message_bytes']} B/msg  {data['database']}"
        + (f"  rate={data['rate']}/s" if data["rate"] else "")
        + (f"  agents={data['agents']}" if data["agents"] else "")
        + (f"  prefilled={data['prefilled_tickets']}" if data["prefilled_tickets"] else ""),
        f"load average before {load['before'][0]:.2f}, after {load['after'][0]:.2f}",
        "",
        f"{'server':<14} {'ack msgs/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'wall s':>7}"
        f" {'refused':>7} {'processed/s':>11} {'backlog':>7} {'CPU ms/msg':>10} {'(daemon':>8}"
        f" {'db)':>6} {'client':>6} {'procs':>5} {'RSS MB':>7} {'peak MB':>7}",
    ]
    for r in data["results"]:
        lines.append(
            f"{r['server']:<14} {r['msgs_per_s']:>10.1f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f}"
            f" {r['seconds']:>7.2f} {r['failed']:>7} {_optional(r['processed_msgs_per_s'], 11)}"
            f" {r.get('max_backlog', '-') if r['processed_msgs_per_s'] else '-':>7}"
            f" {r['server_cpu_ms']:>10.2f} {r['daemon_cpu_ms']:>8.2f} {r['database_cpu_ms']:>6.2f}"
            f" {r['client_cpu_ms']:>6.2f} {r['processes']:>5} {r['rss_mb']:>7.1f}"
            f" {r['peak_rss_mb']:>7.1f}"
        )
    peer = data["peer"]
    if peer:
        lines.append(
            f"{peer['server']:<14} {'-':>10} {'-':>8} {'-':>8} {peer['seconds']:>7.2f}"
            f" {peer['messages'] - peer['tickets']:>7} {peer['tickets_per_s']:>11.1f} {'-':>7}"
            f" {peer['cpu_ms']:>10.2f} {peer['process_cpu_ms']:>8.2f}"
            f" {peer['database_cpu_ms']:>6.2f} {'-':>6} {'-':>5} {'-':>7}"
            f" {peer['peak_rss_mb']:>7.1f}"
        )
    stored = data["stored"]
    lines += [
        "",
        f"throughput mailflow/bare: acknowledged {data['throughput_ratio']:.3f}, processed "
        + (f"{data['processed_ratio']:.3f}" if data["processed_ratio"] is not None else "-"),
        f"stored: {stored['tickets']} tickets, {stored['inbound']} inbound "
        f"({stored['quarantined']} quarantined), {stored['auto_replies']} auto-replies, "
        f"{stored['outbox']} outbox rows ({stored['outbox_sent']} sent by the end)"
        f"  -> {'OK' if data['verified'] else 'MISMATCH'}",
    ]
    large = data.get("large_message")
    if large:
        lines.append(
            f"large message: {large['bytes'] / 1024 / 1024:.1f} MiB, answered {large['answer']}"
            f", processed {large['processed']} in {large['seconds']} s; peak RSS "
            f"{large['peak_rss_before_mb']} -> {large['peak_rss_after_mb']} MB"
        )
    if peer:
        ratio = data["results"][0]["server_cpu_ms"] / peer["cpu_ms"] if peer["cpu_ms"] else 0
        lines.append(
            f"peer: {peer['tickets']} of {peer['messages']} tickets, {peer['mails_sent']} mails "
            f"sent; mailflow's CPU per message is {ratio:.2f}x the peer's"
        )
    return "\n".join(lines)


# ---------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", "-n", type=int, default=2000, help="messages per server")
    parser.add_argument("--concurrency", "-c", type=int, default=8, help="SMTP connections")
    parser.add_argument(
        "--rate",
        type=float,
        help="release the messages at this many per second (default: as fast as answered)",
    )
    parser.add_argument(
        "--database-url",
        help="mailflow's database (default: SQLite in a temporary directory); a PostgreSQL "
        "database's public schema is DROPPED and recreated first",
    )
    parser.add_argument(
        "--agents", type=int, default=0, help="agents to create before the load (all notified)"
    )
    parser.add_argument(
        "--prefill-tickets",
        type=int,
        default=0,
        help="fill the database with this many tickets first (bench/fill.py)",
    )
    parser.add_argument(
        "--analyze",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="after --prefill-tickets, gather planner statistics (default: on PostgreSQL only)",
    )
    parser.add_argument(
        "--sqlite-file",
        type=Path,
        help="start from a copy of this SQLite database (one filled by bench/fill.py)",
    )
    parser.add_argument(
        "--reuse-database",
        action="store_true",
        help="with --database-url: keep its contents (filled by bench/fill.py) instead of "
        "dropping the schema; the run's rows are counted above the ids already there",
    )
    parser.add_argument(
        "--peer",
        action="store_true",
        help="also feed the same messages to django-helpdesk's get_email (bench/peer_helpdesk.py)",
    )
    parser.add_argument(
        "--peer-venv",
        type=Path,
        default=DEFAULT_PEER_VENV,
        help="where the peer's throwaway virtualenv lives (created on first use)",
    )
    parser.add_argument(
        "--large-message",
        type=float,
        metavar="MIB",
        help="after the load, send one message of this many MiB and report the daemon's peak "
        "RSS before and after it (mailflow's default size limit is 25 MiB)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="record py-spy's raw stacks of the daemon during the load to this file "
        "(see bench/stages.py); the run's figures then include py-spy's pauses",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument(
        "--show",
        type=Path,
        nargs="+",
        metavar="JSON",
        help="print results saved with --json as the table, and run nothing",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the working directory (config, SQLite database, outbox maildir, logs)",
    )
    args = parser.parse_args(argv)
    if args.messages < 1 or args.concurrency < 1:
        parser.error("--messages and --concurrency must be at least 1")
    if args.reuse_database and not args.database_url:
        parser.error("--reuse-database needs --database-url")
    if args.sqlite_file and (args.database_url or not args.sqlite_file.is_file()):
        parser.error("--sqlite-file takes an existing SQLite file, and no --database-url")
    if args.prefill_tickets and (args.sqlite_file or args.reuse_database):
        parser.error("--prefill-tickets fills an empty database: not with a reused one")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.show:
        print("\n\n".join(table(json.loads(path.read_text())) for path in args.show))
        return 0
    run_id = uuid.uuid4().hex[:12]
    mails = [compose(i, run_id) for i in range(args.messages)]
    directory = Path(tempfile.mkdtemp(prefix="mailflow-bench-"))
    load_before = os.getloadavg()
    peer = None
    try:
        url = args.database_url or sqlite_url(directory)
        _note(f"mailflow: {args.messages} messages over {args.concurrency} connections")
        mailflow, stored, large = bench_mailflow(mails, args, url, directory)
        _note("bare aiosmtpd: the same load")
        bare = bench_bare(mails, args, directory)
        if args.peer:
            _note("django-helpdesk get_email: the same messages")
            peer = peer_helpdesk.run(
                [m.data for m in mails], args.peer_venv, directory / "peer", args.database_url
            )
    except (ServerFailed, peer_helpdesk.PeerFailed) as exc:
        _note(f"ingest: {exc}")
        return 2
    finally:
        if args.keep:
            _note(f"kept {directory}")
        else:
            shutil.rmtree(directory, ignore_errors=True)
    load = (load_before, os.getloadavg())
    data = report(args, mails, [mailflow, bare], stored, load, peer, large)
    print(json.dumps(data, indent=2) if args.json else table(data))
    return 0 if data["verified"] else 1


if __name__ == "__main__":
    sys.exit(main())
