"""INSERT … ON CONFLICT DO NOTHING on both databases, for rows created on first sight."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from mailflow.db.models import Base


async def insert_or_ignore(
    session: AsyncSession, model: type[Base], keys: list[str], **values: Any
) -> None:
    """Insert a row unless one with the same `keys` exists; concurrent callers never fail."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    await session.execute(
        insert(model).values(**values).on_conflict_do_nothing(index_elements=keys)
    )
