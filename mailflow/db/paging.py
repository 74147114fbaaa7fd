"""Lists a page at a time, by key: the next page starts after the last row shown, found on
an index however deep the list goes (no OFFSET walking the rows before it), and the rows
are streamed from the database, never loaded all at once."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeAlias

from sqlalchemy import ColumnElement, Row, Select, TypeDecorator, literal, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute

# A statement of any columns, and one of its rows.
AnySelect: TypeAlias = Select[*tuple[Any, ...]]
AnyRow: TypeAlias = Row[*tuple[Any, ...]]
Column: TypeAlias = ColumnElement[Any] | QueryableAttribute[Any]


# Rows fetched from the database at a time while a list streams.
BATCH = 500


class BadCursor(ValueError):
    """A cursor that is not one this list gave."""


@dataclass(frozen=True, slots=True)
class Keyset:
    """A list's order: columns that together tell rows apart (the last one unique), all
    ascending or all descending. The statement must select them, under their own keys."""

    columns: tuple[Column, ...]
    descending: bool = False

    def statement(self, query: AnySelect, after: str | None, limit: int | None) -> AnySelect:
        """`query` ordered by the key, starting after the cursor, at most `limit` rows."""
        if after is not None:
            values = self.parse(after)
            key = tuple_(*self.columns)
            bound = tuple_(*(literal(v, c.type) for v, c in zip(values, self.columns, strict=True)))
            query = query.where(key < bound if self.descending else key > bound)
        query = query.order_by(*(c.desc() if self.descending else c.asc() for c in self.columns))
        return query.limit(limit) if limit else query

    def cursor(self, row: AnyRow) -> str:
        values = [row._mapping[column] for column in self.columns]
        text = json.dumps([v.isoformat() if isinstance(v, datetime) else v for v in values])
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    def parse(self, cursor: str) -> list[Any]:
        try:
            text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
            values = json.loads(text)
            if not isinstance(values, list) or len(values) != len(self.columns):
                raise ValueError(values)
            return [_typed(v, c) for v, c in zip(values, self.columns, strict=True)]
        except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
            raise BadCursor(f"{cursor!r} is not a cursor this list gave") from None


def _typed(value: Any, column: Column) -> Any:
    kind = column.type.impl_instance if isinstance(column.type, TypeDecorator) else column.type
    if kind.python_type is datetime:
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            raise ValueError(value)
        return moment
    if not isinstance(value, kind.python_type):
        raise TypeError(value)
    return value


class Page:
    """One page of a list: iterate `rows()` for at most `limit` rows as the database sends
    them; afterwards `after` is the cursor of the next page, or None after the last."""

    def __init__(self, keyset: Keyset, limit: int | None, after: str | None = None) -> None:
        self.keyset, self.limit, self.start = keyset, limit, after
        self.after: str | None = None

    async def rows(self, session: AsyncSession, query: AnySelect) -> AsyncIterator[AnyRow]:
        # One row more than the page tells whether there is a next page.
        statement = self.keyset.statement(query, self.start, self.limit and self.limit + 1)
        # Without yield_per the ORM fetches every row of a statement on its columns first.
        result = await session.stream(statement.execution_options(yield_per=BATCH))
        try:
            last: AnyRow | None = None
            shown = 0
            async for batch in result.partitions(BATCH):  # one hand-off to the driver a batch
                for row in batch:
                    if self.limit and shown == self.limit:
                        assert last is not None
                        self.after = self.keyset.cursor(last)
                        return
                    shown, last = shown + 1, row
                    yield row
        finally:
            await result.close()
