"""Attachments benchmark: what one large message costs the daemon in memory and time.

    .venv/bin/python bench/attachments.py                       # every case, SQLite
    .venv/bin/python bench/attachments.py --case big --case parts-10000
    .venv/bin/python bench/attachments.py --database-url postgresql://postgres@127.0.0.1:5432/test

Each case starts a real daemon (`mailflow run`, as bench/ingest.py does), reads its peak
resident memory (VmHWM in /proc/PID/status) once it is idle, sends one message over SMTP,
waits for the 250, and reads the peak again: the difference is what the message cost. While
the message is being taken, /healthz is asked every 100 ms, and the slowest answer is kept.

Cases: `big`, a message of about 25 MB with one attachment of 18 MB; `many`, about 25 MB in
500 attachments; `parts-N`, a small message with N attachments of a few bytes each (the cap on
attachments is raised above N for it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from email import policy
from email.message import EmailMessage
from pathlib import Path

import aiohttp
import aiosmtplib

if not __package__:  # run as a script: the repository root, so that `bench` imports
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.crash import query
from bench.ingest import _reset_postgres, free_port, is_postgres, mailflow_argv, running
from bench.ingest import write_config as ingest_config

HOST = "127.0.0.1"
MESSAGE_BYTES = 25_000_000


@dataclass(frozen=True, slots=True)
class Measured:
    case: str
    database: str
    message_bytes: int
    attachments_sent: int
    seconds_to_250: float
    peak_before_mb: float
    peak_after_mb: float
    peak_increase_mb: float
    increase_per_message_size: float
    slowest_healthz_s: float
    healthz_failures: int
    attachments_stored: int
    quarantined: int


def big_message() -> bytes:
    """One attachment, as large as fits in 25 MB once base64-encoded."""
    return _message([("scan.pdf", os.urandom(MESSAGE_BYTES * 3 // 4 - 500_000))])


def many_message(parts: int = 500) -> bytes:
    size = MESSAGE_BYTES * 3 // 4 // parts - 2_000
    return _message([(f"photo-{n:04}.jpg", os.urandom(size)) for n in range(parts)])


def tiny_parts_message(parts: int) -> bytes:
    return _message([(f"note-{n:05}.txt", f"part {n}\n".encode()) for n in range(parts)])


def _message(files: list[tuple[str, bytes]]) -> bytes:
    message = EmailMessage()
    message["From"] = "Bob Customer <bob@customers.example.net>"
    message["To"] = "support@example.com"
    message["Subject"] = f"{len(files)} files attached"
    message["Message-ID"] = f"<attachments-{len(files)}-{os.getpid()}@customers.example.net>"
    message.set_content("The files are attached.\n")
    for name, data in files:
        maintype, subtype = ("text", "plain") if name.endswith(".txt") else ("application", "pdf")
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return message.as_bytes(policy=policy.SMTP)


def peak_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(r"VmHWM:\s+(\d+) kB", status)
    assert found, "no VmHWM (not Linux?)"
    return int(found.group(1)) / 1024


def write_config(
    directory: Path, port: int, web_port: int, url: str, parts: int, cap: bool
) -> Path:
    path = ingest_config(directory, port, url)
    text = path.read_text(encoding="utf-8")
    text = text.replace("[web]\nport = 0\n", f"[web]\nport = {web_port}\n")
    if cap:
        text += f"\n[hygiene]\nmax_attachments = {max(parts, 1000)}\n"
    path.write_text(text, encoding="utf-8")
    return path


async def _send(port: int, raw: bytes) -> float:
    client = aiosmtplib.SMTP(hostname=HOST, port=port, timeout=1800)
    await client.connect()
    started = time.perf_counter()
    try:
        await client.sendmail("bob@customers.example.net", ["support@example.com"], raw)
    finally:
        with contextlib.suppress(aiosmtplib.SMTPException):
            await client.quit()
    return time.perf_counter() - started


async def _healthz(web_port: int, stop: asyncio.Event) -> tuple[float, int]:
    """The slowest /healthz answer while the message is taken, and how many were not 200."""
    slowest, failures = 0.0, 0
    url = f"http://{HOST}:{web_port}/healthz"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as http:
        while not stop.is_set():
            started = time.perf_counter()
            try:
                async with http.get(url) as response:
                    failures += response.status != 200
            except aiohttp.ClientError:
                failures += 1
            slowest = max(slowest, time.perf_counter() - started)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.1)
    return slowest, failures


async def _take(port: int, web_port: int, raw: bytes) -> tuple[float, float, int]:
    stop = asyncio.Event()
    health = asyncio.create_task(_healthz(web_port, stop))
    try:
        seconds = await _send(port, raw)
    finally:
        stop.set()
    slowest, failures = await health
    return seconds, slowest, failures


def measure(
    case: str, raw: bytes, parts: int, url: str, directory: Path, cap: bool = True
) -> Measured:
    if is_postgres(url):
        asyncio.run(_reset_postgres(url))
    port, web_port = free_port(), free_port()
    config = write_config(directory, port, web_port, url, parts, cap)
    with running(mailflow_argv(config), directory / f"{case}.log", port, directory) as pid:
        time.sleep(2)  # the daemon settles after start (first sweep, first sender pass)
        before = peak_mb(pid)
        seconds, slowest, failures = asyncio.run(_take(port, web_port, raw))
        after = peak_mb(pid)
    stored = asyncio.run(query(url, "SELECT count(*) FROM attachments"))[0][0]
    quarantined = asyncio.run(
        query(url, "SELECT count(*) FROM inbound_messages WHERE state = 'quarantined'")
    )[0][0]
    increase = after - before
    return Measured(
        case=case,
        database="postgresql" if is_postgres(url) else "sqlite",
        message_bytes=len(raw),
        attachments_sent=parts,
        seconds_to_250=round(seconds, 2),
        peak_before_mb=round(before, 1),
        peak_after_mb=round(after, 1),
        peak_increase_mb=round(increase, 1),
        increase_per_message_size=round(increase * 1024 * 1024 / len(raw), 2),
        slowest_healthz_s=round(slowest, 2),
        healthz_failures=failures,
        attachments_stored=int(stored),
        quarantined=int(quarantined),
    )


def build(case: str) -> tuple[bytes, int]:
    if case == "big":
        return big_message(), 1
    if case == "many":
        return many_message(), 500
    parts = int(case.removeprefix("parts-"))
    return tiny_parts_message(parts), parts


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--case", action="append", help="big, many or parts-N (default: big, many, parts-2000)"
    )
    parser.add_argument("--database-url", help="a PostgreSQL database's schema is DROPPED first")
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--no-cap", action="store_true", help="for a version without [hygiene] max_attachments"
    )
    args = parser.parse_args(argv)
    results = []
    for case in args.case or ["big", "many", "parts-2000"]:
        raw, parts = build(case)
        directory = Path(tempfile.mkdtemp(prefix=f"mailflow-attachments-{case}-"))
        try:
            url = args.database_url or f"sqlite+aiosqlite:///{directory / 'var' / 'mailflow.db'}"
            results.append(measure(case, raw, parts, url, directory, not args.no_cap))
        finally:
            shutil.rmtree(directory, ignore_errors=True)
        print(json.dumps(asdict(results[-1])), file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps([asdict(r) for r in results], indent=2))
    else:
        print(table(results))
    return 0


def table(results: list[Measured]) -> str:
    lines = [
        f"{'case':<12} {'db':<10} {'MB':>6} {'parts':>6} {'s to 250':>9} {'peak +MB':>9} "
        f"{'× size':>7} {'healthz max s':>13} {'not 200':>7} {'stored':>6} {'quar.':>5}"
    ]
    for r in results:
        lines.append(
            f"{r.case:<12} {r.database:<10} {r.message_bytes / 1e6:>6.1f} {r.attachments_sent:>6} "
            f"{r.seconds_to_250:>9.2f} {r.peak_increase_mb:>9.1f} "
            f"{r.increase_per_message_size:>7.2f} {r.slowest_healthz_s:>13.2f} "
            f"{r.healthz_failures:>7} {r.attachments_stored:>6} {r.quarantined:>5}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
