"""Writing a large value (a raw message of 25 MB) into a row without copying it in memory.

SQLite copies a bound value, then copies it again into the row's record; and any UPDATE of
the row later rewrites the whole record, reading the value back. So a large raw message is
written last, once the row's other columns are final: on SQLite as zeroblob(n) filled in a
megabyte at a time through its incremental blob I/O, on PostgreSQL in pieces of 4 MB."""

from __future__ import annotations

import sqlite3

from sqlalchemy import Table, func, update
from sqlalchemy.ext.asyncio import AsyncSession

from mailflow.db.base import Base

CHUNK = 1 << 20
# Below this, an ordinary bound value costs nothing worth avoiding.
DIRECT_BELOW = 1 << 20
PIECE = 4 << 20  # PostgreSQL: appended to the value a piece at a time


def is_large(data: bytes) -> bool:
    """Whether `data` is worth write_large: written the ordinary way, it would cost memory."""
    return len(data) >= DIRECT_BELOW


async def write_large(
    session: AsyncSession, model: type[Base], column: str, row_id: int, data: bytes
) -> None:
    """Set `column` of the row with this id (its INTEGER PRIMARY KEY) to `data`."""
    table: Table = model.__table__  # type: ignore[assignment]
    where = table.c.id == row_id
    if not is_large(data):
        await session.execute(update(table).where(where).values({column: data}))
    elif session.get_bind().dialect.name == "sqlite":
        await _sqlite(session, table, column, row_id, data)
    else:
        await _in_pieces(session, table, column, row_id, data)


async def _in_pieces(
    session: AsyncSession, table: Table, column: str, row_id: int, data: bytes
) -> None:
    """asyncpg copies a value three times on its way to the socket (its buffer, the message,
    what the socket did not take at once): a piece at a time, that is three pieces' worth."""
    view, where = memoryview(data), table.c.id == row_id
    await session.execute(update(table).where(where).values({column: view[:PIECE].tobytes()}))
    for offset in range(PIECE, len(view), PIECE):
        piece = view[offset : offset + PIECE].tobytes()
        grown = table.c[column].op("||")(piece)
        await session.execute(update(table).where(where).values({column: grown}))


async def _sqlite(
    session: AsyncSession, table: Table, column: str, row_id: int, data: bytes
) -> None:
    where = table.c.id == row_id
    zeros = func.zeroblob(len(data))  # no memory: SQLite writes the pages as zeros
    await session.execute(update(table).where(where).values({column: zeros}))
    connection = await session.connection()
    driver = (await connection.get_raw_connection()).driver_connection
    assert driver is not None
    # aiosqlite runs every call on its connection's own thread; SQLAlchemy's adapter reaches
    # it the same way. Neither offers Blob.write.
    await driver._execute(_fill, driver._conn, table.name, column, row_id, data)


def _fill(sqlite: sqlite3.Connection, table: str, column: str, row_id: int, data: bytes) -> None:
    view = memoryview(data)
    with sqlite.blobopen(table, column, row_id) as blob:
        for offset in range(0, len(view), CHUNK):
            blob.write(view[offset : offset + CHUNK])
