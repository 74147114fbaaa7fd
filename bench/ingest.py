"""Ingest benchmark: mailflow's SMTP intake against a bare aiosmtpd server, under one load.

    .venv/bin/python bench/ingest.py --messages 2000 --concurrency 8
    .venv/bin/python bench/ingest.py --database-url postgresql://postgres@127.0.0.1:5432/test

Both servers run as subprocesses on loopback, one after the other; this process is the load
generator. Absolute figures move by ±30 % between runs on a shared machine, so the figure to
compare is the ratio measured in one run. After the mailflow run the database must hold one
ticket per message sent, or the script exits 1: a fast benchmark that loses mail proves nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import os
import platform
import shutil
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

HOST = "127.0.0.1"
SUPPORT = "support@example.com"
CUSTOMER_DOMAIN = "customers.example.net"
BENCH_DIR = Path(__file__).resolve().parent
# Migrations run before mailflow listens; a cold start on a busy machine takes seconds.
START_TIMEOUT = 60.0
# mailflow drains messages under way and deliveries on SIGTERM; give it time before SIGKILL.
STOP_TIMEOUT = 30.0
TARGET_SIZE = 3 * 1024

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
    seconds: float
    msgs_per_s: float
    p50_ms: float
    p99_ms: float
    # CPU time per message answered, all threads: the server's, and this load generator's.
    server_cpu_ms: float
    client_cpu_ms: float


@dataclass(frozen=True, slots=True)
class Stored:
    """What mailflow's database holds after the run: the proof that nothing was lost."""

    tickets: int
    inbound: int
    quarantined: int
    outbox: int
    # Auto-replies already delivered when the daemon stopped; the rest wait, durably queued.
    outbox_sent: int


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


# ---------------------------------------------------------------------------- load


@dataclass(frozen=True, slots=True)
class Clocks:
    """Wall time and CPU time of both sides, read together at the start and end of a run."""

    wall: float
    client_cpu: float
    server_cpu: float

    @classmethod
    def read(cls, server_pid: int) -> Clocks:
        return cls(time.perf_counter(), time.process_time(), cpu_seconds(server_pid))


async def drive(
    port: int, mails: Sequence[Mail], concurrency: int, name: str, server_pid: int
) -> Result:
    """Send every message over `concurrency` connections opened beforehand, so the clocks
    measure message traffic, not connection set-up."""
    clients = await asyncio.gather(*(_connect(port) for _ in range(concurrency)))
    queue = iter(mails)  # shared: each connection takes the next message when it is free
    latencies: list[float] = []
    failures: list[str] = []
    start = Clocks.read(server_pid)
    try:
        await asyncio.gather(*(_send_all(c, queue, latencies, failures) for c in clients))
        end = Clocks.read(server_pid)
    finally:
        await asyncio.gather(*(_quit(c) for c in clients))
    for failure in sorted(set(failures)):
        _note(f"{name}: refused: {failure}")
    return _result(name, latencies, len(failures), start, end)


async def _connect(port: int) -> aiosmtplib.SMTP:
    client = aiosmtplib.SMTP(
        hostname=HOST, port=port, local_hostname="loadgen.localhost", start_tls=False
    )
    await client.connect()
    await client.ehlo()
    return client


async def _send_all(
    client: aiosmtplib.SMTP, queue: Iterator[Mail], latencies: list[float], failures: list[str]
) -> None:
    """RSET, MAIL, RCPT, DATA per message on one connection; the latency is DATA to 250."""
    for mail in queue:
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


def _result(name: str, latencies: list[float], failed: int, start: Clocks, end: Clocks) -> Result:
    ordered = sorted(latencies)
    seconds = end.wall - start.wall
    answered = max(len(ordered), 1)
    return Result(
        server=name,
        sent=len(ordered),
        failed=failed,
        seconds=round(seconds, 3),
        msgs_per_s=round(len(ordered) / seconds, 1),
        p50_ms=round(percentile(ordered, 50) * 1000, 2),
        p99_ms=round(percentile(ordered, 99) * 1000, 2),
        server_cpu_ms=round((end.server_cpu - start.server_cpu) / answered * 1000, 2),
        client_cpu_ms=round((end.client_cpu - start.client_cpu) / answered * 1000, 2),
    )


def percentile(ordered: Sequence[float], pct: float) -> float:
    """Nearest rank: an observed latency, never an interpolated one."""
    if not ordered:
        return float("nan")
    rank = max(1, round(pct / 100 * len(ordered) + 0.5 - 1e-9))
    return ordered[min(rank, len(ordered)) - 1]


def cpu_seconds(pid: int) -> float:
    """User plus system CPU of a process, all its threads (Linux /proc); NaN elsewhere."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return float("nan")
    # Fields after the command name, which is in parentheses and may contain spaces.
    fields = stat.rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=cwd, env=env)
    try:
        _wait_for_port(port, process, log_path)
        yield process.pid
        code = _stop(process)
        if code != 0:
            raise ServerFailed(f"{argv[0]} exited {code} after SIGTERM\n{_tail(log_path)}")
    finally:
        _stop(process)


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
    mails: Sequence[Mail], concurrency: int, database_url: str, directory: Path
) -> tuple[Result, Stored]:
    if is_postgres(database_url):
        asyncio.run(_reset_postgres(database_url))
    port = free_port()
    config = write_config(directory, port, database_url)
    log_path = directory / "mailflow.log"
    with running(mailflow_argv(config), log_path, port, directory) as pid:
        result = asyncio.run(drive(port, mails, concurrency, "mailflow", pid))
    if log_path.stat().st_size:
        _note(f"mailflow logged warnings or errors:\n{_tail(log_path)}")
    return result, count_stored(database_url)


def bench_bare(mails: Sequence[Mail], concurrency: int, directory: Path) -> Result:
    port = free_port()
    argv = [sys.executable, str(BENCH_DIR / "bare_smtp.py"), str(port)]
    with running(argv, directory / "bare.log", port, directory) as pid:
        return asyncio.run(drive(port, mails, concurrency, "bare aiosmtpd", pid))


# ---------------------------------------------------------------------------- database

COUNTS = (
    "SELECT (SELECT count(*) FROM tickets), (SELECT count(*) FROM inbound_messages), "
    "(SELECT count(*) FROM inbound_messages WHERE state = 'quarantined'), "
    "(SELECT count(*) FROM outbox), (SELECT count(*) FROM outbox WHERE state = 'sent')"
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


async def _count_postgres(url: str) -> tuple[int, ...]:
    connection = await asyncpg.connect(_asyncpg_dsn(url))
    try:
        row = await connection.fetchrow(COUNTS)
    finally:
        await connection.close()
    return tuple(row)


def _count_sqlite(url: str) -> tuple[int, ...]:
    path = url.partition(":///")[2]
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as connection:
        row: tuple[int, ...] = connection.execute(COUNTS).fetchone()
    return row


def count_stored(url: str) -> Stored:
    """Counted after the daemon has stopped, straight from the database it wrote."""
    row = asyncio.run(_count_postgres(url)) if is_postgres(url) else _count_sqlite(url)
    return Stored(*row)


# ---------------------------------------------------------------------------- report


def report(
    args: argparse.Namespace, mails: Sequence[Mail], results: list[Result], stored: Stored
) -> dict[str, Any]:
    mailflow, bare = results
    return {
        "date": datetime.date.today().isoformat(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "messages": args.messages,
        "concurrency": args.concurrency,
        "mean_message_bytes": round(sum(len(m.data) for m in mails) / len(mails)),
        "database": "postgresql" if is_postgres(args.database_url or "") else "sqlite",
        "results": [asdict(r) for r in results],
        "throughput_ratio": round(mailflow.msgs_per_s / bare.msgs_per_s, 3),
        "stored": asdict(stored),
        "verified": verified(args.messages, mailflow, stored),
    }


def verified(messages: int, mailflow: Result, stored: Stored) -> bool:
    """Every message answered 250, and each one is a ticket in the database."""
    return mailflow.sent == messages and stored.tickets == messages and stored.quarantined == 0


def table(data: dict[str, Any]) -> str:
    lines = [
        f"{data['date']}  {data['machine']['cpus']} cpus  N={data['messages']} "
        f"C={data['concurrency']}  ~{data['mean_message_bytes']} B/msg  {data['database']}",
        "",
        f"{'server':<14} {'msgs/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'wall s':>7} {'refused':>7}"
        f" {'server CPU ms/msg':>17} {'client CPU ms/msg':>17}",
    ]
    for r in data["results"]:
        lines.append(
            f"{r['server']:<14} {r['msgs_per_s']:>8.1f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} "
            f"{r['seconds']:>7.2f} {r['failed']:>7} {r['server_cpu_ms']:>17.2f} "
            f"{r['client_cpu_ms']:>17.2f}"
        )
    stored = data["stored"]
    lines += [
        "",
        f"throughput mailflow/bare: {data['throughput_ratio']:.3f}",
        f"stored: {stored['tickets']} tickets, {stored['inbound']} inbound "
        f"({stored['quarantined']} quarantined), {stored['outbox']} outbox rows "
        f"({stored['outbox_sent']} sent by the end)  -> {'OK' if data['verified'] else 'MISMATCH'}",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", "-n", type=int, default=2000, help="messages per server")
    parser.add_argument("--concurrency", "-c", type=int, default=8, help="SMTP connections")
    parser.add_argument(
        "--database-url",
        help="mailflow's database (default: SQLite in a temporary directory); a PostgreSQL "
        "database's public schema is DROPPED and recreated first",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the working directory (config, SQLite database, outbox maildir, logs)",
    )
    args = parser.parse_args(argv)
    if args.messages < 1 or args.concurrency < 1:
        parser.error("--messages and --concurrency must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    run_id = uuid.uuid4().hex[:12]
    mails = [compose(i, run_id) for i in range(args.messages)]
    directory = Path(tempfile.mkdtemp(prefix="mailflow-bench-"))
    try:
        url = args.database_url or sqlite_url(directory)
        _note(f"mailflow: {args.messages} messages over {args.concurrency} connections")
        mailflow, stored = bench_mailflow(mails, args.concurrency, url, directory)
        _note("bare aiosmtpd: the same load")
        bare = bench_bare(mails, args.concurrency, directory)
    except ServerFailed as exc:
        _note(f"ingest: {exc}")
        return 2
    finally:
        if args.keep:
            _note(f"kept {directory}")
        else:
            shutil.rmtree(directory, ignore_errors=True)
    data = report(args, mails, [mailflow, bare], stored)
    print(json.dumps(data, indent=2) if args.json else table(data))
    return 0 if data["verified"] else 1


if __name__ == "__main__":
    sys.exit(main())
