"""INSERT … ON CONFLICT on both databases, for rows created on first sight."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from mailflow.db.models import Base

M = TypeVar("M", bound=Base)


def _insert(session: AsyncSession, model: type[Base]) -> Any:
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert(model)


async def insert_or_ignore(
    session: AsyncSession, model: type[Base], keys: list[str], **values: Any
) -> None:
    """Insert a row unless one with the same `keys` exists; concurrent callers never fail."""
    await insert_rows_or_ignore(session, model, keys, [values])


async def insert_rows_or_ignore(
    session: AsyncSession, model: type[Base], keys: list[str], rows: Sequence[dict[str, Any]]
) -> None:
    """The same for several rows, in one statement (executemany: any number of rows)."""
    if rows:
        statement = _insert(session, model).on_conflict_do_nothing(index_elements=keys)
        await session.execute(statement, list(rows))


async def upsert_returning(
    session: AsyncSession, model: type[M], keys: list[str], update: dict[str, Any], **values: Any
) -> M:
    """Insert the row, or on conflict apply `update` to the existing one; either way return it,
    in one statement. `update` may refer to the proposed row as `excluded`."""
    statement = _insert(session, model).values(**values)
    changes = {
        name: value(statement.excluded) if callable(value) else value
        for name, value in update.items()
    }
    statement = statement.on_conflict_do_update(index_elements=keys, set_=changes)
    result = await session.scalars(
        statement.returning(model), execution_options={"populate_existing": True}
    )
    row: M = result.one()
    return row


async def insert_if_new(
    session: AsyncSession, model: type[Base], keys: list[str], **values: Any
) -> bool:
    """Insert the row; False, and nothing written, when one with the same `keys` exists."""
    statement = _insert(session, model).values(**values).on_conflict_do_nothing(index_elements=keys)
    primary = model.__table__.primary_key.columns.values()[0]  # type: ignore[attr-defined]
    inserted = await session.scalar(statement.returning(primary))
    return inserted is not None
