"""How quick is the `mailflow` command? Fills a database with N tickets (default 100,000,
the same spread as views.py), writes a configuration for it, then runs the CLI as a person
would (a fresh process each time) and reports, per command, the median and the quickest
wall time, the median CPU time (user + system) and the peak memory.

    .venv/bin/python bench/cli.py [--tickets 100000] [--runs 3] [--database-url URL] [--json]

With --database-url (PostgreSQL), the `public` schema of that database is dropped and
recreated first. --keep leaves the temporary directory (config, SQLite file) in place."""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# (label, arguments after `mailflow --config FILE`)
COMMANDS: list[tuple[str, list[str]]] = [
    ("--help", ["--help"]),
    ("--version", ["--version"]),
    ("tickets --help", ["tickets", "--help"]),
    ("agent list", ["agent", "list"]),
    ("tickets (open)", ["tickets"]),
    ("tickets --view all", ["tickets", "--view", "all"]),
    ("tickets --view all --format json", ["tickets", "--view", "all", "--format", "json"]),
    (
        "tickets --view all --limit 0 (csv)",
        ["tickets", "--view", "all", "--limit", "0", "--format", "csv"],
    ),
    ("ticket show 1", ["ticket", "show", "1"]),
]


def _prepare(url: str, count: int, drop_schema: bool) -> None:
    """Run in a process of its own, so that this one stays small: a child's peak memory
    counts the parent's pages it was forked from."""
    asyncio.run(_fill_database(url, count, drop_schema))


async def _fill_database(url: str, count: int, drop_schema: bool) -> None:
    from sqlalchemy import text
    from views import _fill, analyze  # the views benchmark's tickets, people and groups

    from mailflow.config import from_mapping
    from mailflow.db import migrate
    from mailflow.db.session import Database

    config = from_mapping({"database": {"url": url}}, "bench", Path.cwd())
    db = Database.from_config(config)
    if drop_schema:
        async with db.engine.begin() as connection:
            await connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            await connection.execute(text("CREATE SCHEMA public"))
    await migrate.upgrade(db)
    await _fill(db, count)
    await analyze(db)
    await db.dispose()


def _run_once(argv: list[str]) -> tuple[float, float, int, int, int]:
    """Wall seconds, CPU seconds, peak RSS in KB, bytes printed and the exit status."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        printed = out.seek(0, os.SEEK_END)
    cpu = usage.ru_utime + usage.ru_stime
    return elapsed, cpu, usage.ru_maxrss, printed, process.returncode


def _measure(mailflow: list[str], config: Path, args: list[str], runs: int) -> dict[str, Any]:
    results = [_run_once([*mailflow, "--config", str(config), *args]) for _ in range(runs)]
    return {
        "seconds": round(statistics.median(r[0] for r in results), 3),
        # The quickest run: what the command costs when the machine is not busy elsewhere.
        "min_seconds": round(min(r[0] for r in results), 3),
        "cpu_seconds": round(statistics.median(r[1] for r in results), 3),
        "max_rss_mb": round(max(r[2] for r in results) / 1024, 1),
        "output_kb": round(results[-1][3] / 1024, 1),
        "exit": results[-1][4],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--database-url")
    parser.add_argument(
        "--mailflow",
        default=str(Path(sys.executable).with_name("mailflow")),
        help="the command to measure (split like a shell would), e.g. another checkout's",
    )
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="mailflow-bench-cli-"))
    url = args.database_url or f"sqlite+aiosqlite:///{directory}/cli.db"
    config = directory / "mailflow.toml"
    config.write_text(f'[database]\nurl = "{url}"\n[instance]\nsecret_file = "secret"\n')
    try:
        started = time.perf_counter()
        filler = multiprocessing.get_context("spawn").Process(
            target=_prepare, args=(url, args.tickets, bool(args.database_url))
        )
        filler.start()
        filler.join()
        if filler.exitcode != 0:
            sys.exit(f"filling the database failed ({filler.exitcode})")
        filled = time.perf_counter() - started
        results = {
            label: _measure(shlex.split(args.mailflow), config, argv, args.runs)
            for label, argv in COMMANDS
        }
    finally:
        if not args.keep:
            shutil.rmtree(directory)
    backend = "postgresql" if args.database_url else "sqlite"
    if args.json:
        json.dump(
            {"tickets": args.tickets, "database": backend, "results": results}, sys.stdout, indent=2
        )
        return
    print(f"{args.tickets} tickets on {backend}, filled in {filled:.1f} s; median of {args.runs}")
    print(
        f"{'command':34} {'wall s':>7} {'min s':>6} {'CPU s':>6} {'peak MB':>8} "
        f"{'output KB':>10} {'exit':>5}"
    )
    for label, r in results.items():
        print(
            f"{label:34} {r['seconds']:>7} {r['min_seconds']:>6} {r['cpu_seconds']:>6} "
            f"{r['max_rss_mb']:>8} {r['output_kb']:>10} {r['exit']:>5}"
        )


if __name__ == "__main__":
    main()
