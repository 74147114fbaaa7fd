"""How fast are ticket views with many tickets? Fills a database with N tickets (default
100,000) spread over types, statuses, agents, groups, usergroups, projects and due dates,
then times each view the way `mailflow tickets` runs it: the first page (50 rows, newest
first, with the joined customer, assignee, group and usergroup) and the full count.

    .venv/bin/python bench/views.py [--tickets 100000] [--database-url URL] [--json]

With --database-url (PostgreSQL), the `public` schema of that database is dropped and
recreated first."""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select, text

from mailflow.config import from_mapping
from mailflow.db import migrate
from mailflow.db.models import Agent, Customer, Ticket
from mailflow.db.people import Group, Team, Usergroup
from mailflow.db.session import Database
from mailflow.tickets import views

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
CONFIG_VIEWS = [
    {
        "name": "urgent-vip",
        "if": {
            "all": [
                {"ticket.priority": {"in": ["high", "urgent"]}},
                {"customer.domain": "vip.test"},
            ]
        },
    },
    {
        "name": "stale-waiting",
        "if": {"ticket.status": "agent waiting", "ticket.in_status_for": {"older_than": "3d"}},
    },
]


def _config(url: str) -> Any:
    return from_mapping({"database": {"url": url}, "views": CONFIG_VIEWS}, "bench", Path.cwd())


async def _fill(db: Database, count: int) -> None:
    """Rows inserted in bulk, as real mail would have left them."""
    rng = random.Random(7)
    async with db.transaction() as session:
        team = (
            await session.execute(
                insert(Team).values(name="support", created_at=NOW).returning(Team.id)
            )
        ).scalar_one()
        agents = [
            {
                "email": f"agent{i}@staff.test",
                "name": f"Agent {i}",
                "active": True,
                "notify": True,
                "types": [],
                "created_at": NOW,
                "team_id": team,
                "role": "operator",
            }
            for i in range(40)
        ]
        agent_ids = list(
            (await session.execute(insert(Agent).returning(Agent.id), agents)).scalars()
        )
        group_ids = list(
            (
                await session.execute(
                    insert(Group).returning(Group.id),
                    [{"team_id": team, "name": f"group{i}", "created_at": NOW} for i in range(8)],
                )
            ).scalars()
        )
        usergroup_ids = list(
            (
                await session.execute(
                    insert(Usergroup).returning(Usergroup.id),
                    [
                        {
                            "name": f"org{i}",
                            "title": "",
                            "fields": {},
                            "notify_supervisors": True,
                            "created_at": NOW,
                        }
                        for i in range(200)
                    ],
                )
            ).scalars()
        )
        customers = [
            {
                "email": f"c{i}@{'vip' if i % 50 == 0 else 'mail'}.test",
                "name": "",
                "created_at": NOW,
            }
            for i in range(count // 10)
        ]
        customer_ids = list(
            (await session.execute(insert(Customer).returning(Customer.id), customers)).scalars()
        )
    statuses = {
        "ticket": ["open", "agent waiting", "customer waiting", "resolved", "closed"],
        "suggestion": ["new", "under review", "accepted", "rejected", "done"],
    }
    batch = []
    for number in range(count):
        kind = "ticket" if number % 5 else "suggestion"
        status = rng.choice(statuses[kind])
        created = NOW - timedelta(minutes=rng.randrange(60 * 24 * 365))
        batch.append(
            {
                "type": kind,
                "status": status,
                "subject": f"Question {number}",
                "priority": rng.choice(["low", "normal", "normal", "high", "urgent"]),
                "customer_id": rng.choice(customer_ids),
                "assignee_id": rng.choice([None, *agent_ids]),
                "group_id": rng.choice([None, None, *group_ids]),
                "usergroup_id": rng.choice([None, *usergroup_ids]),
                "private": False,
                "project": rng.choice([None, None, "alpha", "beta"]),
                "due_at": rng.choice([None, None, created + timedelta(days=3)]),
                "fields": {},
                "created_at": created,
                "updated_at": created + timedelta(hours=1),
                "closed_at": None,
                "status_since": created + timedelta(hours=1),
                "last_customer_at": created,
                "last_agent_at": None,
            }
        )
        if len(batch) == 5000:
            async with db.transaction() as session:
                await session.execute(insert(Ticket), batch)
            batch = []
    if batch:
        async with db.transaction() as session:
            await session.execute(insert(Ticket), batch)


async def analyze(db: Database) -> None:
    """Fresh planner statistics, as a database that has lived a while has."""
    if db.is_sqlite:
        async with db.engine.begin() as connection:
            await connection.execute(text("ANALYZE"))
    else:
        async with db.engine.connect() as connection:
            await (await connection.execution_options(isolation_level="AUTOCOMMIT")).execute(
                text("ANALYZE")
            )


async def _time(
    db: Database, config: Any, name: str, agent: str | None, runs: int
) -> dict[str, Any]:
    page, counts = [], []
    rows = total = 0
    for _ in range(runs):
        async with db.transaction() as session:
            started = time.perf_counter()
            rows = len(await views.rows(session, config, name, NOW, limit=50, agent=agent))
            page.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            query = select(func.count()).select_from(
                views.listing(config, name, NOW, agent=agent).subquery()
            )
            total = int(await session.scalar(query) or 0)
            counts.append((time.perf_counter() - started) * 1000)
    return {
        "view": name,
        "tickets": total,
        "page_rows": rows,
        "page_ms": round(statistics.median(page), 1),
        "count_ms": round(statistics.median(counts), 1),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--database-url")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="mailflow-bench-views-"))
    url = args.database_url or f"sqlite+aiosqlite:///{directory}/views.db"
    config = _config(url)
    db = Database.from_config(config)
    if args.database_url:
        async with db.engine.begin() as connection:
            await connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            await connection.execute(text("CREATE SCHEMA public"))
    await migrate.upgrade(db)
    started = time.perf_counter()
    await _fill(db, args.tickets)
    await analyze(db)
    filled = time.perf_counter() - started
    names = [*views.BUILT_IN, *(v["name"] for v in CONFIG_VIEWS)]
    results = [
        await _time(db, config, name, "agent3@staff.test" if name == "mine" else None, args.runs)
        for name in names
    ]
    await db.dispose()
    backend = "postgresql" if args.database_url else "sqlite"
    if args.json:
        json.dump(
            {"tickets": args.tickets, "database": backend, "results": results}, sys.stdout, indent=2
        )
        return
    print(
        f"{args.tickets} tickets on {backend}, filled in {filled:.1f} s; median of {args.runs} runs"
    )
    print(f"{'view':18} {'tickets':>8} {'first 50 ms':>12} {'count ms':>9}")
    for r in results:
        print(f"{r['view']:18} {r['tickets']:>8} {r['page_ms']:>12} {r['count_ms']:>9}")


if __name__ == "__main__":
    asyncio.run(main())
