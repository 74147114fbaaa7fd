"""Fill a mailflow database with N tickets and what real mail leaves beside them, fast.

    .venv/bin/python bench/fill.py --tickets 1000000 --sqlite-file /var/tmp/mailflow-1m.db
    .venv/bin/python bench/fill.py --tickets 1000000 \\
        --database-url postgresql://postgres@127.0.0.1:5432/test

The schema comes from mailflow's own migrations. Per ticket, as the daemon writes them (checked
against a real run of bench/ingest.py): its customer (about 0.6 per ticket, so some have several
tickets), the inbound message (raw, about 1 KB), the conversation message, six history rows
(seven when closed), two message refs, a participant, the auto-reply in the outbox (sent, but for
a few deferred ones), and its automatic-mail row. Statuses are spread: most old tickets
closed, the newest open or waiting.

Rows go in with the drivers' own bulk paths: executemany in one transaction per batch on SQLite,
COPY on PostgreSQL. Then PostgreSQL gets VACUUM ANALYZE (as autovacuum would soon do), and SQLite
is left without statistics, as a fresh install has it (mailflow never runs ANALYZE), unless
--analyze. With --database-url, the `public` schema of that database is DROPPED first.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import insert, select, text

from mailflow.db import migrate
from mailflow.db.models import Agent, InboundMessage, Message, OutboxMessage, Ticket
from mailflow.db.people import Team
from mailflow.db.session import Database

BATCH = 20_000  # tickets per transaction
CUSTOMERS_PER_TICKET = 0.6
SPAN = timedelta(days=730)  # the tickets' creation times cover two years up to now
OPEN_SHARE = 0.03  # the newest tickets are still open or waiting; the rest mostly closed
DEFERRED = 50  # outbox rows waiting for a retry, due well after any benchmark
SUPPORT = "support@example.com"
DOMAIN = "customers.example.org"

TOPICS = (
    "Printer driver will not install",
    "Invoice shows the wrong VAT number",
    "Cannot log in after password reset",
    "Delivery arrived damaged",
    "Refund not received yet",
    "Export to CSV loses accents",
)
BODY = (
    "Hello,\r\n\r\nI am writing about the problem in the subject line. It started on Monday "
    "morning and has happened every day since, on two different computers in our office.\r\n\r\n"
    "What I did: I followed the steps in your help centre article, restarted everything and "
    "tried again from a private window. The same error came back each time.\r\n\r\n"
    "This is blocking two people in our accounts team, so I would be grateful for an answer "
    "this week.\r\n\r\nKind regards,\r\n{name}\r\n"
)
REPLY = (
    "Hello {name},\r\n\r\nThank you for writing to us. Your request has been received and is "
    "now ticket #{ticket}. We will answer as soon as we can, usually within one working day."
    "\r\n\r\nYou can add to it by replying to this message; please keep the number in the "
    "subject.\r\n\r\nmailflow\r\n"
)
# The shipped rules that fire on every new ticket, as its history records them.
RULES = (
    "auto-reply to a new ticket",
    "tell the agents about a new ticket",
    "tell the usergroup's supervisors about a new ticket",
)


# ---------------------------------------------------------------------------- rows

# Each table's columns, in the order the row builders below give them.
COLUMNS: dict[str, tuple[str, ...]] = {
    "customers": ("id", "email", "name", "created_at"),
    "tickets": (
        "id", "type", "status", "subject", "priority", "customer_id", "assignee_id",
        "group_id", "usergroup_id", "private", "project", "due_at", "fields", "created_at",
        "updated_at", "closed_at", "status_since", "last_customer_at", "last_agent_at",
    ),
    "inbound_messages": (
        "id", "received_at", "channel", "mail_from", "rcpt_tos", "message_id", "size", "raw",
        "state", "reason", "error", "decisions", "ticket_id", "dedupe_key", "automatic",
    ),
    "messages": (
        "id", "ticket_id", "inbound_id", "direction", "author_kind", "customer_id", "agent_id",
        "public", "automatic", "from_address", "from_name", "subject", "message_id", "text",
        "full_text", "html", "created_at",
    ),
    "history": ("id", "ticket_id", "at", "actor_kind", "actor", "action", "details"),
    "message_refs": ("id", "message_id", "ticket_id", "created_at"),
    "participants": ("id", "ticket_id", "address", "role", "created_at"),
    "outbox": (
        "id", "ticket_id", "created_at", "purpose", "mail_from", "rcpt_tos", "message_id", "raw",
        "state", "attempts", "next_attempt_at", "locked_until", "last_error", "sent_at",
    ),
    "automatic_mail": ("id", "address", "sent_at"),
}  # fmt: skip


@dataclass(slots=True)
class Batch:
    """The rows of one batch of tickets, table by table, in insertion order (parents first)."""

    rows: dict[str, list[tuple[Any, ...]]] = field(
        default_factory=lambda: {table: [] for table in COLUMNS}
    )


@dataclass(slots=True)
class Ids:
    """The next id of each table that has more than one row per ticket."""

    history: int = 1
    refs: int = 1


class Plan:
    """Who wrote each ticket, when, and where it stands: fixed by a seed, so two fills of the
    same size hold the same data."""

    def __init__(self, tickets: int, now: datetime) -> None:
        self.tickets = tickets
        self.customers = max(1, int(tickets * CUSTOMERS_PER_TICKET))
        self.now = now
        self.start = now - SPAN
        self.rng = random.Random(20261130)

    def customer_of(self, index: int) -> int:
        """Every customer writes once; the rest of the tickets go mostly to a few of them."""
        if index < self.customers:
            return index + 1
        return int(self.customers * self.rng.random() ** 3) + 1

    def created(self, index: int) -> datetime:
        step = SPAN / max(self.tickets, 1)
        return self.start + step * index + timedelta(seconds=self.rng.random())

    def status(self, index: int) -> str:
        if index >= self.tickets * (1 - OPEN_SHARE):
            return self.rng.choice(("open", "agent waiting", "customer waiting"))
        return self.rng.choices(("closed", "resolved", "customer waiting"), (90, 5, 5))[0]


def customer_address(number: int) -> str:
    return f"client{number:07d}@{DOMAIN}"


def build(plan: Plan, first: int, last: int, ids: Ids, cast: Callable[[Any], Any]) -> Batch:
    """Rows for tickets first..last-1 (0-based); `cast` turns datetimes, booleans and JSON into
    what the database's driver takes."""
    batch = Batch()
    rows = batch.rows
    empty_dict = cast({})
    for index in range(first, last):
        number = index + 1
        customer = plan.customer_of(index)
        address = customer_address(customer)
        name = f"Client {customer}"
        created = plan.created(index)
        at = cast(created)
        if customer == number:  # the customer's first ticket: the customer appears with it
            rows["customers"].append((customer, address, name, at))
        status = plan.status(index)
        closed = status == "closed"
        changed = created + timedelta(hours=plan.rng.randrange(1, 200))
        touched = changed if status != "open" else created  # an agent has answered, or not yet
        subject = f"{TOPICS[index % len(TOPICS)]} (order {200000 + index})"
        their_id = f"{number}.{customer}@{DOMAIN}"
        our_id = f"{number:x}.reply@example.com"
        body = BODY.format(name=name)
        raw = (
            f"From: {name} <{address}>\r\nTo: Example Support <{SUPPORT}>\r\n"
            f"Subject: {subject}\r\nMessage-ID: <{their_id}>\r\n"
            f"Date: {created:%a, %d %b %Y %H:%M:%S +0000}\r\nMIME-Version: 1.0\r\n"
            f"Content-Type: text/plain; charset=utf-8\r\n\r\n{body}"
        ).encode()
        rows["tickets"].append(
            (number, "ticket", status, subject, "normal", customer, None, None, None,
             cast(False), None, None, empty_dict, at, cast(touched),
             cast(changed) if closed else None, cast(touched), at,
             cast(changed) if status != "open" else None)
        )  # fmt: skip
        rows["inbound_messages"].append(
            (number, at, "smtp", address, cast([SUPPORT]), their_id, len(raw), raw, "processed",
             "", "", cast([f"route: {SUPPORT} → type ticket", f"identity: customer {address}",
                           "thread: no ticket named: a new one"]),
             number, f"mid:{address}:{their_id}", None)
        )  # fmt: skip
        rows["messages"].append(
            (number, number, number, "in", "customer", customer, None, cast(True), None, address,
             name, subject, their_id, body.replace("\r\n", "\n"), body, None, at)
        )  # fmt: skip
        history = rows["history"]
        history.append((ids.history, number, at, "customer", address, "created",
                        cast({"type": "ticket", "status": "open"})))  # fmt: skip
        history.append((ids.history + 1, number, at, "customer", address, "message_added",
                        cast({"message": number, "public": True, "attachments": []})))  # fmt: skip
        for offset, rule in enumerate(RULES, 2):
            history.append((ids.history + offset, number, at, "automation", f"rule: {rule}",
                            "rule_fired", cast({"trigger": "ticket_created"})))  # fmt: skip
        history.append((ids.history + 5, number, at, "automation", f"rule: {RULES[0]}",
                        "mail_queued", cast({"outbox": number, "purpose": "customer/auto_reply",
                                             "to": [address]})))  # fmt: skip
        ids.history += 6
        if closed:
            history.append((ids.history, number, cast(changed), "agent", "agent1@example.com",
                            "status_changed", cast({"old": "open", "new": "closed"})))  # fmt: skip
            ids.history += 1
        rows["message_refs"].append((ids.refs, their_id, number, at))
        rows["message_refs"].append((ids.refs + 1, our_id, number, at))
        ids.refs += 2
        rows["participants"].append((number, number, address, "customer", at))
        deferred = index >= plan.tickets - DEFERRED
        reply = (
            f"From: mailflow <{SUPPORT}>\r\nTo: {name} <{address}>\r\n"
            f"Subject: [#{number}] {subject}\r\nMessage-ID: <{our_id}>\r\n"
            f"In-Reply-To: <{their_id}>\r\nAuto-Submitted: auto-replied\r\n\r\n"
            + REPLY.format(name=name, ticket=number)
        ).encode()
        rows["outbox"].append(
            (number, number, at, "customer/auto_reply", f"support+bounce-{number}-x@example.com",
             cast([address]), our_id, reply, "pending" if deferred else "sent",
             2 if deferred else 1, cast(plan.now + timedelta(days=1)) if deferred else at, None,
             "connection refused" if deferred else "", None if deferred else at)
        )  # fmt: skip
        rows["automatic_mail"].append((number, address, at))
    return batch


# ---------------------------------------------------------------------------- writers


def sqlite_cast(value: Any) -> Any:
    """As SQLAlchemy stores them on SQLite: naive UTC text, 0/1, JSON text."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, list | dict):
        return json.dumps(value)
    return value


def postgres_cast(value: Any) -> Any:
    """As asyncpg's COPY takes them: naive UTC timestamps, booleans, JSON text."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None)
    if isinstance(value, list | dict):
        return json.dumps(value)
    return value


@dataclass(slots=True)
class Counts:
    rows: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COLUMNS, 0))

    def add(self, batch: Batch) -> None:
        for table, rows in batch.rows.items():
            self.rows[table] += len(rows)

    @property
    def total(self) -> int:
        return sum(self.rows.values())


def _batches(plan: Plan, cast: Callable[[Any], Any]) -> Iterator[Batch]:
    ids = Ids()
    for first in range(0, plan.tickets, BATCH):
        yield build(plan, first, min(first + BATCH, plan.tickets), ids, cast)


def fill_sqlite(path: str, plan: Plan, counts: Counts, progress: Callable[[], None]) -> None:
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=OFF")  # a benchmark's fill, redone if it fails
        connection.execute("PRAGMA cache_size=-262144")
        statements = {
            table: f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
            for table, cols in COLUMNS.items()
        }
        for batch in _batches(plan, sqlite_cast):
            connection.execute("BEGIN")
            for table, rows in batch.rows.items():
                connection.executemany(statements[table], rows)
            connection.execute("COMMIT")
            counts.add(batch)
            progress()
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        connection.close()


async def fill_postgres(dsn: str, plan: Plan, counts: Counts, progress: Callable[[], None]) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        for batch in _batches(plan, postgres_cast):
            async with connection.transaction():
                for table, rows in batch.rows.items():
                    if rows:
                        await connection.copy_records_to_table(
                            table, records=rows, columns=COLUMNS[table]
                        )
            counts.add(batch)
            progress()
        # Explicit ids leave the sequences at 1: move them past the rows, or mailflow collides.
        for table in COLUMNS:
            await connection.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT coalesce(max(id), 1) FROM {table}))"
            )
    finally:
        await connection.close()


# ---------------------------------------------------------------------------- the whole fill


@dataclass(frozen=True, slots=True)
class Filled:
    tickets: int
    rows: dict[str, int]
    seconds: float
    rows_per_s: float
    statistics_seconds: float | None


def is_postgres(url: str) -> bool:
    return url.startswith(("postgresql", "postgres:"))


def sqlite_path(url: str) -> str:
    return url.partition(":///")[2]


def asyncpg_dsn(url: str) -> str:
    return "postgresql://" + url.partition("://")[2]


async def fill(url: str, tickets: int, *, analyze: bool | None = None) -> Filled:
    """Migrate the (empty) database, fill it, and gather statistics where asked (default:
    PostgreSQL yes, SQLite no)."""
    db = Database(url)
    try:
        await migrate.upgrade(db)
    finally:
        await db.dispose()
    plan = Plan(tickets, datetime.now(UTC))
    counts = Counts()
    started = time.perf_counter()

    def progress() -> None:
        done = counts.rows["tickets"]
        if done % (BATCH * 10) == 0 or done == tickets:
            rate = counts.total / (time.perf_counter() - started)
            print(f"  {done} tickets, {counts.total} rows, {rate:,.0f} rows/s", file=sys.stderr)

    if is_postgres(url):
        await fill_postgres(asyncpg_dsn(url), plan, counts, progress)
    else:
        await asyncio.to_thread(fill_sqlite, sqlite_path(url), plan, counts, progress)
    seconds = time.perf_counter() - started
    statistics = None
    if analyze if analyze is not None else is_postgres(url):
        began = time.perf_counter()
        await gather_statistics(url)
        statistics = round(time.perf_counter() - began, 1)
    await check(url, tickets)
    return Filled(
        tickets, counts.rows, round(seconds, 1), round(counts.total / seconds), statistics
    )


async def gather_statistics(url: str) -> None:
    if is_postgres(url):
        connection = await asyncpg.connect(asyncpg_dsn(url))
        try:
            await connection.execute("VACUUM (ANALYZE)")
        finally:
            await connection.close()
    else:
        with sqlite3.connect(sqlite_path(url)) as connection:
            connection.execute("ANALYZE")


async def check(url: str, tickets: int) -> None:
    """Read the last ticket back through mailflow's own models: the rows are as it writes
    them, or this fails loudly."""
    db = Database(url)
    try:
        async with db.transaction() as session:
            ticket = await session.get(Ticket, tickets)
            message = await session.scalar(select(Message).where(Message.ticket_id == tickets))
            inbound = await session.get(InboundMessage, tickets)
            outbox = await session.get(OutboxMessage, tickets)
            readable = (
                ticket is not None
                and ticket.customer.email.endswith(DOMAIN)
                and message is not None
                and message.created_at.tzinfo is not None
                and inbound is not None
                and inbound.rcpt_tos == [SUPPORT]
                and outbox is not None
                and outbox.raw.startswith(b"From:")
            )
    finally:
        await db.dispose()
    if not readable:
        raise RuntimeError(f"ticket {tickets} does not read back through mailflow's models")


async def add_agents(url: str, count: int) -> None:
    """`count` active agents who hear about every new ticket, in the installation's team."""
    db = Database(url)
    now = datetime.now(UTC)
    try:
        async with db.transaction() as session:
            team = await session.scalar(select(Team.id).order_by(Team.id).limit(1))
            if team is None:
                team = (
                    await session.execute(
                        insert(Team).values(name="support", created_at=now).returning(Team.id)
                    )
                ).scalar_one()
            await session.execute(
                insert(Agent),
                [
                    {
                        "email": f"agent{i}@staff.example.com",
                        "name": f"Agent {i}",
                        "active": True,
                        "notify": True,
                        "types": [],
                        "created_at": now,
                        "team_id": team,
                        "role": "operator",
                    }
                    for i in range(count)
                ],
            )
    finally:
        await db.dispose()


async def reset_postgres(url: str) -> None:
    db = Database(url)
    try:
        async with db.engine.begin() as connection:
            await connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            await connection.execute(text("CREATE SCHEMA public"))
    finally:
        await db.dispose()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=1_000_000)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--sqlite-file", type=Path, help="a new SQLite file (must not exist)")
    where.add_argument(
        "--database-url", help="PostgreSQL; its public schema is DROPPED and recreated"
    )
    parser.add_argument(
        "--analyze",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="gather planner statistics afterwards (default: on PostgreSQL only)",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.sqlite_file:
        if args.sqlite_file.exists():
            parser.error(f"{args.sqlite_file} exists; fill.py fills a new file")
        url = f"sqlite+aiosqlite:///{args.sqlite_file.resolve()}"
    else:
        url = args.database_url
        asyncio.run(reset_postgres(url))
    filled = asyncio.run(fill(url, args.tickets, analyze=args.analyze))
    if args.json:
        json.dump(asdict(filled), sys.stdout, indent=2)
        return 0
    print(
        f"{filled.tickets} tickets: {sum(filled.rows.values())} rows in {filled.seconds} s, "
        f"{filled.rows_per_s:,} rows/s"
        + (f"; statistics {filled.statistics_seconds} s" if filled.statistics_seconds else "")
    )
    for table, count in filled.rows.items():
        print(f"  {table:<18} {count:>10}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
